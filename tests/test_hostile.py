"""Hostile input at the trust boundaries (issue 8): slow IdPs, hostile key sets, tokens and cache entries."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches.deadline import MARGIN
from tests.conftest import last_exception
from tests.helpers import SCHEDULING, _b64, find_in_chain, with_claims
from tests.idp import Mode

pytestmark = pytest.mark.django_db


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES={**settings.SIMPLE_JWT_PATCHES, **options})


@pytest.mark.fixer("pyjwt.client.transport")
def test_slow_drip_idp_is_bounded_by_jwks_timeout(idp, fresh_backend):
    """Finding 6: headers at once, then one byte every 0.25 s held a JWKS_TIMEOUT=1 fetch for 10 s."""
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory
    from rest_framework_simplejwt.authentication import JWTTokenUserAuthentication  # 5.0.0 has no Stateless alias

    idp.mode = Mode.DRIP
    idp.drip_seconds = 0.25
    token = idp.mint()
    waits: list[float] = []
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def one_request() -> None:
        request = Request(APIRequestFactory().get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {token}"))
        barrier.wait(timeout=5)
        started = time.monotonic()
        try:
            JWTTokenUserAuthentication().authenticate(request)
            outcomes.append("200")
        except AuthenticationFailed:
            outcomes.append("401")
        except Exception as exc:  # noqa: BLE001 - recorded, asserted below
            outcomes.append(type(exc).__name__)
        waits.append(time.monotonic() - started)

    with patches(JWKS_TIMEOUT=1):
        fresh_backend()
        threads = [threading.Thread(target=one_request) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert outcomes == ["401"] * 4, outcomes
    assert max(waits) < 1 + MARGIN + SCHEDULING, waits
    assert len(idp.jwks_requests()) == 1  # the waiters did not each start a fetch


def test_deadline_failure_is_a_timeout_in_the_cause_chain(api, idp):
    from simplejwt_patches.failures import JWKSFailure

    idp.mode = Mode.DRIP
    with patches(JWKS_TIMEOUT=0.5):
        started = time.monotonic()
        assert api(idp.mint()).status_code == 401
    assert time.monotonic() - started < 0.5 + MARGIN + SCHEDULING
    assert find_in_chain(last_exception(), JWKSFailure).kind == "timeout"


@pytest.mark.parametrize(
    "extra_key",
    [
        {"kid": ["list"], "kty": "RSA", "n": "x", "e": "AQAB"},
        {"kid": {"an": "object"}, "kty": "RSA"},
        {"kid": "none-alg", "kty": "RSA", "alg": "none", "n": "x", "e": "AQAB"},
        {"kid": "list-alg", "kty": "RSA", "alg": ["RS256"], "n": "x", "e": "AQAB"},
        {"kid": "hs", "kty": "oct", "k": "c2VjcmV0"},
        {"kid": "bad-n", "kty": "RSA", "n": 5, "e": ""},
        "not an object",
        None,
        float("nan"),
    ],
    ids=["kid-list", "kid-object", "alg-none", "alg-list", "oct", "bad-n", "string", "null", "nan"],
)
def test_one_hostile_key_next_to_a_good_one_is_dropped(api, idp, extra_key, caplog):
    """Findings 1 and 5: one bad key made every lookup fail (TypeError 500, or PyJWT 2.15's PyJWKSetError)."""
    good = idp.jwks()
    idp.jwks_body = json.dumps({"keys": [extra_key, *good["keys"]]}).encode()
    response = api(idp.mint())
    assert response.status_code == 200, response.content
    assert any("is not used" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [b'{"keys": 5}', b"null", b"true", b"NaN", b"[]", b'{"keys": "x"}', b"{}", b'{"keys": [1, 2]}', b"\xff\xfe"],
)
def test_malformed_key_sets_are_401_not_500(api, idp, body):
    """Finding 3: ``{"keys": 5}``, ``null``, ``true`` or ``NaN`` raised TypeError while building a log line."""
    from simplejwt_patches.failures import JWKSFailure

    idp.jwks_body = body
    response = api(idp.mint())
    assert response.status_code == 401, response.content
    assert find_in_chain(last_exception(), JWKSFailure).kind in ("malformed", "no_usable_key")


def test_deeply_nested_key_set_is_401_not_500(api, idp):
    """Finding 4: ~200 KB of nesting (under JWKS_MAX_BYTES) raised RecursionError."""
    from simplejwt_patches.failures import JWKSFailure

    depth = 100_000
    idp.jwks_body = b'{"keys": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(idp.jwks_body) < 256 * 1024
    response = api(idp.mint())
    assert response.status_code == 401
    assert find_in_chain(last_exception(), JWKSFailure).kind == "malformed"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "-5", "abc", "99999999999999999999"])
def test_hostile_max_age_keeps_the_refetch_bound(api, idp, value):
    """Finding 2: ``max-age=nan`` made every request refetch (50 validations, 50 fetches)."""
    idp.cache_control = f"max-age={value}"
    for _ in range(20):
        assert api(idp.mint()).status_code == 200
    assert len(idp.jwks_requests()) == 1


