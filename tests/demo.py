"""``make demo``: a Keycloak behind a WAF on 127.0.0.1, SimpleJWT with and without the shim.

Self-contained: starts the Keycloak-shaped IdP from tests/idp.py on a loopback port, then runs
three fresh Django processes (tests/project/settings.py, the README's scenario settings).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.idp import FakeKeycloak, Mode  # noqa: E402

APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"]


def run(idp: FakeKeycloak, title: str, apps: list[str]) -> None:
    print(f"\n== {title}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": str(ROOT),
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
        "SJP_APPS": ",".join(apps),
        "SJP_SUBJECT": idp.subject,
        "SJP_TOKEN": idp.mint(),
    }
    before = len(idp.jwks_requests())
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "project" / "demo_request.py")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    print(done.stdout.rstrip() or "    (no output)")
    if done.returncode:
        print(done.stderr[-2000:])
        raise SystemExit(done.returncode)
    for r in idp.jwks_requests()[before:]:
        print(f"    IdP saw: GET {r.path} User-Agent={r.headers.get('User-Agent')!r} -> {r.status}")


def main() -> None:
    with FakeKeycloak(realm="acme") as idp:
        idp.mode = Mode.WAF
        print(f"Keycloak-shaped IdP on {idp.base_url}, realm 'acme', WAF rejects 'Python-urllib/*' with 403")
        run(idp, "1. SimpleJWT alone: the WAF answers 403, the client sees 'Token is invalid', nothing logged", APPS)
        run(idp, "2. Same project + INSTALLED_APPS 'simplejwt_patches': accepted", [*APPS, "simplejwt_patches"])
        idp.mode = Mode.FORBIDDEN
        run(
            idp,
            "3. With the shim, when the IdP refuses everyone: 401, a WARNING naming the 403, the cause chained",
            [*APPS, "simplejwt_patches"],
        )


if __name__ == "__main__":
    main()
