"""Key rotation (issue 10): only demand refetches use the refetch budget.

A token signed with a freshly rotated key is accepted on its first request, even right after a
cold fetch; random kids still cost at most one fetch per ``JWKS_REFETCH_COOLDOWN`` (per fleet with
a shared cache); a failed demand refetch is named in the 401's cause chain and the WARNING.
Everything runs through DRF's real request path against the loopback IdP; time is frozen, never slept.
"""

from __future__ import annotations

import logging
import urllib.error
import uuid

import pytest
from django.test import override_settings
from freezegun import freeze_time

from simplejwt_patches.clients import state_of
from simplejwt_patches.failures import JWKSFailure
from tests.conftest import last_exception
from tests.helpers import chain, find_in_chain
from tests.idp import Mode, generate_rsa_key

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, **options})


@pytest.fixture(scope="module")
def foreign_key():
    return generate_rsa_key()


@pytest.fixture(scope="module", autouse=True)
def _certificates_outside_frozen_time():
    """Build one X.509 certificate before any freeze_time: cryptography remembers the datetime class
    of its first use, and a FakeDatetime there breaks every later certificate (rotated keys' x5c)."""
    from tests.idp import _self_signed_der

    _self_signed_der(generate_rsa_key(), "warm-up")


def source():
    from rest_framework_simplejwt import state

    return state_of(state.token_backend.jwks_client).key_source()


def test_a_rotated_key_is_accepted_on_its_first_request(api, idp, foreign_key):
    with patches(), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200  # cold fetch
        assert len(idp.jwks_requests()) == 1
        clock.tick(1)  # well inside the 30 s cooldown
        idp.rotate()
        assert api(idp.mint()).status_code == 200  # the new kid: one immediate demand refetch
        assert len(idp.jwks_requests()) == 2
        for _ in range(1000):  # random kids right after: the budget is spent
            assert api(idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign_key)).status_code == 401
        assert len(idp.jwks_requests()) <= 3
        assert len(idp.jwks_requests()) == 2
        clock.tick(30)  # one more demand refetch per cooldown, not more
        for _ in range(20):
            assert api(idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign_key)).status_code == 401
        assert len(idp.jwks_requests()) == 3


def test_expiry_and_background_refreshes_do_not_use_the_budget(api, idp):
    with patches(JWKS_CACHE_LIFESPAN=60), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        clock.tick(61)
        assert api(idp.mint()).status_code == 200  # stale: one background refresh
        assert source().wait_idle(5)
        assert len(idp.jwks_requests()) == 2
        idp.rotate()
        assert api(idp.mint()).status_code == 200  # right after the background refresh
        assert len(idp.jwks_requests()) == 3


def test_a_failed_demand_refetch_names_the_403(api, idp, caplog):
    with patches(), freeze_time() as clock, caplog.at_level(logging.WARNING, "simplejwt_patches"):
        assert api(idp.mint()).status_code == 200
        idp.mode = Mode.FORBIDDEN
        idp.rotate()
        start = len(caplog.records)
        assert api(idp.mint()).status_code == 401
        failure = find_in_chain(last_exception(), JWKSFailure)
        assert failure.kind == "status" and failure.status == 403
        assert find_in_chain(last_exception(), urllib.error.HTTPError).code == 403
        warnings = [r.getMessage() for r in caplog.records[start:] if r.levelno == logging.WARNING]
        assert any("403" in w and "JWKS fetch" in w for w in warnings), warnings
        # Within the cooldown: no retry, and the cause is still the 403, not just "unknown kid".
        assert api(idp.mint()).status_code == 401
        assert len(idp.jwks_requests()) == 2
        failure = find_in_chain(last_exception(), JWKSFailure)
        assert failure.kind == "status" and failure.status == 403
        # Tokens with the cached kid keep working meanwhile.
        assert api(idp.mint(kid=idp.jwks()["keys"][1]["kid"])).status_code == 200
        clock.tick(31)
        idp.mode = Mode.OK
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 3


def test_unknown_kid_after_a_healthy_refetch_says_unknown_kid(api, idp, foreign_key):
    with patches(), freeze_time():
        assert api(idp.mint()).status_code == 200
        assert api(idp.mint(kid="never-published", key=foreign_key)).status_code == 401
        kinds = [e.kind for e in chain(last_exception()) if isinstance(e, JWKSFailure)]
        assert kinds == ["unknown_kid"]


