"""Summarise `make test`: SimpleJWT's own suites with/without the shim, and our suite per matrix cell.

Reads the JSON written by the ``upstream-*`` nox sessions and the JUnit XML of ours; prints a
table and, last, one plain ``N passed, N failed`` line for the whole run.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

NOX = Path(".nox")
upstream = [json.loads(p.read_text()) for p in sorted(NOX.glob("upstream-*.json"))]
print("SimpleJWT's own suites (vanilla vs with simplejwt_patches):")
print(f"{'release':<10}{'tests':>7}{'vanilla':>9}{'patched':>9}{'regressions':>13}")
for r in upstream:
    print(f"{r['simplejwt']:<10}{r['tests']:>7}{r['vanilla_passed']:>9}{r['patched_passed']:>9}{len(r['regressions']):>13}")

passed = failed = skipped = 0
print("\nOur suite per matrix cell:")
for junit in sorted(NOX.glob("junit-*.xml")):
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    tests, errors, failures, skips = (int(suite.get(k, 0)) for k in ("tests", "errors", "failures", "skipped"))
    cell_failed = errors + failures
    print(f"  {junit.stem.removeprefix('junit-'):<16} {tests - cell_failed - skips:>4} passed {cell_failed:>3} failed {skips:>3} skipped")
    passed += tests - cell_failed - skips
    failed += cell_failed
    skipped += skips
regressions = sum(len(r["regressions"]) for r in upstream)
failed += regressions
passed += sum(r["patched_passed"] for r in upstream)
print(f"\n(upstream regressions: {regressions}; counts include SimpleJWT's suites run with the shim)")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
