"""A rotation across a fleet of real worker processes sharing a real redis-server (issue 18).

Run by ``nox -s servers``. gunicorn (gthread, 4 workers) serves tests/project with
``JWKS_SHARED_CACHE`` on a redis-server of the test's own, in front of the loopback IdP:

* the rotated key is accepted by every worker on its first token, and the fleet fetches once for it;
* random-kid tokens mixed into steady load across a rotation (tests/soak.py, no other chaos): no valid
  token is rejected outside the README's declared windows, and the rotated key is in everywhere within
  one cooldown of the rotation.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.idp import Mode
from tests.servers import migrate, project_env, serve

if os.environ.get("SJP_SESSION") != "servers":
    pytest.skip("run by `nox -s servers` (gunicorn, uvicorn, redis-server)", allow_module_level=True)
pytest.importorskip("gunicorn")

WORKERS = 4


@pytest.fixture
def fleet_redis():
    from tests.conftest import spawn_redis

    with spawn_redis() as (_, url):
        yield url


def test_every_worker_accepts_the_rotated_key_on_its_first_token_with_one_fetch_for_the_fleet(
    idp, fleet_redis, tmp_path
):
    patches = {"JWKS_SHARED_CACHE": "jwks", "JWKS_TIMEOUT": 5, "JWKS_REFRESH_AHEAD": 0}
    env = project_env(tmp_path / "db.sqlite3", idp.jwks_url, idp.issuer, SJP_PATCHES=json.dumps(patches),
                      SJP_REDIS=fleet_redis, SJP_REDIS_TIMEOUT="0.5")  # fmt: skip
    migrate(env, idp.subject)
    served = serve("gunicorn-gthread-4", env, tmp_path / "server.log", spec=("gunicorn", "gthread", WORKERS, False),
                   threads=4)  # fmt: skip
    try:

        def burst(token: str) -> tuple[set[int], list[int]]:
            pids: set[int] = set()
            statuses: list[int] = []
            with ThreadPoolExecutor(max_workers=WORKERS * 4) as pool:
                for _ in range(10):  # bounded: concurrent batches until every worker answered
                    for status, body in pool.map(lambda _: served.get("/api/pid?hold=0.2", token), range(WORKERS * 4)):
                        statuses.append(status)
                        if status == 200:
                            pids.add(body["pid"])
                    if len(pids) == WORKERS:
                        break
            return pids, statuses

        old_pids, statuses = burst(idp.mint())  # every worker has the set (one fetch, shared)
        assert set(statuses) == {200} and len(old_pids) == WORKERS
        assert len(idp.jwks_requests()) == 1
        idp.rotate()
        idp.mode = Mode.HANG
        idp.hang_seconds = 0.3  # a Keycloak that takes its time: every worker's first tokens arrive meanwhile
        pids, statuses = burst(idp.mint())
    finally:
        served.stop()
    log = served.log_text()
    assert statuses.count(200) == len(statuses), f"{statuses.count(401)} of {len(statuses)} rejected: {log[-2000:]}"
    assert pids == old_pids  # every worker, each on its first new-key token (all were accepted)
    assert len(idp.jwks_requests()) == 2, "fetches for the rotation: 1 for the fleet"


def test_random_kids_in_the_load_across_a_rotation_reject_no_valid_token_outside_the_declared_windows():
    from tests.soak import FLEET_RETRY, SLACK, Config, run, verdict

    pytest.importorskip("uvicorn")
    config = Config(duration=16, chaos=False, random_kids=0.1, garbage=0.05)
    result = run(config)
    tails = result.pop("log_tail")
    assert verdict(result) == [], json.dumps(result, indent=1)[:3000] + "\n".join(tails.values())
    assert result["rotations"] == 1 and result["hostile_accepted"] == 0
    # Random kids spent the fleet's budget just before the rotation, at worst: in within one cooldown.
    assert result["rejection_spans_s"][0] <= math.ceil(config.cooldown) + FLEET_RETRY + SLACK
    assert result["fetches_per_rotation"] == [1]
