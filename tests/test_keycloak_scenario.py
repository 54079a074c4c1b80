"""The scenario of the README, end to end through DRF's real request path.

A Keycloak behind a WAF that answers 403 to urllib's default User-Agent.
"""

from __future__ import annotations

import logging
import urllib.error

import pytest

import simplejwt_patches
from tests.conftest import last_exception
from tests.helpers import chain_names, expected_body, find_in_chain
from tests.idp import Mode

pytestmark = pytest.mark.django_db


@pytest.mark.fixer("pyjwt.client.transport")
def test_waf_keycloak_token_accepted_with_the_shim(api, idp):
    idp.mode = Mode.WAF
    response = api(idp.mint())
    assert response.status_code == 200, response.content
    assert response.json() == {"username": idp.subject, "azp": "acme-web"}
    (fetch,) = idp.jwks_requests()
    assert fetch.status == 200
    assert fetch.headers["User-Agent"].startswith("simplejwt-patches/")
    assert "PyJWT/" in fetch.headers["User-Agent"]


def test_waf_keycloak_token_rejected_without_the_shim(api, idp):
    simplejwt_patches.revert()
    idp.mode = Mode.WAF
    response = api(idp.mint())
    assert response.status_code in (401, 500)  # 500 on releases <= 5.2.0 (PyJWKClientError escapes)
    assert all(r.status == 403 for r in idp.jwks_requests())
    assert idp.jwks_requests()[0].headers.get("User-Agent", "").startswith("Python-urllib")


@pytest.mark.fixer("auth.validated-token.cause")
@pytest.mark.fixer("backend.verifying-key.jwks-errors")
def test_idp_forbidding_everyone_gives_401_warning_and_cause(api, idp, caplog):
    idp.mode = Mode.FORBIDDEN
    with caplog.at_level(logging.WARNING, logger="simplejwt_patches"):
        response = api(idp.mint())
    assert response.status_code == 401
    assert response.json() == expected_body()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("simplejwt_patches")]
    assert any("HTTP 403 Forbidden" in r.getMessage() and idp.jwks_url in r.getMessage() for r in warnings)
    exc = last_exception()
    assert type(exc).__name__ == "InvalidToken"
    names = chain_names(exc)
    assert names[:3] == ["InvalidToken", "TokenError", "TokenBackendError"], names
    http_error = find_in_chain(exc, urllib.error.HTTPError)
    assert http_error.code == 403
    # Order: PyJWT's error sits between SimpleJWT's and urllib's.
    assert names.index("HTTPError") > names.index("TokenBackendError") + 1


def test_revert_then_apply_round_trip(api, idp):
    idp.mode = Mode.WAF
    simplejwt_patches.revert()
    assert api(idp.mint()).status_code != 200
    simplejwt_patches.apply()
    assert api(idp.mint()).status_code == 200
