"""The doctor judges with the project's own SimpleJWT authentication classes (issue 10)."""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.authentication import JWTAuthentication


class CreatingJWTAuthentication(JWTAuthentication):
    """The README's recipe: IdP users reach the database on their first request."""

    def get_user(self, validated_token: Any) -> Any:
        from rest_framework_simplejwt.settings import api_settings

        user_id = validated_token[api_settings.USER_ID_CLAIM]
        user, _ = self.user_model.objects.get_or_create(username=str(user_id)[:150])
        return user


# -- tests ----------------------------------------------------------------------------------

import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.test import override_settings  # noqa: E402
from packaging.version import Version  # noqa: E402

import tests.project.views  # noqa: E402, F401 - binds WhoAmI's classes to the defaults before any override below
from tests.helpers import SIMPLEJWT, doctor, use_simple_jwt  # noqa: E402
from tests.idp import Mode, closed_port_url  # noqa: E402

pytestmark = pytest.mark.django_db

STATELESS = "rest_framework_simplejwt.authentication." + (
    "JWTStatelessUserAuthentication" if SIMPLEJWT >= Version("5.2") else "JWTTokenUserAuthentication"
)
STATEFUL = "rest_framework_simplejwt.authentication.JWTAuthentication"
CUSTOM = "tests.test_doctor_stack.CreatingJWTAuthentication"


def auth_classes(*paths: str) -> override_settings:
    """DRF's api_settings reloads on setting_changed, so the doctor and views built now see these."""
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": list(paths)})


def real_status(token: str, classes: list[type] | None = None) -> int:
    """The status of a real request through DRF to a protected view using ``classes`` (default: the
    configured DEFAULT_AUTHENTICATION_CLASSES, read now as a view defined now would)."""
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.settings import api_settings
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    class Protected(APIView):
        authentication_classes = classes if classes is not None else api_settings.DEFAULT_AUTHENTICATION_CLASSES
        permission_classes = (IsAuthenticated,)

        def get(self, request):
            return Response({"ok": True})

    request = APIRequestFactory().get("/protected", HTTP_AUTHORIZATION=f"Bearer {token}")
    try:
        return Protected.as_view()(request).status_code
    except Exception:  # noqa: BLE001 - Django's handler answers an uncaught exception with 500
        return 500


def verdict(token: str, *args: str) -> dict:
    code, text = doctor("--json", *args, token=token)
    data = json.loads(text)
    assert code == (0 if data["verdict"]["accepted"] else 1)
    return data


TOKENS = {
    "good": lambda idp: idp.mint(),
    "expired": lambda idp: idp.mint(expires_in=-120),
    "no sub": lambda idp: idp.mint({"sub": None}),
    "unknown user": lambda idp: idp.mint({"sub": "somebody-else"}),
}


@pytest.mark.parametrize("token_case", list(TOKENS))
@pytest.mark.parametrize(
    ("classes", "judge"),
    [((STATELESS,), STATELESS), ((STATEFUL,), STATEFUL), ((CUSTOM,), CUSTOM), ((STATELESS, STATEFUL), STATELESS)],
    ids=["stateless", "jwtauthentication", "custom-subclass", "stateless-then-stateful"],
)
def test_the_verdict_equals_a_real_request(alice, idp, fresh_backend, classes, judge, token_case):
    token = TOKENS[token_case](idp)
    with auth_classes(*classes):
        data = verdict(token)
        assert data["auth_classes"] == list(classes)
        assert data["verdict"]["status"] == real_status(token)
        assert data["verdict"]["auth_class"] == judge
    if token_case == "good":
        assert data["verdict"]["status"] == 200


