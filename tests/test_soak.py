"""60 s of ``make soak`` (tests/soak.py): real servers under load on a bad day, the README's promises asserted.

Run by ``nox -s soak`` (gunicorn, uvicorn, redis-server; part of ``make test``). Fails on any HTTP
5xx, any valid token rejected outside a declared fail-closed window, any hostile token accepted, any
request slower than ``JWKS_TIMEOUT`` + ``tests.soak.MARGIN``. The figures go to ``.nox/soak-60s.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

if os.environ.get("SJP_SESSION") != "soak":
    pytest.skip("run by `nox -s soak` (gunicorn, uvicorn, redis-server)", allow_module_level=True)
pytest.importorskip("gunicorn")
pytest.importorskip("uvicorn")

from tests.soak import Config, run, verdict


def test_a_bad_day_for_60_seconds_breaks_no_promise():
    config = Config(duration=60)
    result = run(config)
    tails = result.pop("log_tail")
    out = Path(__file__).resolve().parent.parent / ".nox" / "soak-60s.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    assert verdict(result) == [], json.dumps(result, indent=1)[:4000] + "\n" + "\n".join(tails.values())
    assert result["requests"] == config.duration * config.rate
    assert result["rotations"] == 5 and len(result["events"]["outages"]) == 3 and len(result["events"]["kills"]) == 2
