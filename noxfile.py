"""The compatibility matrix, generated from the pin table (``simplejwt_patches/pins.py``).

Sessions (``nox -l`` lists them):

* ``lint`` - ruff and mypy;
* ``tests-<release>`` - our suite on each pinned SimpleJWT release with its pinned dependency set;
* ``pyjwt-<version>`` - our suite on the newest release against each PyJWT boundary;
* ``django6`` - the newest release on Django 6.x / Python 3.12+;
* ``upstream-<release>`` - SimpleJWT's own test suite, taken from the release's sdist at test
  time, run without and with ``simplejwt_patches`` in ``INSTALLED_APPS``; any test that passes
  without the shim and not with it fails the session;
* ``demo`` - the self-contained demo (``make demo``);
* ``docs`` - the documentation site from ``docs/`` (``make docs``), built with ``--strict``;
* ``dist`` - sdist + wheel into ``dist/`` (``python -m build``), ``twine check --strict``, LICENSE in both;
* ``sdist`` - unpack a freshly built sdist in a temp dir, install it, run its unit tests from there;
* ``wheel`` - install the built wheel into a fresh venv outside the checkout and run the Keycloak
  scenario against it (``tests/test_wheel.py``); also SimpleJWT 6.0.0, built at test time from the
  newest pin's sdist, installed beside the wheel with pip's resolver, on the ``proven`` policy;
* ``servers`` - tests/project under gunicorn (sync, gthread, +/- --preload) and uvicorn, with a real
  redis-server (``tests/test_servers.py``);
* ``soak`` - 60 s of real servers under load on a bad day (``tests/test_soak.py``, tag ``servers``);
  ``soak-long`` - ``make soak``: a few minutes of it, figures into ``bench/soak.json`` and the README;
* ``fuzz-<release>`` - the hypothesis hunt of ``tests/test_fuzz.py`` and ``tests/test_doctor_hypothesis.py``
  at full size (10,000 tokens and 5,000 key-set responses through DRF's request path, as many through
  the doctor) on the newest release and on 5.2.0 with PyJWT 2.4 (the old pair whose own crashes the
  shim must contain);
* ``oidc`` - a real OpenID Provider (npm ``oidc-provider``, ``tests/oidc/``) behind a WAF rule
  (``tests/test_oidc.py``).

Interpreters come from pyenv (``$PYENV_ROOT/versions/3.X.*``) or ``python3.X`` on PATH; uv
never downloads one (``UV_PYTHON_DOWNLOADS=never``). A missing interpreter fails only the sessions
that need it, when they run (``nox -l`` and ``nox -s lint`` work without it).
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))
from simplejwt_patches.pins import EXTRA_ENVS, PINS, Env, boundary_cells, latest_pin

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
    "trove-classifiers==2026.9.21.13",
    "nox==2026.10.20",  # tests/test_noxfile.py loads noxfile.py itself
    "pytest-xdist==3.8.0",  # both cores: a cell's suite in two worker processes
]
#: Application servers for the ``servers`` and ``oidc`` sessions.
SERVER_DEPS = ["gunicorn==27.0.1", "uvicorn==0.54.0"]
#: Building and checking the distributions.
DIST_DEPS = ["build[uv]==1.6.1", "twine==7.0.0"]
#: The documentation site (``make docs``; mkdocs.yml).
DOCS_DEPS = ["mkdocs==1.6.1", "mkdocs-material==9.8.1"]
#: Test modules that need their own session (servers, npm, an installed wheel); the matrix skips them.
OWN_SESSION_TESTS = (
    "tests/test_servers.py",
    "tests/test_oidc.py",
    "tests/test_wheel.py",
    "tests/test_fleet_rotation.py",
    "tests/test_soak.py",
)
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
    # Not found: hand nox the bare version, so only the sessions that need it fail, when they run
    # (error_on_missing_interpreters), and `nox -l` / `nox -s lint` still work.
    return version


def extract(tar: tarfile.TarFile, dest: Path, members: list[tarfile.TarInfo] | None = None) -> None:
    """``extractall`` with the ``data`` filter (no absolute paths, links out of ``dest``, devices)."""
    if hasattr(tarfile, "data_filter"):  # Python 3.12+, and backported to 3.8.17+/3.9.17+/3.10.12+/3.11.4+
        tar.extractall(dest, members=members, filter="data")
    else:  # pragma: no cover - older patch releases
        tar.extractall(dest, members=members)


def install(session: nox.Session, env: Env, simplejwt: str, *extra: str) -> None:
    session.install(*env.requirements(simplejwt), *extra)
    session.install("--no-deps", "--reinstall-package", "simplejwt-patches", str(ROOT))


def run_tests(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Our suite (or the given modules) with a JUnit XML for ``.ci/summary.py``."""
    junit = ROOT / ".nox" / f"junit-{session.name}.xml"
    if not args:
        # Our whole suite: one worker process per core, each module kept on one worker (its
        # module-scoped servers are started once); every worker has its own IdP and Django. Two
        # sessions run side by side (.ci/run_sessions.py -j) take one core each.
        workers = os.environ.get("SJP_PYTEST_WORKERS", "2")
        args = ("-n", workers, "--dist", "loadfile", *(f"--ignore={module}" for module in OWN_SESSION_TESTS))
    session.run(
        "python", "-m", "pytest", "-q", f"--junitxml={junit}", *args, *session.posargs,
        env={"PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def newest_env(python: str = "3.12") -> Env:
    """The newest pin's dependency set on ``python``."""
    env = latest_pin().env
    return Env(python, env.django, env.drf, env.pyjwt)


def _session(name: str, env: Env, *tags: str) -> dict[str, object]:
    return {"name": name, "python": interpreter(env.python), "reuse_venv": True, "tags": list(tags)}


for _pin in PINS:

    @nox.session(**_session(f"tests-{_pin.simplejwt}", _pin.env, "matrix"))  # type: ignore[arg-type]
    def _tests(session: nox.Session, pin: object = _pin) -> None:
        install(session, pin.env, pin.simplejwt, *TEST_DEPS)  # type: ignore[attr-defined]
        run_tests(session)


for _pyjwt in boundary_cells():
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
    session.run("ruff", "check", "simplejwt_patches", "tests", "bench", ".ci", "noxfile.py")
    session.run("ruff", "format", "--check", "simplejwt_patches", "tests", "bench", ".ci", "noxfile.py")
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
                extract(tar, download, members)
            (extracted,) = [p for p in download.iterdir() if p.is_dir()]
            shutil.rmtree(work, ignore_errors=True)
            extracted.rename(work)
        results = {}
        session.chdir(work)
        for label, plugin in (("vanilla", []), ("patched", ["-p", "sjp_upstream_plugin"])):
            junit = work / f"junit-{label}.xml"
            session.run(
                "python", "-m", "pytest", "-q", "--tb=no", "-rN", "--disable-warnings", "-p", "no:cacheprovider",
                "-o", "addopts=", "tests", f"--junitxml={junit}", *plugin,
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
        known = json.loads((ROOT / "tests" / "upstream" / "known_failures.json").read_text()).get(version, [])
        for test in sorted(t for t, o in patched.items() if o in ("failure", "error")):
            reason = next((k["reason"] for k in known if fnmatch.fnmatchcase(test, k["test"])), None)
            also = "fails without the shim too" if vanilla.get(test) in ("failure", "error") else "passes without it"
            if reason:
                session.log(f"known failure: {test}: {reason}")
            else:
                session.log(f"unexplained failure: {test} ({also}; add it to tests/upstream/known_failures.json)")
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


def build_dists(session: nox.Session, outdir: Path, *kinds: str) -> list[Path]:
    """``python -m build`` (sdist, then the wheel from it) into an emptied ``outdir``."""
    session.install(*DIST_DEPS)
    shutil.rmtree(outdir, ignore_errors=True)
    session.run("python", "-m", "build", "--installer=uv", *kinds, "--outdir", str(outdir), str(ROOT))
    return sorted(outdir.iterdir())


def archive_names(path: Path) -> list[str]:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as whl:
            return whl.namelist()
    with tarfile.open(path) as tar:
        return [m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name]


@nox.session(python=interpreter("3.12"), tags=["package"])
def dist(session: nox.Session) -> None:
    """make dist: sdist + wheel in dist/, twine check --strict, LICENSE (and the sdist's tests) inside."""
    built = build_dists(session, ROOT / "dist")
    session.run("twine", "check", "--strict", *map(str, built))
    sdists = [p for p in built if p.name.endswith(".tar.gz")]
    wheels = [p for p in built if p.suffix == ".whl"]
    assert len(sdists) == 1 and len(wheels) == 1, built
    for archive in built:
        names = archive_names(archive)
        licenses = [n for n in names if n.rsplit("/", 1)[-1] == "LICENSE"]
        if not licenses:
            session.error(f"no LICENSE in {archive.name}")
        session.log(f"{archive.name}: {len(names)} files, LICENSE at {licenses[0]}")
    sdist_names = set(archive_names(sdists[0]))
    needed = {
        "LICENSE", "CHANGELOG.md", "noxfile.py", "Makefile", "mkdocs.yml", "docs/index.md", ".ci/run",
        ".ci/summary.py", "tests/conftest.py", "tests/docs.py", "tests/helpers.py", "tests/idp.py",
        "tests/proxy.py", "tests/project/settings.py", "tests/project/wsgi.py", "tests/upstream/sjp_upstream_plugin.py",
        "tests/oidc/package-lock.json", "tests/oidc/server.js",
    }  # fmt: skip
    if missing := sorted(needed - sdist_names):
        session.error(f"the sdist lacks {missing}")
    if junk := sorted(n for n in sdist_names if "__pycache__" in n or "node_modules" in n or "/.nox/" in f"/{n}"):
        session.error(f"the sdist carries caches: {junk[:5]}")


@nox.session(python=interpreter("3.12"), tags=["package"])
def docs(session: nox.Session) -> None:
    """make docs: the site from docs/ (mkdocs.yml) with --strict: a broken link, anchor or nav entry fails."""
    session.install(*DOCS_DEPS)
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # the theme's end-of-life banner (May 2027) is not a build problem
    site = Path(tempfile.mkdtemp(prefix="sjp-docs-")) if os.environ.get("CI") else ROOT / "build" / "site"
    session.run("mkdocs", "build", "--strict", "--clean", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir",
                str(site))  # fmt: skip
    session.log(f"site built in {site}")


@nox.session(python=interpreter("3.12"), tags=["package"])
def sdist(session: nox.Session) -> None:
    """The unpacked sdist, installed with pip, runs its own unit tests (outside the checkout)."""
    tmp = Path(tempfile.mkdtemp(prefix="sjp-sdist-")).resolve()  # outside the checkout
    (archive,) = build_dists(session, tmp / "sdist", "--sdist")
    unpacked = tmp / "unpacked"
    with tarfile.open(archive) as tar:
        extract(tar, unpacked)
    (project,) = unpacked.iterdir()
    session.install(*newest_env().requirements(latest_pin().simplejwt), *TEST_DEPS)
    session.install("--no-deps", "--reinstall-package", "simplejwt-patches", str(project))
    session.chdir(project)
    junit = ROOT / ".nox" / f"junit-{session.name}.xml"
    try:
        session.run(
            "python", "-m", "pytest", "-q", f"--junitxml={junit}", "tests/test_packaging.py",
            "tests/test_properties.py", *session.posargs, env={"PYTHONPATH": str(project)},
        )  # fmt: skip
    finally:
        session.chdir(ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


@nox.session(python=interpreter("3.12"), tags=["package"], reuse_venv=False)
def wheel(session: nox.Session) -> None:
    """The built wheel in a fresh venv outside the checkout passes the Keycloak scenario (tests/test_wheel.py)."""
    work = Path(tempfile.mkdtemp(prefix="sjp-wheel-")).resolve()
    try:
        # sdist first, then the wheel from it (as `make dist`): no stale build/ of the checkout can leak in.
        (whl,) = [p for p in build_dists(session, work / "wheelhouse") if p.suffix == ".whl"]
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        venv = work / "venv"
        session.run(uv, "venv", "--quiet", "--python", interpreter("3.12"), str(venv), external=True)
        python = str(venv / "bin" / "python")
        requirements = newest_env().requirements(latest_pin().simplejwt)
        session.run(uv, "pip", "install", "--quiet", "--python", python, *requirements, *TEST_DEPS, external=True)
        session.run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", str(whl), external=True)
        app = work / "app"  # the test project and the IdP, without the checkout's simplejwt_patches
        shutil.copytree(
            ROOT / "tests", app / "tests", ignore=shutil.ignore_patterns("__pycache__", "node_modules", "oidc")
        )
        session.chdir(app)
        junit = ROOT / ".nox" / f"junit-{session.name}.xml"
        session.run(
            python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", "tests/test_wheel.py",
            *session.posargs,
            env={"PYTHONPATH": str(app), "SJP_SESSION": "wheel", "SJP_CHECKOUT": str(ROOT), "SJP_VENV": str(venv),
                 "SJP_WHEEL": str(whl)},
            external=True,
        )  # fmt: skip
    finally:
        session.chdir(ROOT)
        shutil.rmtree(work, ignore_errors=True)


#: Full-size fuzz runs: the newest release, and an old release/PyJWT pair with crashes of its own.
FUZZ_PINS = (latest_pin().simplejwt, "5.2.0")
FUZZ_SIZE = {
    "SJP_FUZZ_TOKENS": "10000",  # through DRF's request path
    "SJP_FUZZ_KEYSETS": "5000",
    "SJP_FUZZ_DOCTOR_TOKENS": "6000",  # crafted tokens, and as many garbage inputs, through the doctor
    "SJP_FUZZ_DOCTOR_KEYSETS": "3000",
}
#: The old pair's doctor hunt is smaller: the doctor's code is ours and the same on every pin (the newest
#: release's session runs it in full); what differs on 5.2.0 is SimpleJWT's and PyJWT's, which the
#: 10,000 tokens and 5,000 key sets through DRF's request path reach in full.
FUZZ_SIZE_OLD = {**FUZZ_SIZE, "SJP_FUZZ_DOCTOR_TOKENS": "1000", "SJP_FUZZ_DOCTOR_KEYSETS": "500"}

for _fuzz in FUZZ_PINS:
    _fuzz_pin = next(p for p in PINS if p.simplejwt == _fuzz)

    @nox.session(**_session(f"fuzz-{_fuzz}", _fuzz_pin.env, "fuzz"))  # type: ignore[arg-type]
    def _fuzz_session(session: nox.Session, pin: object = _fuzz_pin) -> None:
        """Bounded count and time: 10,000 tokens and 5,000 key sets through DRF, the doctor's hunt (6,000 crafted
        tokens and garbage inputs, 3,000 key sets; 1,000 / 500 on the old pair); 0 HTTP 500s, tracebacks, leaks."""
        install(session, pin.env, pin.simplejwt, *TEST_DEPS)  # type: ignore[attr-defined]
        size = FUZZ_SIZE if pin.simplejwt == latest_pin().simplejwt else FUZZ_SIZE_OLD  # type: ignore[attr-defined]
        run_tests(session, "-n", "2", "tests/test_fuzz.py", "tests/test_doctor_hypothesis.py", "-k", "any_", env=size)


@nox.session(python=interpreter("3.12"), tags=["servers"])
def servers(session: nox.Session) -> None:
    """tests/project under gunicorn (sync/gthread, +/- --preload) and uvicorn; a real redis-server."""
    install(session, newest_env(), latest_pin().simplejwt, *TEST_DEPS, *SERVER_DEPS)
    run_tests(session, "tests/test_servers.py", "tests/test_fleet_rotation.py", env={"SJP_SESSION": "servers"})


@nox.session(python=interpreter("3.12"), tags=["servers"])
def soak(session: nox.Session) -> None:
    """60 s of `make soak` (tests/test_soak.py): gunicorn + uvicorn, Redis and the IdP on a bad day."""
    install(session, newest_env(), latest_pin().simplejwt, *TEST_DEPS, *SERVER_DEPS)
    run_tests(session, "tests/test_soak.py", env={"SJP_SESSION": "soak"})


@nox.session(name="soak-long", python=interpreter("3.12"), tags=["soak"])
def soak_long(session: nox.Session) -> None:
    """make soak: a few minutes of the soak; figures into bench/soak.json and the README table."""
    install(session, newest_env(), latest_pin().simplejwt, *TEST_DEPS, *SERVER_DEPS)
    session.run("python", str(ROOT / "bench" / "soak.py"), *session.posargs, env={"PYTHONPATH": str(ROOT)})


@nox.session(python=interpreter("3.12"), tags=["servers"])
def oidc(session: nox.Session) -> None:
    """A real OpenID Provider (npm oidc-provider, pinned in tests/oidc/package-lock.json) behind a WAF rule."""
    npm = shutil.which("npm")
    if npm is None:
        session.error("npm not found: install Node.js 20+ (`make test` installs Debian's nodejs and npm)")
    install(session, newest_env(), latest_pin().simplejwt, *TEST_DEPS, *SERVER_DEPS)
    oidc_dir = ROOT / "tests" / "oidc"
    session.run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(oidc_dir), external=True)
    run_tests(session, "tests/test_oidc.py", env={"SJP_SESSION": "oidc"})


for _bench_pyjwt in ("2.13.0", latest_pin().env.pyjwt):
    _bench_env = Env("3.12", latest_pin().env.django, latest_pin().env.drf, _bench_pyjwt)

    @nox.session(**_session(f"bench-{_bench_pyjwt}", _bench_env, "bench"))  # type: ignore[arg-type]
    def _bench(session: nox.Session, env: Env = _bench_env) -> None:
        """make bench: patched vs vanilla side by side; merges into bench/results.json (``-- apply_cost``: that row)."""
        install(session, env, latest_pin().simplejwt, "redis==5.2.1")
        session.run("python", str(ROOT / "bench" / "run.py"), *session.posargs, env={"PYTHONPATH": str(ROOT)})