@pytest.mark.parametrize(("classes", "expected"), [((STATELESS,), 200), ((STATEFUL,), 401), ((CUSTOM,), 200)])
def test_uuid_sub_with_integer_user_id_field(alice, idp, fresh_backend, monkeypatch, classes, expected):
    """The doctor judges the stack actually configured: only JWTAuthentication fails the lookup."""
    use_simple_jwt(monkeypatch, USER_ID_FIELD="id")
    token = idp.mint()
    with auth_classes(*classes):
        data = verdict(token)
        assert data["verdict"]["status"] == real_status(token) == expected
        _, text = doctor(token=token)
    if expected == 401:
        assert data["verdict"]["reason_code"] == "user_lookup"
        assert "✗ user lookup: 'sub' is a str of 36 characters, which USER_ID_FIELD 'id' (AutoField)" in text
        fix = text.split("✗ user lookup:", 1)[1].splitlines()[1]
        assert "JWTStatelessUserAuthentication" in fix and "USER_ID_FIELD" in fix and "creates users" in fix
        assert "! simplejwt_patches.W040:" in text
        assert any(f["id"] == "simplejwt_patches.W040" for f in data["findings"])
    else:
        assert "✗ user lookup" not in text and "W040" not in text
    claims_line = next(line for line in text.splitlines() if line.startswith("token claims"))
    assert idp.subject not in claims_line and "<present: a str of 36 characters>" in claims_line


def test_auth_class_option(alice, idp, fresh_backend, monkeypatch):
    use_simple_jwt(monkeypatch, USER_ID_FIELD="id")
    token = idp.mint()
    assert verdict(token)["verdict"]["status"] == 401  # DEFAULT_AUTHENTICATION_CLASSES: JWTAuthentication
    data = verdict(token, "--auth-class", CUSTOM)
    assert data["auth_classes"] == [CUSTOM] and data["verdict"]["auth_class"] == CUSTOM
    assert data["verdict"]["status"] == real_status(token, [CreatingJWTAuthentication]) == 200
    _, text = doctor("--auth-class", CUSTOM, token=token)
    assert f"judged by: {CUSTOM}" in text and f"judged by {CUSTOM}" in text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.nope.Missing", "cannot be imported"),
        ("not a path", "cannot be imported"),
        ("rest_framework.authentication.BasicAuthentication", "is not a subclass"),
        ("json.dumps", "is not a subclass"),
    ],
)
def test_auth_class_errors_name_the_option(idp, path, message):
    with pytest.raises(CommandError, match=f"--auth-class .*{message}"):
        call_command("simplejwt_doctor", "--auth-class", path, stdout=io.StringIO())


def test_one_jwks_fetch_per_doctor_run(alice, idp, fresh_backend):
    code, _ = doctor(token=idp.mint())
    assert code == 0
    assert len(idp.jwks_requests()) == 1  # the probe's key set serves the verdict


def test_stdout_holds_only_the_report(alice, idp, fresh_backend, monkeypatch, capsys):
    """A project logging to stdout (common in containers) must not corrupt the report or --json."""
    use_simple_jwt(monkeypatch, USER_ID_FIELD="id")  # the user lookup logs a WARNING during the run
    from simplejwt_patches.patches import user_lookup

    user_lookup._warned.clear()
    handler = logging.StreamHandler(sys.stdout)
    logger = logging.getLogger("simplejwt_patches")
    logger.addHandler(handler)
    try:
        with pytest.raises(SystemExit):
            call_command("simplejwt_doctor", "--json", "--token", idp.mint())
    finally:
        logger.removeHandler(handler)
    out = capsys.readouterr().out
    data = json.loads(out)  # nothing but the JSON object, although the project logs to stdout at DEBUG
    assert data["ok"] is False and data["verdict"]["reason_code"] == "user_lookup"
    assert any(line.startswith("WARNING simplejwt_patches.auth: token rejected (401, user_lookup)") for line in
               data["log"]), data["log"]  # fmt: skip
    assert handler not in logger.handlers and logger.propagate is True  # restored


