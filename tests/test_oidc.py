"""A real, certified OpenID Provider: panva's ``oidc-provider`` (npm, pinned in tests/oidc/package-lock.json).

Run by ``nox -s oidc`` (``npm ci`` first). tests/oidc/server.js serves the provider on 127.0.0.1 behind a
WAF rule (403 to ``Python-urllib/*`` on /jwks). Access tokens come from its real token endpoint
(client_credentials grant, RS256 JWT access tokens for one resource); tests/project runs under
gunicorn with ``JWTStatelessUserAuthentication`` (``USER_ID_CLAIM = "client_id"``):

* without simplejwt_patches the token is rejected (401: the WAF refuses PyJWT's User-Agent);
* with it the token is accepted (200);
* after the provider rotates its signing key, a token signed with the new key is accepted.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import register_sensitive_token
from tests.servers import ROOT, Served, project_env, serve

if os.environ.get("SJP_SESSION") != "oidc":
    pytest.skip("run by `nox -s oidc` (npm ci + node tests/oidc/server.js)", allow_module_level=True)
pytest.importorskip("gunicorn")

OIDC = ROOT / "tests" / "oidc"
BASE_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"]
ONE_WORKER = ("gunicorn", "sync", 1, False)  # one process, so the rotation is seen by the same key cache
TIMEOUT = 15.0


class Provider:
    """``node tests/oidc/server.js`` and what it printed when ready."""

    def __init__(self, log: Path) -> None:
        node = shutil.which("node")
        assert node, "node not found (Node.js 20+)"
        assert (OIDC / "node_modules" / "oidc-provider").is_dir(), "run `npm ci --prefix tests/oidc` first"
        self.log = log
        self._err = log.open("wb")
        self.proc = subprocess.Popen(
            [node, str(OIDC / "server.js")], cwd=OIDC, stdout=subprocess.PIPE, stderr=self._err
        )
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout=30)  # bounded wait for the ready line
        if not line or not line[0]:
            self.stop()
            raise AssertionError(f"oidc-provider did not start: {log.read_text(errors='replace')[-2000:]}")
        self.info: dict[str, str] = json.loads(line[0])

    def token(self) -> str:
        """A client_credentials access token from the provider's real token endpoint."""
        basic = base64.b64encode(f"{self.info['client_id']}:{self.info['client_secret']}".encode()).decode()
        request = urllib.request.Request(
            self.info["token_endpoint"],
            data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "api:read"}).encode(),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body = json.load(response)
        assert body["token_type"] == "Bearer"
        return register_sensitive_token(body["access_token"])

    def rotate(self) -> list[str]:
        request = urllib.request.Request(self.info["issuer"] + "/_test/rotate", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return list(json.load(response)["kids"])

    def jwks_requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.info["issuer"] + "/_test/jwks-requests", timeout=TIMEOUT) as response:
            return list(json.load(response))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._err.close()


def header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Provider]:
    provider = Provider(tmp_path / "oidc-provider.log")
    try:
        yield provider
    finally:
        provider.stop()


def api(op: Provider, tmp_path: Path, apps: list[str], patches: dict[str, Any] | None = None) -> Served:
    """tests/project under gunicorn, validating the provider's access tokens."""
    simple_jwt = {
        "AUDIENCE": op.info["resource"],
        "USER_ID_CLAIM": "client_id",
        "TOKEN_TYPE_CLAIM": None,
        "AUTH_TOKEN_CLASSES": ["rest_framework_simplejwt.tokens.AccessToken"],
    }
    env = project_env(
        tmp_path / "db.sqlite3",
        op.info["jwks_uri"],
        op.info["issuer"],
        SJP_APPS=",".join(apps),
        SJP_SIMPLE_JWT=json.dumps(simple_jwt),
        SJP_AUTH="rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",
        SJP_PATCHES=json.dumps(patches or {"JWKS_TIMEOUT": 5}),
    )
    return serve("gunicorn-oidc", env, tmp_path / "server.log", spec=ONE_WORKER)


