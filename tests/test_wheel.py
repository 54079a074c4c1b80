"""The installed wheel is what CI proves: the Keycloak scenario against ``simplejwt_patches`` from site-packages.

Run by ``nox -s wheel``: the wheel is built, installed into a fresh venv outside the checkout, and this
module runs from a copy of ``tests/`` in a temp dir (``SJP_CHECKOUT`` names the checkout, which must
not be where the package comes from). Each case is a fresh Django process (tests/project/demo_request.py)
against the WAF-fronted Keycloak-shaped IdP of tests/idp.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
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


def _run(*cmd: str, timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd[:4]}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def build_simplejwt_6(tmp: Path, pip: list[str]) -> Path:
    """SimpleJWT 6.0.0 built from the newest pin's sdist (its code unchanged; never committed)."""
    from simplejwt_patches.pins import latest_pin

    sdists = tmp / "sdist"
    _run(*pip, "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", str(sdists),
         f"djangorestframework-simplejwt=={latest_pin().simplejwt}")  # fmt: skip
    (archive,) = sdists.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(sdists, filter="data") if sys.version_info >= (3, 12) else tar.extractall(sdists)
    (source,) = [p for p in sdists.iterdir() if p.is_dir()]
    setup_py = (source / "setup.py").read_text()
    assert 'use_scm_version={"version_scheme": "post-release"},' in setup_py
    setup_py = setup_py.replace('use_scm_version={"version_scheme": "post-release"},', 'version="6.0.0",')
    (source / "setup.py").write_text(setup_py.replace('setup_requires=["setuptools_scm"],', ""))
    info = source / "PKG-INFO"
    info.write_text(re.sub(r"^Version: .*$", "Version: 6.0.0", info.read_text(), count=1, flags=re.M))
    _run(*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp / "built"), str(source))
    (wheel,) = (tmp / "built").glob("djangorestframework_simplejwt-6.0.0-*.whl")
    return wheel


def test_simplejwt_6_installs_beside_the_wheel_and_passes_the_keycloak_scenario(idp, tmp_path):
    """Why 6: `<6` kept pip from installing the package beside SimpleJWT 6.0 (the `proven` policy's day one)."""
    from simplejwt_patches.pins import latest_pin

    venv = tmp_path / "venv6"
    _run(sys.executable, "-m", "venv", str(venv), timeout=120)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    simplejwt_6 = build_simplejwt_6(tmp_path, pip)
    env = latest_pin().env
    constraints = tmp_path / "constraints.txt"  # the newest pin's dependency set: reproducible, still resolved
    constraints.write_text(f"django=={env.django}\ndjangorestframework=={env.drf}\npyjwt=={env.pyjwt}\n")
    _run(*pip, "install", "--quiet", "-c", str(constraints), str(simplejwt_6), os.environ["SJP_WHEEL"])  # the resolver
    shown = _run(*pip, "show", "djangorestframework-simplejwt", "cryptography").stdout
    assert "Version: 6.0.0" in shown and "Name: cryptography" in shown  # PyJWT[crypto] brought it
    for token, expected in ((idp.mint(), "HTTP 200"), (idp.mint({"azp": "some-other-spa"}), "HTTP 401")):
        env_vars = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SJP_") and k != "PYTHONPATH"},
            "DJANGO_SETTINGS_MODULE": "tests.project.settings", "PYTHONPATH": str(HERE), "SJP_JWK_URL": idp.jwks_url,
            "SJP_ISSUER": idp.issuer, "SJP_SUBJECT": idp.subject, "SJP_TOKEN": register_sensitive_token(token),
            "SJP_SHOW_ORIGIN": "1",
        }  # fmt: skip
        out = _run(python, str(HERE / "tests" / "project" / "demo_request.py"), env=env_vars, cwd=HERE).stdout
        assert f"GET /api/whoami -> {expected}" in out, out
        assert f"proven by fingerprint of release {latest_pin().simplejwt}" in out, out
        origin = next(line for line in out.splitlines() if "imported from:" in line).split("from:", 1)[1].strip()
        assert inside(Path(origin).resolve(), venv.resolve()) and not inside(Path(origin).resolve(), CHECKOUT)