def test_failed_fetches_still_wait_for_the_cooldown(api, idp):
    idp.mode = Mode.FORBIDDEN
    with patches(), freeze_time() as clock:
        for _ in range(5):
            assert api(idp.mint()).status_code == 401
        assert len(idp.jwks_requests()) == 1
        clock.tick(29)
        idp.rotate()
        assert api(idp.mint()).status_code == 401
        assert len(idp.jwks_requests()) == 1
        clock.tick(2)
        idp.mode = Mode.OK
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 2


def test_injectable_clock_bounds_the_demand_budget(idp, fresh_backend, foreign_key):
    """The KeySource's own clock (no freezegun): one demand refetch per cooldown."""
    import jwt as pyjwt

    from simplejwt_patches.keysource import KeySource

    now = [1000.0]
    client = fresh_backend().jwks_client
    from simplejwt_patches.clients import adopt

    adopt(client)
    import weakref

    ks = KeySource(weakref.ref(client), clock=lambda: (now[0], now[0] + 1.7e9))
    with patches():
        assert ks.get_signing_key(idp.active_kid) is not None
        now[0] += 1
        new_kid = idp.rotate()
        assert ks.get_signing_key(new_kid) is not None
        for _ in range(50):
            with pytest.raises(pyjwt.PyJWKClientError):
                ks.get_signing_key(f"kid-{uuid.uuid4().hex}")
        assert len(idp.jwks_requests()) == 2
        now[0] += 30
        with pytest.raises(pyjwt.PyJWKClientError):
            ks.get_signing_key("still-unknown")
        assert len(idp.jwks_requests()) == 3


# -- fleet-wide budget (real Redis) ---------------------------------------------------------


def shared(redis_url: str) -> override_settings:
    from django.conf import settings

    caches = {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                          "LOCATION": redis_url}}  # fmt: skip
    return override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_SHARED_CACHE": "jwks"})


def test_the_demand_budget_is_fleet_wide_with_a_shared_cache(api, idp, redis, foreign_key):
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.settings import api_settings

    def process() -> TokenBackend:  # another process, as far as the key source knows
        return TokenBackend("RS256", None, "", api_settings.AUDIENCE, api_settings.ISSUER, api_settings.JWK_URL, 0)

    with shared(redis):
        others = [process() for _ in range(3)]
        assert api(idp.mint()).status_code == 200
        for backend in others:
            backend.decode(idp.mint())
        assert len(idp.jwks_requests()) == 1
        idp.rotate()
        token = idp.mint()
        assert api(token).status_code == 200  # this process spends the fleet's budget
        assert len(idp.jwks_requests()) == 2
        for backend in others:  # the others adopt the published set without fetching
            assert backend.decode(token)["sub"] == idp.subject
        for backend in others:
            for _ in range(20):
                with pytest.raises(Exception):  # noqa: B017 - TokenBackendError on every release
                    backend.decode(idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign_key))
        assert len(idp.jwks_requests()) == 2


# -- a key replaced under the same kid ------------------------------------------------------


def _jwks_with(kid: str, key) -> bytes:
    import base64
    import json

    numbers = key.public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    jwk = {"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": b64(numbers.n), "e": b64(numbers.e)}
    return json.dumps({"keys": [jwk]}).encode()


@pytest.mark.fixer("backend.decode.key-replaced")
def test_a_key_replaced_under_the_same_kid_is_picked_up_once_per_cooldown(api, idp, foreign_key):
    kid = idp.active_kid
    replacement = generate_rsa_key()
    with patches(), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        idp.jwks_body = _jwks_with(kid, replacement)  # same kid, new key
        assert api(idp.mint(kid=kid, key=replacement)).status_code == 200  # one refetch, verified again
        assert len(idp.jwks_requests()) == 2
        for _ in range(20):  # forged signatures under the cached kid: no further refetch
            assert api(idp.mint(kid=kid, key=foreign_key)).status_code == 401
        assert len(idp.jwks_requests()) == 2
        clock.tick(31)
        assert api(idp.mint(kid=kid, key=foreign_key)).status_code == 401  # one refetch, same key: rejected
        assert len(idp.jwks_requests()) == 3
        find_in_chain(last_exception(), __import__("jwt").InvalidSignatureError)


@pytest.mark.fixer("backend.decode.key-replaced")
def test_a_bad_signature_without_a_replaced_key_is_rejected_with_its_cause(api, idp, foreign_key):
    import jwt as pyjwt

    with patches(), freeze_time():
        assert api(idp.mint()).status_code == 200
        assert api(idp.mint(key=foreign_key)).status_code == 401
        find_in_chain(last_exception(), pyjwt.InvalidSignatureError)
        assert len(idp.jwks_requests()) == 2  # the one refetch the budget allows found the same key
        assert api(idp.mint(key=foreign_key)).status_code == 401
        assert len(idp.jwks_requests()) == 2
