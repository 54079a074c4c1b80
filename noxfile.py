"""The compatibility matrix, generated from the pin table (``simplejwt_patches/pins.py``).

Sessions (``nox -l`` lists them):

* ``lint`` - ruff and mypy;
* ``tests-<release>`` - our suite on each pinned SimpleJWT release with its pinned dependency set;
* ``pyjwt-<version>`` - our suite on the newest release against each PyJWT boundary;
* ``django6`` - the newest release on Django 6.x / Python 3.12+;
* ``upstream-<release>`` - SimpleJWT's own test suite, taken from the release's sdist at test
  time, run without and with ``simplejwt_patches`` in ``INSTALLED_APPS``; any test that passes
  without the shim and not with it fails the session;
* ``demo`` - the self-contained demo (``make demo``).

Interpreters come from pyenv (``$PYENV_ROOT/versions/3.X.*``) or ``python3.X`` on PATH; uv
never downloads one (``UV_PYTHON_DOWNLOADS=never``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))
from simplejwt_patches.pins import EXTRA_ENVS, PINS, PYJWT_BOUNDARIES, Env, latest_pin

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

ROOT = Path(__file__).parent
#: Test tooling, pinned (each supports Python 3.10-3.13 and Django 3.2-6.x).
TEST_DEPS = [
    "pytest==8.4.2",
    "pytest-django==4.11.1",
    "trustme==1.2.1",
    "freezegun==1.5.5",
    "hypothesis==6.140.2",
    "redis==5.2.1",
]
LINT_DEPS = [
    "ruff==0.14.4",
    "mypy==1.18.2",
    "django-stubs==5.2.7",
    "djangorestframework-stubs==3.16.5",
    "types-setuptools",
]
UPSTREAM_TEST_DEPS = ["pip", "pytest==8.4.2", "pytest-django==4.11.1", "freezegun==1.5.5", "python-jose==3.3.0"]


def interpreter(version: str) -> str:
    """Full path of a CPython ``version`` interpreter (pyenv first, then PATH)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for candidate in sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True):
        return candidate
    found = shutil.which(f"python{version}")
    if found:
        return found
    raise RuntimeError(f"no Python {version} interpreter found (pyenv or PATH)")


def install(session: nox.Session, env: Env, simplejwt: str, *extra: str) -> None:
    session.install(*env.requirements(simplejwt), *extra)
    session.install("--no-deps", "--reinstall-package", "simplejwt-patches", str(ROOT))


def run_tests(session: nox.Session) -> None:
    junit = ROOT / ".nox" / f"junit-{session.name}.xml"
    session.run(
        "python", "-m", "pytest", "-q", f"--junitxml={junit}", *session.posargs, env={"PYTHONPATH": str(ROOT)}
    )  # fmt: skip


def _session(name: str, env: Env, *tags: str) -> dict[str, object]:
    return {"name": name, "python": interpreter(env.python), "reuse_venv": True, "tags": list(tags)}


for _pin in PINS:

    @nox.session(**_session(f"tests-{_pin.simplejwt}", _pin.env, "matrix"))  # type: ignore[arg-type]
    def _tests(session: nox.Session, pin: object = _pin) -> None:
        install(session, pin.env, pin.simplejwt, *TEST_DEPS)  # type: ignore[attr-defined]
        run_tests(session)


for _pyjwt in PYJWT_BOUNDARIES:
    _env = Env("3.12", latest_pin().env.django, latest_pin().env.drf, _pyjwt)

    @nox.session(**_session(f"pyjwt-{_pyjwt}", _env, "matrix"))  # type: ignore[arg-type]
    def _boundary(session: nox.Session, env: Env = _env) -> None:
        install(session, env, latest_pin().simplejwt, *TEST_DEPS)
        run_tests(session)


for _name, _extra in EXTRA_ENVS:

    @nox.session(**_session(_name, _extra, "matrix"))  # type: ignore[arg-type]
    def _extra_env(session: nox.Session, env: Env = _extra) -> None:
        install(session, env, latest_pin().simplejwt, *TEST_DEPS)
        run_tests(session)


