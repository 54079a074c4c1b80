"""Print the upstream-suite comparison written by the ``upstream-*`` nox sessions."""

from __future__ import annotations

import json
from pathlib import Path

rows = [json.loads(p.read_text()) for p in sorted(Path(".nox").glob("upstream-*.json"))]
print("SimpleJWT's own suites (vanilla vs with simplejwt_patches):")
print(f"{'release':<10}{'tests':>7}{'vanilla':>9}{'patched':>9}{'regressions':>13}")
for r in rows:
    print(f"{r['simplejwt']:<10}{r['tests']:>7}{r['vanilla_passed']:>9}{r['patched_passed']:>9}{len(r['regressions']):>13}")
