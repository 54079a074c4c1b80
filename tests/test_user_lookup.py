"""Issue 10: a Keycloak ``sub`` (a UUID) looked up in an integer ``USER_ID_FIELD`` is a 401, not a 500.

Through DRF's real request path; the WARNING, the ``token_rejected`` signal and system check W040
are asserted; the sub itself (it can be personal data) is never logged.
"""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings
from packaging.version import Version

from simplejwt_patches.checks import check_user_lookup
from simplejwt_patches.patches import user_lookup
from simplejwt_patches.patches.user_lookup import UserLookupError
from tests.conftest import last_exception
from tests.helpers import PYJWT, SIMPLEJWT, craft, find_in_chain, use_simple_jwt

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("auth.get-user.lookup-error")]

STATELESS = "rest_framework_simplejwt.authentication." + (
    "JWTStatelessUserAuthentication" if SIMPLEJWT >= Version("5.2") else "JWTTokenUserAuthentication"
)
STATEFUL = "rest_framework_simplejwt.authentication.JWTAuthentication"


@pytest.fixture(autouse=True)
def _fresh_warnings():
    user_lookup._warned.clear()
    yield
    user_lookup._warned.clear()


def test_uuid_sub_with_an_integer_user_id_field_is_a_401(api, idp, monkeypatch, caplog):
    from django.core.exceptions import ValidationError

    from simplejwt_patches.signals import token_rejected

    use_simple_jwt(monkeypatch, USER_ID_FIELD="id")
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    token_rejected.connect(receiver)
    try:
        with caplog.at_level(logging.WARNING, "simplejwt_patches"):
            response = api(idp.mint())
            again = api(idp.mint())
    finally:
        token_rejected.disconnect(receiver)
    assert response.status_code == 401 and again.status_code == 401
    assert response.json()["code"] == "user_not_found"
    exc = last_exception()
    lookup = find_in_chain(exc, UserLookupError)
    assert isinstance(lookup.__cause__, (ValueError, ValidationError, TypeError))
    assert idp.subject not in str(lookup)
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "user_lookup" in r.getMessage()
    ]
    assert len(warnings) == 1  # rate limited: every token hits it
    assert "USER_ID_CLAIM 'sub'" in warnings[0] and "USER_ID_FIELD 'id'" in warnings[0]
    assert "a str of 36 characters" in warnings[0] and "JWTStatelessUserAuthentication" in warnings[0]
    assert all(idp.subject not in r.getMessage() for r in caplog.records)
    assert [s["reason_code"] for s in seen] == ["user_lookup", "user_lookup"]
    assert idp.subject not in repr(seen)


def test_a_missing_user_is_still_upstreams_401(api, idp, monkeypatch):
    response = api(idp.mint({"sub": "nobody-here"}))
    assert response.status_code == 401 and response.json()["code"] == "user_not_found"
    with pytest.raises(AssertionError):
        find_in_chain(last_exception(), UserLookupError)


def test_errors_from_the_projects_own_code_are_not_swallowed(api, idp, monkeypatch):
    """A ValueError raised by the user model (not by the lookup) stays a 500."""
    from django.contrib.auth import get_user_model

    def broken(self):
        raise ValueError("the project's own bug")

    monkeypatch.setattr(get_user_model(), "is_active", property(broken, lambda self, value: None), raising=False)
    assert api(idp.mint()).status_code == 500


def test_a_huge_integer_sub_is_a_401_too(api, idp, monkeypatch):
    use_simple_jwt(monkeypatch, USER_ID_FIELD="id")
    response = api(idp.mint({"sub": 10**30}))
    assert response.status_code == 401


@pytest.mark.parametrize("field", ["id", "username"])
def test_a_deeply_nested_sub_is_a_401_not_a_recursion_error(api, idp, monkeypatch, field):
    """Found by the fuzz session on 5.2.0: the ORM recursed through a 600-deep ``sub`` until RecursionError."""
    import json

    import jwt

    use_simple_jwt(monkeypatch, USER_ID_FIELD=field)
    claims = jwt.decode(idp.mint(expires_in=3600), options={"verify_signature": False})
    claims["sub"] = "@"
    claims_text = json.dumps(claims).replace('"@"', "[" * 600 + "]" * 600)
    response = api(craft(idp, claims=claims_text))
    assert response.status_code == 401, response.content[:200]
    if PYJWT >= Version("2.10"):  # PyJWT checks that ``sub`` is a string before anything looks it up
        assert response.json()["code"] == "token_not_valid"
        return
    assert response.json()["code"] == "user_not_found"
    assert isinstance(find_in_chain(last_exception(), RecursionError), RecursionError)


def classes(*paths: str) -> override_settings:
    from django.conf import settings

    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": list(paths)})


def simple_jwt(**overrides: object) -> override_settings:
    from django.conf import settings

    return override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, **overrides})


def test_system_check_w040():
    with simple_jwt(USER_ID_FIELD="id"):
        messages = check_user_lookup()
        assert [m.id for m in messages] == ["simplejwt_patches.W040"]
        assert "USER_ID_FIELD 'id'" in messages[0].msg and "AutoField auth.User.id" in messages[0].msg
        assert "JWTStatelessUserAuthentication" in messages[0].hint
        with classes(STATELESS):
            assert check_user_lookup() == []  # no database lookup
        with classes(STATELESS, STATEFUL):
            assert [m.id for m in check_user_lookup()] == ["simplejwt_patches.W040"]
        with classes("tests.test_doctor_stack.CreatingJWTAuthentication"):
            assert check_user_lookup() == []  # its own get_user
    assert check_user_lookup() == []  # USER_ID_FIELD = "username"
    with simple_jwt(USER_ID_FIELD="id", USER_ID_CLAIM="user_id"):
        assert check_user_lookup() == []
    with simple_jwt(USER_ID_FIELD="id", JWK_URL=None):
        assert check_user_lookup() == []
