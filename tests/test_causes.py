"""Every JWKS fault mode: 401 (never 500), upstream's body unchanged, the cause chained to the root.

Through DRF's real request path and at unit level (``JWTAuthentication.get_validated_token``).
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error

import jwt
import pytest

from simplejwt_patches.failures import JWKSFailure, JWKSResponseTooLarge
from tests.conftest import last_exception
from tests.helpers import INVALID_MESSAGE, SIMPLEJWT, chain, chain_names, expected_body, find_in_chain
from tests.idp import Mode, closed_port_url

pytestmark = pytest.mark.django_db

FAULTS = {
    Mode.FORBIDDEN: urllib.error.HTTPError,
    Mode.NOT_FOUND: urllib.error.HTTPError,
    Mode.SERVER_ERROR: urllib.error.HTTPError,
    Mode.HANG: TimeoutError,
    Mode.MALFORMED: json.JSONDecodeError,
    Mode.EMPTY: JWKSFailure,
    Mode.CLOSE: http.client.HTTPException,
    Mode.REDIRECT: urllib.error.HTTPError,
}
KINDS = {
    Mode.FORBIDDEN: "status",
    Mode.NOT_FOUND: "status",
    Mode.SERVER_ERROR: "status",
    Mode.HANG: "timeout",
    Mode.MALFORMED: "malformed",
    Mode.EMPTY: "no_usable_key",
    Mode.CLOSE: "dropped",
    Mode.REDIRECT: "redirect",
}
STATUS = {Mode.FORBIDDEN: 403, Mode.NOT_FOUND: 404, Mode.SERVER_ERROR: 500, Mode.REDIRECT: 302}


def patches(**options: object):
    from django.test import override_settings

    return override_settings(SIMPLE_JWT_PATCHES=options)


@pytest.mark.parametrize("mode", list(FAULTS), ids=lambda m: m.value)
def test_fault_gives_401_with_body_unchanged_and_cause_chained(api, idp, mode, caplog):
    idp.mode = mode
    idp.hang_seconds = 1.0
    # A short deadline only where the IdP hangs (a loaded CI core can take longer than 0.2 s to answer)
    timeout = 0.2 if mode is Mode.HANG else 2
    with patches(JWKS_TIMEOUT=timeout), caplog.at_level(logging.WARNING, "simplejwt_patches"):
        response = api(idp.mint())
    assert response.status_code == 401
    assert response.json() == expected_body()
    exc = last_exception()
    names = chain_names(exc)
    assert names[:3] == ["InvalidToken", "TokenError", "TokenBackendError"], names
    assert any(isinstance(e, jwt.PyJWTError) for e in chain(exc)[3:]), names
    root = find_in_chain(exc, FAULTS[mode])
    assert find_in_chain(exc, JWKSFailure).kind == KINDS[mode]  # one failure type, created where it happened
    if mode in STATUS:
        assert root.code == STATUS[mode]
    if mode is not Mode.EMPTY:  # an empty set is a valid fetch; PyJWT rejects it afterwards
        assert any(r.name == "simplejwt_patches.jwks" and r.levelno == logging.WARNING for r in caplog.records)


def test_connection_refused(api, idp, fresh_backend):
    from django.conf import settings
    from django.test import override_settings

    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "JWK_URL": closed_port_url()}):
        fresh_backend()
        response = api(idp.mint())
    assert response.status_code == 401
    assert response.json() == expected_body()
    find_in_chain(last_exception(), ConnectionRefusedError)


def test_oversized_key_set_is_a_401(api, idp):
    with patches(JWKS_MAX_BYTES=64):
        assert api(idp.mint()).status_code == 401
    find_in_chain(last_exception(), JWKSResponseTooLarge)


@pytest.mark.fixer("token.init.chain-cause")
@pytest.mark.fixer("token.init.record-failure")
def test_unit_level_chain_from_get_validated_token(idp, fresh_backend):
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken

    idp.mode = Mode.FORBIDDEN
    with pytest.raises(InvalidToken) as info:
        JWTAuthentication().get_validated_token(idp.mint().encode())
    names = chain_names(info.value)
    assert names[:3] == ["InvalidToken", "TokenError", "TokenBackendError"]
    assert find_in_chain(info.value, urllib.error.HTTPError).code == 403
    assert info.value.detail["messages"][0]["message"] == INVALID_MESSAGE


@pytest.mark.fixer("backend.decode.chain-cause")
def test_bad_signature_is_chained_to_pyjwt_error(api, idp):
    from tests.idp import generate_rsa_key

    forged = idp.mint(key=generate_rsa_key())  # claims the active kid, signed by another key
    response = api(forged)
    assert response.status_code == 401
    find_in_chain(last_exception(), jwt.InvalidSignatureError)


def test_expired_token_keeps_cause(api, idp):
    response = api(idp.mint(expires_in=-60))
    assert response.status_code == 401
    find_in_chain(last_exception(), jwt.ExpiredSignatureError)


def test_unknown_kid_after_fresh_fetch_is_401(api, idp):
    from tests.idp import generate_rsa_key

    stranger = idp.mint(kid="unknown-kid", key=generate_rsa_key())
    assert api(stranger).status_code == 401
    assert "Unable to find a signing key" in str(find_in_chain(last_exception(), jwt.PyJWKClientError))


def test_valid_token_still_authenticates(api, idp):
    assert api(idp.mint()).status_code == 200


def test_shim_does_not_touch_successful_path_exceptions(api, idp):
    assert api(idp.mint()).status_code == 200
    assert api(None).status_code == 401  # no credentials: DRF's own NotAuthenticated
    assert SIMPLEJWT.major in (4, 5)  # 4.8.0 is the first pinned release


@pytest.mark.fixer("token.init.force-verify")
def test_forged_token_rejected_even_with_verifying_key_none(api, idp):
    """SimpleJWT 5.2.1 skips verification when VERIFYING_KEY is None; the shim verifies anyway."""
    from django.conf import settings
    from django.test import override_settings

    from tests.idp import generate_rsa_key

    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "VERIFYING_KEY": None}):
        assert api(idp.mint(key=generate_rsa_key())).status_code == 401
        assert api(idp.mint(expires_in=-60)).status_code == 401
        assert api(idp.mint()).status_code == 200


@pytest.mark.fixer("token.init.force-verify")
def test_force_verify_works_alone_with_the_diagnostics_fixer_disabled(api, idp):
    """Defect 1 of issue 7: with ``auth.validated-token.cause`` disabled, 5.2.1 accepted forged tokens (200)."""
    from django.conf import settings
    from django.test import override_settings

    import simplejwt_patches
    from tests.idp import generate_rsa_key

    overrides = {
        "SIMPLE_JWT": {**settings.SIMPLE_JWT, "VERIFYING_KEY": None},
        "SIMPLE_JWT_PATCHES": {**settings.SIMPLE_JWT_PATCHES, "DISABLE": ["auth.validated-token.cause"]},
    }
    with override_settings(**overrides):
        simplejwt_patches.revert()
        status = simplejwt_patches.apply()
        try:
            states = {f.id: f.state for f in status.fixers}
            assert states.get("auth.validated-token.cause", "disabled") == "disabled"
            forged = idp.mint(key=generate_rsa_key(), expires_in=-86400)  # attacker's key, the IdP's kid, expired
            assert api(forged).status_code == 401
            assert api(idp.mint()).status_code == 200
        finally:
            simplejwt_patches.revert()
    simplejwt_patches.apply()


@pytest.mark.fixer("token.init.force-verify")
def test_force_verify_passes_every_other_argument_through():
    """Defect 6 of issue 7: ``force_verify`` called ``wrapped(token, True)`` and dropped the rest."""
    from simplejwt_patches.patches import token as token_patches

    seen: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def wrapped(*args: object, **kwargs: object) -> None:
        seen.append((args, kwargs))

    def call(*args: object, **kwargs: object) -> None:
        token_patches.verifying_request(lambda: token_patches.force_verify(wrapped, None, args, kwargs), None, (), {})

    call("tok", False, "extra", backend="b")
    call("tok", verify=False, backend="b")
    call("tok", False)
    token_patches.force_verify(wrapped, None, ("tok", False, "extra"), {})  # outside authentication: untouched
    assert seen == [
        (("tok", True, "extra"), {"backend": "b"}),
        (("tok",), {"verify": True, "backend": "b"}),
        (("tok", True), {}),
        (("tok", False, "extra"), {}),
    ]
