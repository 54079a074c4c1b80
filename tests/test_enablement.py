"""One INSTALLED_APPS entry is all it takes, in every import order (fresh interpreters).

Each case runs a real Django project in a subprocess against the session IdP (WAF mode):
``simplejwt_patches`` before or after ``rest_framework_simplejwt``, after an app whose ``ready()``
already imported ``rest_framework_simplejwt.state`` (so the JWKS client exists before ours runs),
and without the app at all. The subprocess also runs the contract sequence apply/apply/revert/apply
and reports whether any target was double-wrapped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import register_sensitive_token
from tests.idp import Mode

ROOT = Path(__file__).parent.parent
PROBE = ROOT / "tests" / "project" / "probe.py"
BASE = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework"]

EARLY = "tests.project.early.EarlyConfig"
STATE, AUTH, PYJWT = "rest_framework_simplejwt.state", "rest_framework_simplejwt.authentication", "jwt.jwks_client"
#: name -> (INSTALLED_APPS, modules the early app imports in its ready())
ORDERS = {
    "app-last": ([*BASE, "rest_framework_simplejwt", "simplejwt_patches"], ""),
    "app-first": (["simplejwt_patches", *BASE, "rest_framework_simplejwt"], ""),
    "state-imported-first": ([*BASE, "rest_framework_simplejwt", EARLY, "simplejwt_patches"], STATE),
    "authentication-imported-first": ([*BASE, "rest_framework_simplejwt", EARLY, "simplejwt_patches"], AUTH),
    "pyjwt-then-state-first": ([*BASE, "rest_framework_simplejwt", EARLY, "simplejwt_patches"], f"{PYJWT},{STATE}"),
    "state-imported-after": (["simplejwt_patches", *BASE, "rest_framework_simplejwt", EARLY], STATE),
    "without-app": ([*BASE, "rest_framework_simplejwt"], ""),
}


def run_probe(idp, apps: list[str], token: str, early_imports: str = "") -> dict:
    env = {
        **os.environ,
        "SJP_EARLY_IMPORTS": early_imports or STATE,
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
        "SJP_APPS": ",".join(apps),
        "SJP_SUBJECT": idp.subject,
        "SJP_TOKEN": token,
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(PROBE)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("order", list(ORDERS))
def test_enablement_in_every_import_order(idp, order):
    idp.mode = Mode.WAF
    token = register_sensitive_token(idp.mint())
    apps, early_imports = ORDERS[order]
    result = run_probe(idp, apps, token, early_imports)
    if order == "without-app":
        assert result["status"] in (401, 500)  # 500 on SimpleJWT <= 5.2.0
        assert result["applied"] is False
        return
    assert result["status"] == 200, result
    assert result["applied"] is True
    assert result["double_wrapped"] == []
    assert result["restored_after_revert"] is True
    assert result["status_after_reapply"] == 200
    if order in ("state-imported-first", "pyjwt-then-state-first"):
        assert result["client_existed_before_ready"] is True  # created before ready(), still adopted
    assert all(r.headers.get("User-Agent", "").startswith("simplejwt-patches/") for r in idp.jwks_requests()[:1])