def test_only_checked_claims_are_printed_by_default(alice, idp, fresh_backend):
    token = idp.mint()
    code, text = doctor(token=token)
    assert code == 0
    claims_line = next(line for line in text.splitlines() if line.startswith("token claims"))
    for personal in ("alice@example.com", "Alice Liddell", "preferred_username", "realm_access"):
        assert personal not in text
    assert idp.subject not in claims_line
    assert '"sub": "<present: a str of 36 characters>"' in text and '"iss"' in text and '"typ": "Bearer"' in text
    _, everything = doctor("--all-claims", token=token)
    assert "alice@example.com" in everything and idp.subject in everything


# -- unreachable identity providers: each kind has its next step ------------------------------


def _unreachable(jwk_url: str | None, mode: Mode | None, idp, monkeypatch, build, **patches: object) -> str:
    overrides = {"JWK_URL": jwk_url} if jwk_url else {}
    if mode is not None:
        idp.mode = mode
    use_simple_jwt(monkeypatch, **overrides)  # not override_settings: its exit would be undone by monkeypatch
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_TIMEOUT": 2, **patches}):
        build()  # SimpleJWT's backend for this JWK_URL
        code, text = doctor(token=idp.mint())
    assert code == 1
    assert len(idp.jwks_requests()) <= 1  # the verdict reuses the probe's outcome
    assert "no response" in text and "status None" not in text
    return text


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        ("refused", "Nothing listens at the JWK_URL's host and port"),
        ("dns", "does not resolve from this host"),
        ("dropped", "accepted and then dropped"),
        ("timeout", "SIMPLE_JWT_PATCHES['JWKS_TIMEOUT']"),
    ],
)
def test_unreachable_kinds_each_have_a_fix(alice, idp, fresh_backend, monkeypatch, kind, fix):
    if kind == "refused":
        text = _unreachable(closed_port_url(), None, idp, monkeypatch, fresh_backend)
    elif kind == "dns":
        text = _unreachable(
            "https://jwks.invalid/realms/acme/protocol/openid-connect/certs", None, idp, monkeypatch, fresh_backend
        )
    elif kind == "dropped":
        text = _unreachable(None, Mode.CLOSE, idp, monkeypatch, fresh_backend)
    else:
        idp.hang_seconds = 1.0
        text = _unreachable(None, Mode.HANG, idp, monkeypatch, fresh_backend, JWKS_TIMEOUT=0.3)
    assert f"problem: {kind}:" in text
    jwks_fix = text.split(f"problem: {kind}:", 1)[1].splitlines()[1]
    assert jwks_fix.strip().startswith("fix:") and fix in jwks_fix
    kid_line = text.split("✗ kid:", 1)[1].splitlines()
    assert f"the JWKS failed ({kind}, no response; see the JWKS line above)" in kid_line[0]
    assert kid_line[1].strip().startswith("fix:") and fix in kid_line[1]


def test_w020_is_repeated_in_the_report(idp, monkeypatch):
    url = "http://jwks.invalid/realms/acme/protocol/openid-connect/certs"
    use_simple_jwt(monkeypatch, JWK_URL=url)
    code, text = doctor()
    jcode, jtext = doctor("--json")
    assert code == jcode == 1
    assert "! simplejwt_patches.W020: SIMPLE_JWT['JWK_URL'] uses http scheme" in text
    assert "fix: Use the identity provider's https:// JWKS URL." in text
    assert [f["id"] for f in json.loads(jtext)["findings"]] == ["simplejwt_patches.W020"]


def test_a_proxy_failure_names_jwks_proxy(alice, idp, fresh_backend):
    proxy = closed_port_url().split("/realms")[0]
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_TIMEOUT": 2, "JWKS_PROXY": proxy}):
        code, text = doctor(token=idp.mint())
    assert code == 1 and "problem: refused:" in text
    fix = text.split("problem: refused:", 1)[1].splitlines()[1]
    assert f"SIMPLE_JWT_PATCHES['JWKS_PROXY'] is set ({proxy})" in fix
    assert idp.jwks_requests() == []  # nothing reached the IdP: the proxy refused
