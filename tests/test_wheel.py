"""The installed wheel is what CI proves: the Keycloak scenario against ``simplejwt_patches`` from site-packages.

Run by ``nox -s wheel``: the wheel is built, installed into a fresh venv outside the checkout, and this
module runs from a copy of ``tests/`` in a temp dir (``SJP_CHECKOUT`` names the checkout, which must
not be where the package comes from). Each case is a fresh Django process (tests/project/demo_request.py)
against the WAF-fronted Keycloak-shaped IdP of tests/idp.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution
from pathlib import Path

import pytest

from tests.conftest import register_sensitive_token
from tests.idp import Mode

if os.environ.get("SJP_SESSION") != "wheel":
    pytest.skip("run by `nox -s wheel` (the built wheel in a fresh venv)", allow_module_level=True)

HERE = Path(__file__).resolve().parent.parent  # the copy holding tests/, not the checkout
CHECKOUT = Path(os.environ["SJP_CHECKOUT"]).resolve()
APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"]


def inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def demo_request(idp, apps: list[str]) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SJP_") and k != "PYTHONPATH"},
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": str(HERE),
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
        "SJP_APPS": ",".join(apps),
        "SJP_SUBJECT": idp.subject,
        "SJP_TOKEN": register_sensitive_token(idp.mint()),
        "SJP_SHOW_ORIGIN": "1",
    }
    done = subprocess.run(
        [sys.executable, str(HERE / "tests" / "project" / "demo_request.py")],
        env=env, cwd=HERE, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    origin = next(line for line in done.stdout.splitlines() if "simplejwt_patches imported from:" in line)
    assert_installed(Path(origin.split("from:", 1)[1].strip()))
    assert env["SJP_TOKEN"] not in done.stdout + done.stderr
    return done.stdout


def assert_installed(module_file: Path) -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert inside(module_file.resolve(), site_packages), f"{module_file} is not in {site_packages}"
    assert not inside(module_file.resolve(), CHECKOUT), f"{module_file} comes from the checkout"


def test_the_package_comes_from_the_installed_wheel():
    import simplejwt_patches

    assert_installed(Path(simplejwt_patches.__file__))
    assert inside(Path(sys.prefix).resolve(), Path(os.environ["SJP_VENV"]).resolve())
    assert not inside(Path.cwd().resolve(), CHECKOUT)
    dist = distribution("simplejwt-patches")
    assert dist.version == simplejwt_patches.__version__
    files = [str(f) for f in dist.files or []]
    assert any(f.endswith("/LICENSE") and ".dist-info/" in f for f in files), files
    assert any(f.endswith("simplejwt_patches/py.typed") for f in files)


def test_waf_keycloak_rejected_without_the_app(idp):
    idp.mode = Mode.WAF
    out = demo_request(idp, APPS)
    assert "GET /api/whoami -> HTTP 401" in out, out
    assert all(r.status == 403 for r in idp.jwks_requests())


def test_waf_keycloak_accepted_with_the_installed_app(idp):
    idp.mode = Mode.WAF
    out = demo_request(idp, [*APPS, "simplejwt_patches"])
    assert "GET /api/whoami -> HTTP 200" in out, out
    assert idp.subject in out
    (fetch,) = idp.jwks_requests()
    assert fetch.status == 200 and fetch.headers["User-Agent"].startswith("simplejwt-patches/")


def test_idp_refusing_everyone_gives_401_with_the_cause(idp):
    idp.mode = Mode.FORBIDDEN
    out = demo_request(idp, [*APPS, "simplejwt_patches"])
    assert "GET /api/whoami -> HTTP 401" in out, out
    warnings = [line for line in out.splitlines() if "log: WARNING simplejwt_patches" in line]
    assert any("HTTP 403" in line for line in warnings), out
    chain = next(line for line in out.splitlines() if "exception chain:" in line)
    assert "HTTPError(403)" in chain, chain
