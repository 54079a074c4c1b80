"""Summarise `make test`: SimpleJWT's own suites with/without the shim, and our suite per session.

Reads the JSON written by the ``upstream-*`` nox sessions, the JUnit XML of ours (matrix cells and the
package, servers and OpenID Provider sessions) and .ci/run_sessions.py's .nox/sessions.json; prints a
table ordered by version and, last, one plain ``N passed, N failed, N skipped`` line for the whole run.
A session that failed without a failing test in its JUnit XML (e.g. lint, an install) counts as one failure.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from packaging.version import InvalidVersion, Version

NOX = Path(".nox")


def version_key(name: str) -> tuple[str, Version, str]:
    """``tests-5.4.0`` -> ("tests-", 5.4.0): PyJWT 2.10 sorts after 2.4, 5.10 after 5.9."""
    match = re.match(r"^(.*?)(\d+(?:\.\d+)*)$", name)
    if match:
        try:
            return match.group(1), Version(match.group(2)), name
        except InvalidVersion:
            pass
    return name, Version("0"), name


upstream = sorted(
    (json.loads(p.read_text()) for p in NOX.glob("upstream-*.json")), key=lambda r: Version(r["simplejwt"])
)
print("SimpleJWT's own suites (vanilla vs with simplejwt_patches):")
print(f"{'release':<10}{'tests':>7}{'vanilla':>9}{'patched':>9}{'regressions':>13}")
for r in upstream:
    print(
        f"{r['simplejwt']:<10}{r['tests']:>7}{r['vanilla_passed']:>9}{r['patched_passed']:>9}{len(r['regressions']):>13}"
    )

passed = failed = skipped = 0
failing_junit: set[str] = set()
print("\nOur suite per session:")
for junit in sorted(NOX.glob("junit-*.xml"), key=lambda p: version_key(p.stem.removeprefix("junit-"))):
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    tests, errors, failures, skips = (int(suite.get(k, 0)) for k in ("tests", "errors", "failures", "skipped"))
    cell_failed = errors + failures
    name = junit.stem.removeprefix("junit-")
    if cell_failed:
        failing_junit.add(name)
    print(f"  {name:<16} {tests - cell_failed - skips:>4} passed {cell_failed:>3} failed {skips:>3} skipped")
    passed += tests - cell_failed - skips
    failed += cell_failed
    skipped += skips
regressions = sum(len(r["regressions"]) for r in upstream)
failed += regressions
passed += sum(r["patched_passed"] for r in upstream)
sessions = NOX / "sessions.json"
if sessions.exists():
    broken = [n for n, r in json.loads(sessions.read_text()).items() if not r["ok"] and n not in failing_junit]
    if broken:
        print(f"\nsessions failed without a failing test to show for it: {', '.join(broken)}")
    failed += len(broken)
print(f"\n(upstream regressions: {regressions}; counts include SimpleJWT's suites run with the shim)")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
