"""``JWKS_FAILURE_STATUS = 503`` on SimpleJWT's own token views, as on the API (issue 16, point 11).

Real views (``tests/project/urls.py``) through DRF's request path against the loopback IdP, down
(connection refused) or answering 403; the API's answer to the same token is the reference.
"""

from __future__ import annotations

import urllib.error

import pytest
from django.test import override_settings

from simplejwt_patches.failures import JWKSFailure
from tests.conftest import last_exception
from tests.helpers import find_in_chain, use_simple_jwt
from tests.idp import Mode, closed_port_url, generate_rsa_key

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("outage.failure-status")]

#: (view, the field its serializer reads)
VIEWS = [("/api/token/verify", "token"), ("/api/token/refresh", "refresh"), ("/api/token/refresh-sliding", "token")]


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, **options})


def post(path: str, field: str, token: str):
    from rest_framework.test import APIClient

    from tests.project import views

    views.LAST_EXCEPTION.clear()
    return APIClient(raise_request_exception=False).post(path, {field: token}, format="json")


@pytest.fixture(params=["403", "down"])
def outage(request, idp, fresh_backend):
    """The IdP's key set cannot be had: a WAF-style 403, or nothing listening (connection refused)."""
    if request.param == "403":
        idp.mode = Mode.FORBIDDEN
        return "status"
    fresh_backend(jwk_url=closed_port_url())
    return "refused"


@pytest.mark.parametrize(("path", "field"), VIEWS, ids=[v[0].rsplit("/", 1)[1] for v in VIEWS])
def test_token_views_answer_a_jwks_outage_as_the_api_does(api, idp, outage, path, field):
    token = idp.mint({"typ": "refresh" if field == "refresh" else "sliding" if "sliding" in path else "Bearer"})
    with patches(JWKS_FAILURE_STATUS=503):
        reference = api(token)
        assert reference.status_code == 503
        response = post(path, field, token)
        assert response.status_code == 503, response.content
        assert response.json() == reference.json() == {"detail": reference.json()["detail"], "code": "jwks_unavailable"}
        assert response["Retry-After"] == reference["Retry-After"] == "30"
        assert find_in_chain(last_exception(), JWKSFailure).kind == outage
        if outage == "status":
            assert find_in_chain(last_exception(), urllib.error.HTTPError).code == 403


@pytest.mark.parametrize(("path", "field"), VIEWS, ids=[v[0].rsplit("/", 1)[1] for v in VIEWS])
def test_token_views_keep_401_by_default_and_for_token_problems(api, idp, fresh_backend, monkeypatch, path, field):
    idp.mode = Mode.FORBIDDEN
    assert post(path, field, idp.mint()).status_code == 401  # JWKS_FAILURE_STATUS defaults to 401
    idp.mode = Mode.OK
    fresh_backend()
    with patches(JWKS_FAILURE_STATUS=503):
        assert post(path, field, idp.mint(expires_in=-60)).status_code == 401
        assert post(path, field, idp.mint(key=generate_rsa_key())).status_code == 401
        if path == "/api/token/verify":
            # 4.8.0 and 5.0.0 query the blacklist table even without its app (a 500 of their own)
            from rest_framework_simplejwt import serializers
            from rest_framework_simplejwt import settings as sj_settings

            use_simple_jwt(monkeypatch, BLACKLIST_AFTER_ROTATION=False)
            monkeypatch.setattr(serializers, "api_settings", sj_settings.api_settings)
            assert post(path, field, idp.mint()).status_code == 200


def test_a_serializer_used_directly_raises_the_503(idp):
    """Projects that validate with SimpleJWT's serializers in their own views get the same answer."""
    from rest_framework_simplejwt.serializers import TokenVerifySerializer

    from simplejwt_patches.exceptions import JWKSUnavailable

    idp.mode = Mode.FORBIDDEN
    with patches(JWKS_FAILURE_STATUS=503):
        serializer = TokenVerifySerializer(data={"token": idp.mint()})
        with pytest.raises(JWKSUnavailable) as caught:
            serializer.is_valid()
    assert caught.value.status_code == 503 and caught.value.wait == 30
    assert find_in_chain(caught.value, urllib.error.HTTPError).code == 403
