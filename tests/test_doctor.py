"""``manage.py simplejwt_doctor`` and the ``check --deploy`` live JWKS probe, against the loopback IdP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from simplejwt_patches.checks import check_jwks_live
from tests.conftest import register_sensitive_token
from tests.helpers import doctor, newest_cell_only
from tests.idp import Mode, closed_port_url, generate_rsa_key

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).parent.parent


def sj(**overrides: object) -> override_settings:
    return override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, **overrides})


@pytest.fixture
def project_settings(monkeypatch):
    """Run with other SIMPLE_JWT values everywhere SimpleJWT reads them (its modules bind api_settings
    at import; override_settings rebinds only rest_framework_simplejwt.settings.api_settings)."""
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt import settings as sj_settings

    def apply(**overrides: object) -> None:
        new = sj_settings.APISettings(
            {**settings.SIMPLE_JWT, **overrides}, sj_settings.DEFAULTS, sj_settings.IMPORT_STRINGS
        )
        for module in (authentication, tokens, sj_settings):
            monkeypatch.setattr(module, "api_settings", new)

    return apply


def test_good_token(alice, idp, fresh_backend):
    code, text = doctor(token=idp.mint())
    assert code == 0
    assert "✓ verdict: the API would answer 200" in text and "result: OK" in text
    for name in ("decode", "algorithm", "kid", "signature", "expiry", "issuer", "audience", "token type", "jti"):
        assert f"✓ {name}:" in text
    assert "djangorestframework-simplejwt" in text and "simplejwt-patches" in text
    assert "a signing key matches ALGORITHM RS256" in text
    assert "cache policy: Cache-Control 'no-cache' -> cached 300 s" in text  # Keycloak's header, our fallback


def test_good_token_json(alice, idp, fresh_backend):
    code, text = doctor("--json", "--all-claims", token=idp.mint())
    data = json.loads(text)
    assert code == 0 and data["ok"] is True
    assert data["verdict"] == {
        "accepted": True,
        "status": 200,
        "user": idp.subject,
        "token_class": "BearerAccessToken",
        "auth_class": "rest_framework_simplejwt.authentication.JWTAuthentication",
    }
    assert data["jwks"]["status"] == 200 and data["jwks"]["matches_algorithm"] is True
    assert {c["name"] for c in data["checks"] if c["ok"] is False} == set()
    assert data["token"]["claims"]["azp"] == "acme-web"
    assert data["patches"]["applied"] is True


def _forge_alg(idp, alg: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(idp.signing_key_pem(), password=None)
    claims = jwt.decode(idp.mint(), options={"verify_signature": False})
    token = jwt.encode(claims, key, algorithm=alg, headers={"kid": idp.active_kid})
    return register_sensitive_token(token if isinstance(token, str) else token.decode())


CASES = {
    "unknown kid": (lambda idp: idp.mint(kid="gone-kid", key=generate_rsa_key()), "kid", "rotated its keys", {}),
    "algorithm": (lambda idp: _forge_alg(idp, "RS512"), "algorithm", "SIMPLE_JWT['ALGORITHM'] = 'RS512'", {}),
    "signature": (lambda idp: idp.mint(key=generate_rsa_key()), "signature", "altered", {}),
    "expired": (lambda idp: idp.mint(expires_in=-120), "expiry", "fix NTP", {}),
    "issuer": (lambda idp: idp.mint({"iss": "https://sso.example.com/realms/acme"}), "issuer", "frontend URL", {}),
    "audience": (lambda idp: idp.mint({"aud": "other-api"}), "audience", "Audience mapper", {}),
    "token type": (
        lambda idp: idp.mint(),
        "token type",
        "simplejwt_patches.tokens.BearerAccessToken",
        {"TOKEN_TYPE_CLAIM": "token_type", "AUTH_TOKEN_CLASSES": ("rest_framework_simplejwt.tokens.AccessToken",)},
    ),
    "no sub": (lambda idp: idp.mint({"sub": None}), "user id claim", "lightweight", {}),
    "no jti": (lambda idp: idp.mint({"jti": None}), "jti", "JTI_CLAIM", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_failure_has_a_cross_and_a_fix(alice, idp, fresh_backend, project_settings, case):
    make, name, fix, overrides = CASES[case]
    token = make(idp)
    project_settings(**overrides)
    code, text = doctor(token=token)
    jcode, jtext = doctor("--json", token=token)
    assert code == 1 and jcode == 1
    assert f"✗ {name}:" in text, text
    fix_line = text.split(f"✗ {name}:", 1)[1].splitlines()[1]
    assert fix_line.strip().startswith("fix:") and fix in fix_line
    data = json.loads(jtext)
    assert data["ok"] is False and data["verdict"]["accepted"] is False
    assert any(c["name"] == name and c["ok"] is False and fix in c["fix"] for c in data["checks"])
    if name != "user id claim":  # a missing sub is rejected by get_user, still a 401
        assert data["verdict"]["status"] == 401


def test_unhealthy_jwks_without_token(idp):
    idp.mode = Mode.FORBIDDEN
    code, text = doctor()
    assert code == 1
    assert "✗ JWKS" in text and "HTTP 403" in text and "JWKS_HEADERS" in text
    idp.mode = Mode.OK
    assert doctor()[0] == 0


def test_redirect_and_tls_are_reported(idp):
    idp.mode = Mode.REDIRECT
    code, text = doctor("--json")
    data = json.loads(text)
    assert code == 1 and data["jwks"]["problem"] == "redirect" and "/elsewhere/certs" in data["jwks"]["redirect_to"]


@newest_cell_only  # the command reading stdin in a subprocess; the in-process doctor tests run on every pin
def test_token_from_stdin_in_a_real_subprocess(alice, idp, fresh_backend, tmp_path):
    token = idp.mint()
    db = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": str(ROOT),
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
        "SJP_DB": str(db),
    }
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], env=env, check=True, timeout=120)
    subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.contrib.auth.models import User; "
         f"User.objects.create(username='{idp.subject}')"],
        env=env, check=True, timeout=60,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "django", "simplejwt_doctor", "--json", "-"],
        input=token, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert token not in done.stdout + done.stderr
    assert json.loads(done.stdout)["verdict"]["accepted"] is True
    expired = idp.mint(expires_in=-60)
    done = subprocess.run(
        [sys.executable, "-m", "django", "simplejwt_doctor", "-"],
        input=expired, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "✗ expiry" in done.stdout and expired not in done.stdout + done.stderr
    idp.mode = Mode.FORBIDDEN  # no token: the JWKS health alone decides
    done = subprocess.run(
        [sys.executable, "-m", "django", "simplejwt_doctor", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["jwks"]["status"] == 403 and data["jwks"]["problem"] == "status" and data["token"] is None


def test_token_file(alice, idp, fresh_backend, tmp_path):
    path = tmp_path / "token.txt"
    token = idp.mint()
    path.write_text(f"Bearer {token}\n")
    out = io.StringIO()
    call_command("simplejwt_doctor", "--token-file", str(path), stdout=out)
    assert "result: OK" in out.getvalue() and token not in out.getvalue()


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_deploy_check_healthy(idp):
    assert check_jwks_live() == []


@pytest.mark.parametrize(
    ("mode", "check_id"),
    [(Mode.FORBIDDEN, "simplejwt_patches.E102"), (Mode.REDIRECT, "simplejwt_patches.E103"),
     (Mode.EMPTY, "simplejwt_patches.E104"), (Mode.MALFORMED, "simplejwt_patches.E104")],
)  # fmt: skip
def test_deploy_check_broken(idp, mode, check_id):
    idp.mode = mode
    assert check_id in ids(check_jwks_live())


def test_deploy_check_unreachable_and_algorithm_and_issuer(idp):
    with sj(JWK_URL=closed_port_url()):
        assert ids(check_jwks_live()) == ["simplejwt_patches.E101"]
    with sj(ALGORITHM="ES256"):
        assert "simplejwt_patches.E105" in ids(check_jwks_live())
    with sj(ISSUER="https://sso.example.com/realms/acme"):
        assert ids(check_jwks_live()) == ["simplejwt_patches.W106"]


def test_deploy_check_only_runs_with_deploy(idp):
    idp.mode = Mode.FORBIDDEN
    call_command("check")  # no network, no error
    assert idp.jwks_requests() == []
    with pytest.raises(SystemCheckError, match=r"simplejwt_patches\.E102"):
        call_command("check", deploy=True)
    assert len(idp.jwks_requests()) >= 1


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER  ", "  Bearer\t"])
def test_bearer_prefix_is_stripped_in_any_case(alice, idp, fresh_backend, tmp_path, prefix):
    """Defect 6 of issue 7: only 'Bearer ' exactly was recognised (and redacted)."""
    path = tmp_path / "token.txt"
    token = idp.mint()
    path.write_text(f"{prefix}{token}\n")
    out = io.StringIO()
    call_command("simplejwt_doctor", "--token-file", str(path), stdout=out)
    assert "result: OK" in out.getvalue()
    assert token not in out.getvalue() and token.split(".")[2] not in out.getvalue()


@pytest.mark.parametrize("issuer_kind", ["list", "tuple"])
def test_issuer_may_be_a_sequence_everywhere(alice, idp, fresh_backend, project_settings, issuer_kind):
    """Defect 3 of issue 7: a list ISSUER crashed `check --deploy` and was compared with a string."""
    from simplejwt_patches.checks import check_jwks_live

    wanted = ["https://other.example/realms/x", idp.issuer]
    project_settings(ISSUER=wanted if issuer_kind == "list" else tuple(wanted))
    assert "simplejwt_patches.W106" not in ids(check_jwks_live())
    _, text = doctor(token=idp.mint())
    assert "✓ issuer" in text
    project_settings(ISSUER=["https://other.example/realms/x"])
    assert "simplejwt_patches.W106" in ids(check_jwks_live())
    _, text = doctor(token=idp.mint())
    assert "✗ issuer" in text


# -- the token checks are a registry (issue 17) -------------------------------------------------


def test_token_checks_run_and_print_in_registration_order(alice, idp, fresh_backend):
    from simplejwt_patches.doctor.token_checks import REGISTRY

    names = [name for name, _ in REGISTRY]
    assert names == [
        "algorithm", "kid", "signature", "expiry", "clock", "issuer", "audience", "authorized party", "token type",
        "user id claim", "jti", "user lookup",
    ]  # fmt: skip
    _, raw = doctor("--json", token=idp.mint())
    printed = [c["name"] for c in json.loads(raw)["checks"]]
    assert printed[0] == "decode" and printed[1:] == [n for n in names if n in printed]


def test_a_registered_check_is_one_function_and_one_that_raises_is_a_cross(alice, idp, fresh_backend, monkeypatch):
    """Adding a check is adding one function; a check that raises is a ✗ under its name, and the rest still run."""
    from simplejwt_patches.doctor import token_checks
    from simplejwt_patches.doctor.report import Check

    monkeypatch.setattr(token_checks, "REGISTRY", list(token_checks.REGISTRY))

    @token_checks.token_check("scope")
    def check_scope(ctx):
        yield Check("scope", "scope" in ctx.claims, f"scope {ctx.claims.get('scope')!r}", "Ask for a scope.")

    token_checks.REGISTRY.insert(0, ("explodes", lambda ctx: iter([1 / 0])))
    with pytest.raises(ValueError, match="already registered"):
        token_checks.token_check("scope")(check_scope)
    code, text = doctor(token=idp.mint({"scope": "openid"}))
    assert code == 0, text
    assert "✗ explodes: cannot be checked: ZeroDivisionError" in text
    assert "✓ algorithm:" in text and "✓ scope: scope 'openid'" in text
    assert text.index("✓ user id claim") < text.index("✓ scope") < text.index("✓ verdict")
