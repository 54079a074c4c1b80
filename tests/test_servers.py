"""tests/project under real application servers: gunicorn (sync, gthread, with and without --preload)
and uvicorn (Django's ASGI application), several workers each, real HTTP from this process.

Run by ``nox -s servers`` (gunicorn, uvicorn and redis installed; redis-server from Debian). Each case:

* behind the WAF rule, valid tokens get 200 from every worker, and with ``JWKS_SHARED_CACHE`` on a
  real redis-server the whole fleet fetches the JWKS exactly once;
* when the IdP refuses everyone (403), each worker answers 401 with upstream's body and logs the
  WARNING naming ``HTTP 403``;
* every request is answered within a bound (no worker hangs after the fork) and SIGTERM stops the
  server within a bound.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import SECRET_HEADER_VALUE, register_sensitive_token
from tests.idp import Mode
from tests.servers import SERVERS, migrate, project_env, serve

if os.environ.get("SJP_SESSION") != "servers":
    pytest.skip("run by `nox -s servers` (gunicorn, uvicorn, redis-server)", allow_module_level=True)
pytest.importorskip("gunicorn")
pytest.importorskip("uvicorn")

REQUEST_TIMEOUT = 15.0  # seconds for any one request: a hung worker fails the test
STOP_TIMEOUT = 20.0


def spread(served, token: str, workers: int, rounds: int = 20) -> tuple[set[int], list[int]]:
    """Concurrent batches until every worker answered (bounded): (worker pids, every status)."""
    pids: set[int] = set()
    statuses: list[int] = []
    batch = workers * 2
    with ThreadPoolExecutor(max_workers=batch) as pool:
        for _ in range(rounds):
            for status, body in pool.map(
                lambda _: served.get("/api/pid?hold=0.2", token, timeout=REQUEST_TIMEOUT), range(batch)
            ):
                statuses.append(status)
                if status == 200:
                    pids.add(body["pid"])
            if len(pids) >= workers:
                break
    return pids, statuses


@pytest.mark.parametrize("name", list(SERVERS))
def test_fleet_behind_waf_fetches_jwks_once_with_shared_cache(name, idp, redis, tmp_path):
    idp.mode = Mode.WAF
    workers = SERVERS[name][2]
    patches = {"JWKS_SHARED_CACHE": "jwks", "JWKS_TIMEOUT": 5, "JWKS_HEADERS": {"X-Api-Key": SECRET_HEADER_VALUE}}
    env = project_env(tmp_path / "db.sqlite3", idp.jwks_url, idp.issuer, SJP_PATCHES=json.dumps(patches))
    env["SJP_REDIS"] = redis
    migrate(env, idp.subject)
    token = register_sensitive_token(idp.mint())
    served = serve(name, env, tmp_path / "server.log")
    try:
        pids, statuses = spread(served, token, workers)
        status, body = served.get("/api/whoami", token, timeout=REQUEST_TIMEOUT)
    finally:
        took = served.stop(STOP_TIMEOUT)
    log = served.log_text()
    assert set(statuses) == {200}, log[-3000:]
    assert (status, body) == (200, {"username": idp.subject, "azp": "acme-web"})
    assert len(pids) == workers, f"only {len(pids)} of {workers} workers answered: {log[-2000:]}"
    assert served.proc.pid not in pids  # workers, not the master, answered
    fetches = idp.jwks_requests()
    assert len(fetches) == 1, f"{len(fetches)} JWKS fetches by {workers} workers sharing one redis cache"
    assert fetches[0].status == 200 and fetches[0].headers["User-Agent"].startswith("simplejwt-patches/")
    assert token not in log and SECRET_HEADER_VALUE not in log
    assert took < STOP_TIMEOUT


@pytest.mark.parametrize("name", list(SERVERS))
def test_idp_refusing_everyone_gives_401_and_each_worker_logs_the_403(name, idp, tmp_path):
    idp.mode = Mode.FORBIDDEN
    workers = SERVERS[name][2]
    env = project_env(tmp_path / "db.sqlite3", idp.jwks_url, idp.issuer, SJP_PATCHES=json.dumps({"JWKS_TIMEOUT": 5}))
    migrate(env, idp.subject)
    token = register_sensitive_token(idp.mint())
    served = serve(name, env, tmp_path / "server.log")
    try:
        answers = [served.get("/api/whoami", token, timeout=REQUEST_TIMEOUT) for _ in range(workers * 2)]
    finally:
        took = served.stop(STOP_TIMEOUT)
    log = served.log_text()
    for status, body in answers:
        assert status == 401, log[-3000:]
        assert body["code"] == "token_not_valid"
    warnings = [line for line in log.splitlines() if line.startswith("WARNING simplejwt_patches")]
    assert warnings, log[-3000:]
    assert any("HTTP 403" in line for line in warnings), warnings
    assert idp.jwks_requests() and all(r.status == 403 for r in idp.jwks_requests())
    assert token not in log
    assert took < STOP_TIMEOUT
