"""``make soak``: a few minutes of tests/soak.py; figures into bench/soak.json, docs/benchmarks.md's table
and the README's summary.

    python bench/soak.py [SECONDS] [--label LABEL] [--package DIR]

``--package`` serves another copy of simplejwt_patches (the before/after comparison); its run is
stored under ``LABEL`` (default ``simplejwt-patches``). Exits 1 when a run broke a promise
(tests/soak.py ``verdict``): any 5xx, a valid token rejected outside a declared window, a hostile
token accepted, a request slower than JWKS_TIMEOUT + the margin.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.docs import replace_section  # noqa: E402
from tests.soak import Config, render, run, summary, verdict  # noqa: E402

RESULTS = ROOT / "bench" / "soak.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("seconds", nargs="?", type=float, default=240.0)
    parser.add_argument("--label", default="simplejwt-patches")
    parser.add_argument("--package", default=None)
    args = parser.parse_args(argv)
    result = run(Config(duration=args.seconds, package=args.package))
    result.pop("log_tail", None)
    result["meta"] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    result["broken"] = verdict(result)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[args.label] = result
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    replace_section("soak-table", render(data))  # docs/benchmarks.md
    if args.label == "simplejwt-patches":
        replace_section("soak-summary", summary(data))  # README.md
    print(render(data))
    for line in result["broken"]:
        print(f"broken: {line}")
    return 1 if result["broken"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
