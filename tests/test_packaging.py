"""The published metadata tells the truth: classifiers are exactly what CI tests (derived from the pin table).

Runs from a checkout and from the unpacked sdist (``nox -s sdist``), so it reads files relative to the
project root that holds this ``tests/`` directory.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from packaging.version import Version

from simplejwt_patches.pins import EXTRA_ENVS, PINS, PYJWT_BOUNDARIES

ROOT = Path(__file__).resolve().parent.parent


def metadata() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    assert parser.read(ROOT / "setup.cfg"), f"no setup.cfg in {ROOT}"
    return parser["metadata"]


def classifiers() -> list[str]:
    return [line.strip() for line in metadata()["classifiers"].splitlines() if line.strip()]


def ci_envs() -> list[tuple[str, str]]:
    """(python, django) of every CI environment: each pin, each extra env, the PyJWT boundary cells."""
    envs = [(p.env.python, p.env.django) for p in PINS] + [(e.python, e.django) for _, e in EXTRA_ENVS]
    if PYJWT_BOUNDARIES:  # noxfile.py runs them on Python 3.12 with the newest pin's Django
        newest = max(PINS, key=lambda p: p.version)
        envs.append(("3.12", newest.env.django))
    return envs


def major_minor(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"


def test_django_classifiers_are_exactly_the_django_versions_ci_tests():
    expected = {f"Framework :: Django :: {major_minor(django)}" for _, django in ci_envs()}
    listed = {c for c in classifiers() if c.startswith("Framework :: Django :: ")}
    assert listed == expected, f"missing: {sorted(expected - listed)}; not tested: {sorted(listed - expected)}"


def test_python_classifiers_are_exactly_the_pythons_ci_tests():
    expected = {f"Programming Language :: Python :: {major_minor(python)}" for python, _ in ci_envs()}
    listed = {c for c in classifiers() if c.startswith("Programming Language :: Python :: 3.")}
    assert listed == expected, f"missing: {sorted(expected - listed)}; not tested: {sorted(listed - expected)}"
    oldest = min(expected, key=lambda c: Version(c.rsplit(" ", 1)[1])).rsplit(" ", 1)[1]
    assert f"python_requires = >={oldest}" in (ROOT / "setup.cfg").read_text()


def test_every_classifier_is_a_known_trove_classifier():
    trove = pytest.importorskip("trove_classifiers")
    unknown = [c for c in classifiers() if c not in trove.classifiers]
    assert not unknown


def test_license_and_project_urls_are_declared():
    meta = metadata()
    assert meta["license_files"].split() == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 The simplejwt-patches authors" in text
    urls = dict(
        (name.strip(), url.strip())
        for name, url in (line.split("=", 1) for line in meta["project_urls"].splitlines() if "=" in line)
    )
    assert set(urls) == {"Source", "Changelog", "Issues"}
    assert all(url.startswith("https://github.com/simplejwt-patches/simplejwt-patches") for url in urls.values())


def test_the_sdist_manifest_carries_the_test_suite_and_ci():
    manifest = (ROOT / "MANIFEST.in").read_text().splitlines()
    for line in ("graft tests", "graft .ci", "prune tests/oidc/node_modules"):
        assert line in manifest
    included = " ".join(line for line in manifest if line.startswith("include "))
    for name in ("LICENSE", "CHANGELOG.md", "noxfile.py", "Makefile"):
        assert name in included.split()


def test_known_upstream_failures_name_pinned_releases_with_a_reason():
    import json

    from simplejwt_patches.pins import find_pin

    known = json.loads((ROOT / "tests" / "upstream" / "known_failures.json").read_text())
    for release, entries in known.items():
        assert find_pin(release) is not None, f"{release} is not pinned"
        for entry in entries:
            assert set(entry) == {"test", "reason"} and "::" in entry["test"] and len(entry["reason"]) > 20


def install_requires() -> dict[str, str]:
    """``{distribution name (lower case): the rest of the requirement}`` from setup.cfg."""
    from packaging.requirements import Requirement

    parser = configparser.ConfigParser()
    assert parser.read(ROOT / "setup.cfg")
    found = {}
    for line in parser["options"]["install_requires"].splitlines():
        if line.strip():
            req = Requirement(line.strip())
            found[req.name.lower()] = req
    return found


def test_install_range_is_the_runtime_range():
    """Why 6: `>=5.0,<6` refused 4.8.0 (pinned) and every release the `proven` policy exists for."""
    simplejwt = install_requires()["djangorestframework-simplejwt"].specifier
    assert all(simplejwt.contains(p.simplejwt) for p in PINS), f"{simplejwt} excludes a pinned release"
    assert simplejwt.contains("6.0.0") and simplejwt.contains("99.0") and not simplejwt.contains("4.7.2")


def test_dependency_floors_match_the_oldest_pins_environment():
    oldest = min(PINS, key=lambda p: p.version)
    requires = install_requires()
    for name, pinned in (("django", oldest.env.django), ("djangorestframework", oldest.env.drf)):
        floor = next(s.version for s in requires[name].specifier if s.operator == ">=")
        assert major_minor(floor) == major_minor(pinned), f"{name}: floor {floor}, the oldest pin tests {pinned}"
        assert all(requires[name].specifier.contains(p.env.django if name == "django" else p.env.drf) for p in PINS)


def test_cryptography_comes_with_the_package():
    """Why 5: `pip install simplejwt-patches` did not bring cryptography (RS256: HTTP 500)."""
    pyjwt = install_requires()["pyjwt"]
    assert "crypto" in pyjwt.extras
    assert all(pyjwt.specifier.contains(v) for v in [*(p.env.pyjwt for p in PINS), *PYJWT_BOUNDARIES])
