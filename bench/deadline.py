"""``make bench``: how long a cold request waits under each fault, against the stated bound.

The README promises that no request waits longer than ``JWKS_TIMEOUT`` + ``deadline.MARGIN``
(docs/resilience.md). Each fault below gets a cold key set (a fresh ``TokenBackend``), one request
through ``JWTAuthentication.authenticate``, ``JWKS_TIMEOUT = 1``; the figure is the slowest of
``runs``. The DNS faults need a resolver that does not answer and addresses that drop every SYN:
they run in a network and mount namespace of their own (tests/project/netns_request.py, root only),
where only ``lo`` exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["measure"]

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 1.0


def _cold(bench: Any, options: dict[str, Any]) -> float:
    """Seconds one request with a cold key set takes (whatever its answer)."""
    from rest_framework.exceptions import APIException
    from rest_framework_simplejwt.authentication import JWTAuthentication

    with bench.patches(JWKS_TIMEOUT=TIMEOUT, **options):
        bench.backend(True)
        request = bench.request(bench.idp.mint())
        started = time.perf_counter()
        try:
            JWTAuthentication().authenticate(request)
        except APIException:
            pass
        return time.perf_counter() - started


def _in_process(bench: Any, redis_url: str, runs: int) -> dict[str, float]:
    from django.core.cache import caches
    from django.test import override_settings

    from simplejwt_patches.shared_cache import SharedCache
    from simplejwt_patches.shared_marks import seal_mark
    from tests.idp import Mode

    idp = bench.idp
    out: dict[str, float] = {}
    try:
        idp.mode, idp.hang_seconds = Mode.HANG, 5.0
        out["IdP hanging"] = max(_cold(bench, {}) for _ in range(runs))
        idp.mode, idp.drip_seconds = Mode.DRIP, 0.2
        out["IdP dripping its body"] = max(_cold(bench, {}) for _ in range(runs))
    finally:
        idp.reset()
    redis_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                                   "jwks": redis_cache}):  # fmt: skip
        cache = caches["jwks"]
        raw, name = cache._cache.get_client(None, write=True), cache.make_key
        worst = 0.0
        for _ in range(runs):
            raw.flushall()
            # A holder killed just now: its lock lapses after this request's own deadline.
            lock = seal_mark("lock", idp.jwks_url)  # sealed: a live holder's (an unsealed one is broken at once)
            raw.set(name(SharedCache.key(idp.jwks_url) + ":lock"), lock, px=int((TIMEOUT + 0.2) * 1000))
            worst = max(worst, _cold(bench, {"JWKS_SHARED_CACHE": "jwks"}))
        out["shared-cache lock of a killed worker"] = worst
        raw.flushall()
    return out


def _namespaced(bench: Any, runs: int) -> dict[str, float] | str:
    """The DNS faults, each in a namespace of its own; a reason string where namespaces cannot be made."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None or shutil.which("ip") is None:
        return "needs root, unshare and ip (network namespaces)"
    from tests.project.netns_request import UNREACHABLE
    from tests.servers import project_env

    out: dict[str, float] = {}
    for title, url in (
        ("resolver that never answers", "https://idp.silent.test/realms/acme/protocol/openid-connect/certs"),
        ("host name with 3 unreachable addresses", "https://multi.test/realms/acme/protocol/openid-connect/certs"),
    ):
        worst = 0.0
        for _ in range(runs):
            work = Path(tempfile.mkdtemp(prefix="sjp-bench-netns-"))
            try:
                (work / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:4 attempts:1\n")
                (work / "hosts").write_text(
                    "127.0.0.1 localhost\n" + "".join(f"{host} multi.test\n" for host in UNREACHABLE)
                )
                env = project_env(
                    work / "db.sqlite3", url, bench.idp.issuer, SJP_PATCHES=json.dumps({"JWKS_TIMEOUT": TIMEOUT}),
                    SJP_TOKEN=bench.idp.mint(), SJP_SUBJECT=bench.idp.subject,
                )  # fmt: skip
                done = subprocess.run(
                    [unshare, "--net", "--mount", sys.executable, "-m", "tests.project.netns_request", str(work)],
                    env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    return f"the namespace run failed: {done.stderr.strip()[-200:]}"
                worst = max(worst, float(json.loads(done.stdout.strip().splitlines()[-1])["elapsed"]))
            finally:
                shutil.rmtree(work, ignore_errors=True)
        out[title] = worst
    return out


def measure(bench: Any, redis_url: str, runs: int = 3) -> dict[str, Any]:
    """The ``deadline`` row of bench/results.json."""
    from simplejwt_patches.deadline import MARGIN

    waits = _in_process(bench, redis_url, runs)
    namespaced = _namespaced(bench, runs)
    if isinstance(namespaced, dict):
        waits.update(namespaced)
    bound = TIMEOUT + MARGIN
    return {
        "waits_s": {title: round(seconds, 3) for title, seconds in waits.items()},
        "skipped": None if isinstance(namespaced, dict) else namespaced,
        "bound_s": bound,
        "target": f"every wait <= JWKS_TIMEOUT + {MARGIN:g} s",
        "ok": all(seconds <= bound for seconds in waits.values()) and isinstance(namespaced, dict),
        "how": f"slowest of {runs} cold requests per fault, JWKS_TIMEOUT = {TIMEOUT:g}",
    }