@nox.session(python=interpreter("3.12"))
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on the package."""
    env = latest_pin().env
    install(session, Env("3.12", env.django, env.drf, env.pyjwt), latest_pin().simplejwt, *LINT_DEPS)
    session.run("ruff", "check", "simplejwt_patches", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "simplejwt_patches", "tests", "bench", "noxfile.py")
    session.run("mypy")


def _outcomes(junit: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if tag in kinds:
                outcome = tag
                break
        outcomes[key] = outcome
    return outcomes


for _pin in PINS:

    @nox.session(**_session(f"upstream-{_pin.simplejwt}", _pin.env, "upstream"))  # type: ignore[arg-type]
    def _upstream(session: nox.Session, pin: object = _pin) -> None:
        """SimpleJWT's own suite from the release sdist, without and with simplejwt_patches."""
        version: str = pin.simplejwt  # type: ignore[attr-defined]
        env: Env = pin.env  # type: ignore[attr-defined]
        install(session, env, version, *UPSTREAM_TEST_DEPS)
        work = Path(session.create_tmp()).resolve() / f"simplejwt-{version}"
        if not (work / "tests").is_dir():
            download = work.parent / "sdist"
            session.run(
                "python", "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                "--dest", str(download), f"djangorestframework-simplejwt=={version}", external=True,
            )  # fmt: skip
            (sdist,) = download.glob("*.tar.gz")
            with tarfile.open(sdist) as tar:
                members = [
                    m for m in tar.getmembers() if "/tests/" in m.name or m.name.endswith(("/pytest.ini", "/tests"))
                ]
                tar.extractall(download, members=members)
            (extracted,) = [p for p in download.iterdir() if p.is_dir()]
            shutil.rmtree(work, ignore_errors=True)
            extracted.rename(work)
        results = {}
        session.chdir(work)
        for label, plugin in (("vanilla", []), ("patched", ["-p", "sjp_upstream_plugin"])):
            junit = work / f"junit-{label}.xml"
            session.run(
                "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "tests",
                f"--junitxml={junit}", *plugin,
                env={"PYTHONPATH": os.pathsep.join([str(work), str(ROOT / "tests" / "upstream")])},
                success_codes=[0, 1], external=True,
            )  # fmt: skip
            results[label] = _outcomes(junit)
        session.chdir(ROOT)
        vanilla, patched = results["vanilla"], results["patched"]
        intended = json.loads((ROOT / "tests" / "upstream" / "intended_differences.json").read_text())
        regressions = sorted(
            t for t, o in vanilla.items() if o == "passed" and patched.get(t) != "passed" and t not in intended
        )
        summary = {
            "simplejwt": version,
            "tests": len(vanilla),
            "vanilla_passed": sum(o == "passed" for o in vanilla.values()),
            "patched_passed": sum(o == "passed" for o in patched.values()),
            "regressions": regressions,
        }
        session.log("upstream suite: " + json.dumps(summary))
        (ROOT / ".nox" / f"upstream-{version}.json").write_text(json.dumps(summary, indent=2))
        if regressions:
            session.error(f"{len(regressions)} upstream tests pass without the shim but not with it: {regressions}")


@nox.session(python=interpreter("3.12"))
def pin(session: nox.Session) -> None:
    """make pin [VERSION=X]: proven fingerprints from release sdists into simplejwt_patches/proven.py."""
    pin = latest_pin()
    install(session, Env("3.12", pin.env.django, pin.env.drf, pin.env.pyjwt), pin.simplejwt, "pip")
    session.run("python", "-m", "simplejwt_patches.pinning", *session.posargs, env={"PYTHONPATH": str(ROOT)})


@nox.session(python=interpreter("3.12"))
def demo(session: nox.Session) -> None:
    """The self-contained demo: WAF-fronted Keycloak, token rejected without the shim, accepted with it."""
    pin = latest_pin()
    install(session, Env("3.12", pin.env.django, pin.env.drf, pin.env.pyjwt), pin.simplejwt)
    session.run("python", str(ROOT / "tests" / "demo.py"), env={"PYTHONPATH": str(ROOT)})


for _bench_pyjwt in ("2.13.0", latest_pin().env.pyjwt):
    _bench_env = Env("3.12", latest_pin().env.django, latest_pin().env.drf, _bench_pyjwt)

    @nox.session(**_session(f"bench-{_bench_pyjwt}", _bench_env, "bench"))  # type: ignore[arg-type]
    def _bench(session: nox.Session, env: Env = _bench_env) -> None:
        """make bench: patched vs vanilla side by side; merges into bench/results.json."""
        install(session, env, latest_pin().simplejwt, "redis==5.2.1")
        session.run("python", str(ROOT / "bench" / "run.py"), env={"PYTHONPATH": str(ROOT)})