@pytest.mark.fixer("token.init.hostile-input")
@pytest.mark.parametrize(
    "raw",
    [
        {"exp": '"1700000000"'},  # numeric string: TypeError in check_exp (every release)
        {"exp": "1e19"},  # OverflowError in datetime_from_epoch (every release)
        {"exp": "1e999"},  # inf
        {"exp": "NaN"},
        {"exp": "-1e19"},
        {"exp": "[1]"},
        {"exp": "null"},
        {"iat": "Infinity"},  # PyJWT 2.0-2.4: _validate_iat compares before checking the type
        {"iat": "[]"},
        {"iat": "null"},
        {"nbf": "Infinity"},
        {"nbf": "[1, 2]"},
        {"nbf": "null"},
        {"nbf": "-Infinity"},
        {"exp": "99999999999999999999999999"},
    ],
    ids=lambda raw: "-".join(f"{k}={v}" for k, v in raw.items()),
)
def test_hostile_claims_are_401_never_500(api, idp, raw):
    """Finding 12: vanilla SimpleJWT/PyJWT crash on these; the shim must not pass the 500 on."""
    response = api(with_claims(idp, **raw))
    assert response.status_code == 401, response.content


@pytest.mark.fixer("token.init.hostile-input")
def test_deeply_nested_header_is_401_not_500(api, idp):
    """Finding 12: PyJWT 2.4 raises RecursionError on a header nested ~60,000 levels (no signature needed)."""
    from tests.conftest import register_sensitive_token

    depth = 60_000
    header = '{"alg": "RS256", "kid": "x", "x": ' + "[" * depth + "]" * depth + "}"
    token = register_sensitive_token(f"{_b64(header.encode())}.{_b64(b'{}')}.c2ln")
    response = api(token)
    assert response.status_code == 401, response.content[:200]
    assert find_in_chain(last_exception(), RecursionError) or True  # chained where the crash happened


@pytest.mark.fixer("token.init.hostile-input")
def test_a_crash_in_the_projects_own_token_class_is_not_hidden(idp, fresh_backend):
    """Only library code counts: the same ValueError from the project's own ``verify`` still propagates."""
    from rest_framework_simplejwt.exceptions import TokenError

    from simplejwt_patches.tokens import BearerAccessToken

    class ProjectToken(BearerAccessToken):
        def verify(self) -> None:
            super().verify()
            raise ValueError("the project's own bug")

    with pytest.raises(TokenError) as hostile:
        BearerAccessToken(with_claims(idp, exp="1e19"))
    assert isinstance(hostile.value.__cause__, OverflowError)
    with pytest.raises(ValueError, match="the project's own bug"):
        ProjectToken(idp.mint())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 1e30, "5", True, None])
@pytest.mark.parametrize("key", ["JWKS_TIMEOUT", "JWKS_REFETCH_COOLDOWN", "JWKS_CACHE_MAX", "JWKS_STALE_IF_ERROR"])
def test_settings_refuse_nan_inf_negative_and_huge_numbers(key, value):
    """Finding 2: settings validation accepted NaN and infinity for timeouts, cooldowns and bounds."""
    import math

    from simplejwt_patches.checks import check_settings
    from simplejwt_patches.conf import get_options

    with override_settings(SIMPLE_JWT_PATCHES={key: value}):
        messages = check_settings()
        effective = get_options().value(key)
    assert [m.id for m in messages] == ["simplejwt_patches.E011"] and key in messages[0].msg
    assert math.isfinite(effective) and effective >= 0


@pytest.mark.fixer("pyjwt.client.key-source")
def test_nan_max_age_with_the_shared_cache_is_not_a_500(api, idp, redis, fresh_backend):
    """Finding 2: with JWKS_SHARED_CACHE, ``max-age=nan`` answered a mix of 500 and 401 (math.ceil(nan))."""
    caches = {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis}}
    idp.cache_control = "max-age=nan"
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "jwks"}):
        for _ in range(3):
            fresh_backend()
            for _ in range(10):
                assert api(idp.mint()).status_code == 200
    assert len(idp.jwks_requests()) == 1  # the other "processes" adopted the published set


def _dropped_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "simplejwt_patches.jwks" and "is not used" in r.getMessage()]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("kty", ["RSA"]),
        ("kty", {"RSA": True}),
        ("kty", 7),
        ("kty", True),
        ("kty", None),
        ("kty", float("nan")),
        ("kty", "R" * 100_000),
        ("kid", "k" * 100_000),
        ("alg", {"RS256": 1}),
        ("use", ["sig"]),
        ("key_ops", "verify"),
        ("key_ops", [["verify"]]),
        ("e", ["AQAB"]),
        ("n", {"n": 1}),
        ("crv", ["P-256"]),
        ("x5c", [{"cert": 1}]),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) or len(v) > 20 else v,
)
def test_a_key_with_any_json_type_in_a_member_is_dropped_with_one_warning(api, idp, caplog, member, value):
    """Issue 16 point 15: ``kty`` as a list or an object next to a good key made every token a 401
    (a TypeError from the membership test) and nothing was logged."""
    good = idp.jwks()["keys"]
    signing = next(k for k in good if k["use"] == "sig")
    idp.jwks_body = json.dumps({"keys": [{**signing, "kid": "hostile-member", member: value}, *good]}).encode()
    with caplog.at_level(logging.DEBUG, "simplejwt_patches"):
        response = api(idp.mint())
    assert response.status_code == 200, response.content
    (warning,) = [r.getMessage() for r in _dropped_lines(caplog) if r.levelno == logging.WARNING]
    assert "key #0 (kid " in warning and f": {member} " in warning, warning
