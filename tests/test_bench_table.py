"""The benchmark section of docs/benchmarks.md is ``bench/run.py``'s rendering of ``bench/results.json``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.docs import section

ROOT = Path(__file__).parent.parent


def test_docs_benchmark_tables_are_generated_from_the_results():
    spec = importlib.util.spec_from_file_location("sjp_bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    assert section("bench-table") == run.render(results).strip()
    for label, data in results.items():  # every PyJWT version measured shows the floor beside the warm rows
        assert "floor_us" in data["results"]["warm_authenticate"], label
        assert "warm_breakdown" in data["results"], label