def test_token_rejected_without_the_app_behind_the_waf(op, tmp_path):
    token = op.token()
    assert header(token)["alg"] == "RS256"
    served = api(op, tmp_path, BASE_APPS)
    try:
        status, body = served.get("/api/pid", token, timeout=TIMEOUT)
    finally:
        served.stop()
    assert status == 401, body
    assert body["code"] == "token_not_valid"
    seen = op.jwks_requests()
    assert seen and all(r["status"] == 403 and r["ua"].startswith("Python-urllib") for r in seen)


def test_token_accepted_with_the_app(op, tmp_path):
    token = op.token()
    served = api(op, tmp_path, [*BASE_APPS, "simplejwt_patches"])
    try:
        status, body = served.get("/api/pid", token, timeout=TIMEOUT)
    finally:
        served.stop()
    assert (status, body["sub"]) == (200, op.info["client_id"]), body
    (seen,) = op.jwks_requests()
    assert seen["status"] == 200 and seen["ua"].startswith("simplejwt-patches/")
    assert token not in served.log_text()


def test_key_rotation_picked_up_with_the_app(op, tmp_path):
    # The default JWKS_REFETCH_COOLDOWN (30 s): only demand refetches use it, so the first token with the
    # rotated kid, right after the cold fetch, triggers an immediate refetch.
    patches = {"JWKS_TIMEOUT": 5}
    before = op.token()
    served = api(op, tmp_path, [*BASE_APPS, "simplejwt_patches"], patches)
    try:
        first = served.get("/api/pid", before, timeout=TIMEOUT)
        kids = op.rotate()
        after = op.token()
        second = served.get("/api/pid", after, timeout=TIMEOUT)
        old_again = served.get("/api/pid", before, timeout=TIMEOUT)  # the old key stays published
    finally:
        served.stop()
    assert first[0] == 200, first
    assert header(after)["kid"] == kids[0] != header(before)["kid"]
    assert second[0] == 200, (second, served.log_text()[-2000:])
    assert old_again[0] == 200, old_again
    seen = op.jwks_requests()
    assert len(seen) == 2 and all(r["status"] == 200 for r in seen), seen  # cold fetch + one for the new kid


KEYCLOAK_WORDING = ("Keycloak", "KC_HOSTNAME", "realm", "Audience mapper", "Audience Resolve")


def run_doctor(op: Provider, tmp_path: Path, token: str, **simple_jwt: Any) -> tuple[int, str]:
    """``manage.py simplejwt_doctor`` in a fresh process of tests/project configured for the provider."""
    token_file = tmp_path / "token.txt"
    token_file.write_text(token)
    settings = {
        "AUDIENCE": op.info["resource"],
        "USER_ID_CLAIM": "client_id",
        "TOKEN_TYPE_CLAIM": None,
        "AUTH_TOKEN_CLASSES": ["rest_framework_simplejwt.tokens.AccessToken"],
        **simple_jwt,
    }
    patches = {"AUTHORIZED_PARTIES": [op.info["client_id"]], "AUTHORIZED_PARTY_CLAIM": "client_id"}
    env = project_env(
        tmp_path / "db.sqlite3", op.info["jwks_uri"], op.info["issuer"],
        SJP_SIMPLE_JWT=json.dumps(settings), SJP_PATCHES=json.dumps(patches),
        SJP_AUTH="rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "django", "simplejwt_doctor", "--token-file", str(token_file)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr and token not in done.stdout
    return done.returncode, done.stdout


def test_the_doctor_speaks_generic_openid_for_this_provider(op, tmp_path):
    """Issue 15: no Keycloak wording for another provider's token; no fix proposes the token's own audience."""
    token = op.token()
    code, text = run_doctor(op, tmp_path, token)
    assert code == 0, text
    assert f"✓ authorized party: client_id '{op.info['client_id']}' is in AUTHORIZED_PARTIES" in text
    assert f"TokenUser id '{op.info['client_id']}'" in text
    code, mismatch = run_doctor(op, tmp_path, token, AUDIENCE="https://another-api.sjp.test/")
    assert code == 1 and "✗ audience:" in mismatch, mismatch
    for output in (text, mismatch):
        assert not [word for word in KEYCLOAK_WORDING if word in output], output
    fixes = [line for line in mismatch.splitlines() if line.strip().startswith("fix:")]
    assert fixes and not [line for line in fixes if op.info["resource"] in line], fixes
