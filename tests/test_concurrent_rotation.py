"""Rotation under concurrent traffic (issue 18): the "refetch policy" (docs/resilience.md), sentence by sentence.

Through DRF's real request path (``APIClient`` in many threads) or, for the fleet, several
``TokenBackend`` instances sharing a real redis-server (each has its own key source, as separate
processes would). The IdP is the loopback one; a slow fetch is the IdP's HANG mode, never a mock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches.clients import adopt, state_of
from simplejwt_patches.deadline import MARGIN
from simplejwt_patches.refetch import FLEET_READ_INTERVAL, FLEET_RETRY
from tests.helpers import SCHEDULING
from tests.idp import Mode, generate_rsa_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fixer("pyjwt.client.key-source")]


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_TIMEOUT": 3, **options})


def shared(redis_url: str, **options: object) -> override_settings:
    caches = {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                          "LOCATION": redis_url}}  # fmt: skip
    conf = {"JWKS_REFRESH_AHEAD": 0, "JWKS_TIMEOUT": 3, "JWKS_SHARED_CACHE": "jwks", **options}
    return override_settings(CACHES=caches, SIMPLE_JWT_PATCHES=conf)


@pytest.fixture(scope="module")
def foreign_key():
    return generate_rsa_key()


def together(n: int, target: Callable[[int], Any]) -> list[Any]:
    """``target(i)`` in ``n`` threads released at once by a barrier; results (or exceptions) by index."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return results


def drf(token: str) -> int:
    """GET /api/whoami through DRF's request path (one APIClient per call: safe in any thread)."""
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    status = client.get("/api/whoami").status_code
    from django.db import connection

    connection.close()  # this thread's sqlite connection
    return status


def process() -> Any:
    """Another process's TokenBackend, as far as the key source knows (its own client and budget)."""
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.settings import api_settings

    backend = TokenBackend("RS256", None, "", api_settings.AUDIENCE, api_settings.ISSUER, api_settings.JWK_URL, 0)
    adopt(backend.jwks_client)
    return backend


def source_of(backend: Any) -> Any:
    state = state_of(backend.jwks_client)
    assert state is not None
    return state.key_source()


def random_kid(idp: Any, key: Any) -> str:
    return idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=key)


# -- "A token whose kid is unknown while a refresh is in flight waits for it ..." --------------


def test_32_concurrent_first_tokens_of_a_rotated_key_are_all_accepted_with_one_fetch(api, idp):
    with patches():
        assert api(idp.mint()).status_code == 200  # warm: the old key is cached
        idp.rotate()
        idp.mode = Mode.HANG
        idp.hang_seconds = 0.3  # the demand refetch is still in flight when the others arrive
        tokens = [idp.mint() for _ in range(32)]
        statuses = together(32, lambda i: drf(tokens[i]))
    assert statuses == [200] * 32
    assert len(idp.jwks_requests()) == 2  # the cold fetch, and one demand refetch for all 32


def test_a_waiter_is_never_rejected_because_the_fetch_it_waited_for_spent_the_budget(api, idp, foreign_key):
    """A random kid's demand refetch is in flight; the rotated key's tokens arrive meanwhile."""
    with patches():
        assert api(idp.mint()).status_code == 200
        idp.rotate()  # published before the random kid's refetch reaches the IdP
        idp.mode = Mode.HANG
        idp.hang_seconds = 0.4
        hostile = random_kid(idp, foreign_key)
        valid = [idp.mint() for _ in range(8)]

        def call(i: int) -> int:
            if i:
                time.sleep(0.1)  # the random kid's refetch has started
                return drf(valid[i - 1])
            return drf(hostile)

        statuses = together(9, call)
    assert statuses == [401] + [200] * 8
    assert len(idp.jwks_requests()) == 2


def test_a_waiter_whose_kid_the_fetch_lacks_is_rejected_without_another_fetch(api, idp, foreign_key):
    """... and judged by its result: random kids waiting for the same fetch cost nothing more."""
    with patches():
        assert api(idp.mint()).status_code == 200
        idp.mode = Mode.HANG
        idp.hang_seconds = 0.3
        tokens = [random_kid(idp, foreign_key) for _ in range(16)]
        statuses = together(16, lambda i: drf(tokens[i]))
    assert statuses == [401] * 16
    assert len(idp.jwks_requests()) == 2


def test_the_wait_for_a_fetch_in_flight_ends_within_jwks_timeout(api, idp):
    with patches(JWKS_TIMEOUT=1):
        assert api(idp.mint()).status_code == 200
        idp.rotate()
        idp.mode = Mode.HANG
        idp.hang_seconds = 3.0
        tokens = [idp.mint() for _ in range(4)]
        started = time.monotonic()
        statuses = together(4, lambda i: drf(tokens[i]))
        took = time.monotonic() - started
    assert statuses == [401] * 4  # the fetch timed out: a rotation during an outage (declared window)
    assert took < 1 + MARGIN + SCHEDULING  # was 3 s: the waiters waited for the hanging fetch
    assert len(idp.jwks_requests()) == 2


# -- the fleet: "Before spending it, a worker with a shared cache reads the fleet's set ..." ----


def test_a_worker_never_rejects_a_kid_the_fleets_set_has_whatever_spent_its_budget(idp, redis, foreign_key):
    """Issue 18, point 2: A fetches the rotated set; a random kid at B meanwhile spends B's budget and is
    refused the fleet's; A publishes. Every new-key token at B is accepted, without a fetch."""
    with shared(redis):
        a, b = process(), process()
        a.decode(idp.mint())
        b.decode(idp.mint())
        assert len(idp.jwks_requests()) == 1
        idp.rotate()
        idp.mode = Mode.HANG
        idp.hang_seconds = 0.4
        token = idp.mint()
        hostile = random_kid(idp, foreign_key)

        def call(i: int) -> object:
            if i == 0:
                return a.decode(token)["sub"]
            time.sleep(0.1)  # A's fetch is in flight
            try:
                return b.decode(hostile)
            except Exception as exc:  # noqa: BLE001 - the random kid is rejected
                return type(exc).__name__

        results = together(2, call)
        assert results[0] == idp.subject and results[1] != idp.subject
        idp.mode = Mode.OK
        for _ in range(10):
            assert b.decode(token)["sub"] == idp.subject
    assert len(idp.jwks_requests()) == 2


def test_a_worker_refused_the_fleets_budget_waits_for_the_set_the_fleet_is_fetching(idp, redis):
    """Two processes' first new-key tokens at once: one fetch for the fleet, both accepted."""
    with shared(redis):
        backends = [process() for _ in range(4)]
        for backend in backends:
            backend.decode(idp.mint())
        assert len(idp.jwks_requests()) == 1
        idp.rotate()
        idp.mode = Mode.HANG
        idp.hang_seconds = 0.4
        token = idp.mint()
        results = together(4, lambda i: backends[i].decode(token)["sub"])
    assert results == [idp.subject] * 4
    assert len(idp.jwks_requests()) == 2


def test_fleet_reads_are_bounded_whatever_the_number_of_random_kids(idp, redis, foreign_key):
    with shared(redis):
        backend = process()
        backend.decode(idp.mint())
        reads = source_of(backend)._fleet_reads
        tokens = [random_kid(idp, foreign_key) for _ in range(8)]
        before = reads.reads
        started = time.monotonic()

        def flood(i: int) -> int:
            rejected = 0
            for _ in range(10):
                try:
                    backend.decode(tokens[i])
                except Exception:  # noqa: BLE001 - TokenBackendError on every release
                    rejected += 1
            return rejected

        rejected = together(8, flood)
        took = time.monotonic() - started
    assert rejected == [10] * 8
    assert reads.reads - before <= took / FLEET_READ_INTERVAL + 2  # 80 unknown kids, a bounded number of reads
    assert len(idp.jwks_requests()) <= 2  # the cold fetch and at most one demand refetch


def test_random_kids_cannot_keep_a_rotated_key_out_past_one_cooldown(idp, redis, foreign_key):
    """The bound: random kids from everywhere spend the fleet's budget; the rotated key is in within a cooldown."""
    cooldown = 1.0
    with shared(redis, JWKS_REFETCH_COOLDOWN=cooldown):
        backends = [process() for _ in range(3)]
        for backend in backends:
            backend.decode(idp.mint())
        stop = threading.Event()

        def attacker() -> None:
            for i in range(2000):  # bounded; about one random kid per 10 ms at each process
                if stop.is_set():
                    return
                try:
                    backends[i % 3].decode(random_kid(idp, foreign_key))
                except Exception:  # noqa: BLE001 - every one is rejected
                    pass
                time.sleep(0.01)

        thread = threading.Thread(target=attacker)
        thread.start()
        try:
            time.sleep(0.3)
            rotated = time.monotonic()
            idp.rotate()
            token = idp.mint()
            accepted: dict[int, float] = {}
            for _ in range(200):  # bounded: every 20 ms for up to 4 s
                for i, backend in enumerate(backends):
                    if i not in accepted:
                        try:
                            backend.decode(token)
                            accepted[i] = time.monotonic() - rotated
                        except Exception:  # noqa: BLE001 - inside the declared window
                            pass
                if len(accepted) == 3:
                    break
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert len(accepted) == 3, accepted
    # Redis keeps the fleet's budget for ceil(cooldown) s; the fleet retry and one read on top.
    assert max(accepted.values()) < 1.0 + FLEET_RETRY + 0.5, accepted
    fetches = len(idp.jwks_requests())
    assert fetches <= 1 + 3  # the cold fetch, and at most one demand refetch per second for the fleet


# -- the README says each of these once; each sentence has its tests ----------------------------

#: First words of each sentence of the README's refetch policy and of each declared window -> tests.
POLICY = {
    "Only *demand* refetches": [
        "test_rotation::test_a_rotated_key_is_accepted_on_its_first_request",
        "test_rotation::test_expiry_and_background_refreshes_do_not_use_the_budget",
        "test_rotation::test_the_demand_budget_is_fleet_wide_with_a_shared_cache",
    ],
    "A process that starts with the fleet's published set": [
        "test_realm_shared_cache::test_a_new_worker_accepts_a_kid_rotated_in_after_the_fleet_published_its_set",
        "test_realm_shared_cache::test_a_new_worker_accepts_a_rotated_kid_with_a_single_jwk_url",
    ],
    "A token whose kid is unknown while any refresh is in flight": [
        "test_concurrent_rotation::test_32_concurrent_first_tokens_of_a_rotated_key_are_all_accepted_with_one_fetch",
        "test_concurrent_rotation::test_a_waiter_is_never_rejected_because_the_fetch_it_waited_for_spent_the_budget",
        "test_concurrent_rotation::test_a_waiter_whose_kid_the_fetch_lacks_is_rejected_without_another_fetch",
        "test_concurrent_rotation::test_the_wait_for_a_fetch_in_flight_ends_within_jwks_timeout",
    ],
    "Before spending any budget": [
        "test_concurrent_rotation::test_a_worker_never_rejects_a_kid_the_fleets_set_has_whatever_spent_its_budget",
        "test_concurrent_rotation::test_fleet_reads_are_bounded_whatever_the_number_of_random_kids",
    ],
    "A worker refused the fleet's budget": [
        "test_concurrent_rotation::test_a_worker_refused_the_fleets_budget_waits_for_the_set_the_fleet_is_fetching",
        "test_concurrent_rotation::test_random_kids_cannot_keep_a_rotated_key_out_past_one_cooldown",
    ],
    "The bound on what tokens can make the fleet fetch": [
        "test_concurrent_rotation::test_random_kids_cannot_keep_a_rotated_key_out_past_one_cooldown",
        "test_resilience::test_unknown_kids_fetch_at_most_once_per_cooldown",
    ],
    "A request with less than 0.1 s": [
        "test_keysource_parts::test_a_demand_refetch_with_no_time_left_spends_no_budget",
        "test_keysource_parts::test_a_demand_refetch_with_no_time_left_leaves_the_fleets_budget",
        "test_keysource_parts::test_a_fetch_not_sent_for_want_of_time_proves_no_outage_unless_the_idp_failed_first",
        "test_discovery_shared_cache::test_a_slow_shared_cache_alone_never_serves_the_fleets_last_good_document",
        "test_unsent_fetch::test_a_fetch_that_cannot_be_sent_takes_no_refresh_lock",
        "test_unsent_fetch::test_a_fetch_left_too_little_by_a_lock_wait_is_not_sent",
        "test_unsent_fetch::test_an_unsent_fetch_is_one_warning_and_no_fetch_failed_signal",
        "test_unsent_fetch::test_an_unsent_demand_refetch_gives_back_this_processs_budget",
        "test_unsent_fetch::test_an_unsent_demand_refetch_gives_back_the_fleets_budget",
        "test_unsent_fetch::test_an_unsent_fetch_is_no_attempt_for_a_waiter_either",
        "test_unsent_fetch::test_a_lock_wait_that_leaves_too_little_spends_nothing",
        "test_unsent_fetch::test_a_discovery_document_not_sent_is_no_attempt",
        "test_unsent_fetch::test_a_holder_whose_fetch_was_not_sent_lets_its_waiters_fetch",
        "test_unsent_fetch::test_a_slow_shared_cache_without_a_request_deadline_still_fetches",
        "test_discovery_shared_cache::test_a_worker_started_during_an_outage_accepts_a_valid_token_from_the_fleets_document_and_set",
    ],
    "Any failed fetch": [
        "test_rotation::test_a_failed_demand_refetch_names_the_403",
        "test_rotation::test_failed_fetches_still_wait_for_the_cooldown",
    ],
    "*An outage without a usable set*": [
        "test_resilience::test_stale_if_error_serves_the_last_good_set_then_fails_closed",
        "test_resilience::test_a_process_started_during_an_outage_serves_the_fleets_last_good_set",
        "test_shared_cache_trust::test_a_lock_wait_never_serves_a_replayed_entry_as_the_last_good_set",
    ],
    "*A kid rotated in during an outage*": [
        "test_rotation::test_a_failed_demand_refetch_names_the_403",
        "test_concurrent_rotation::test_the_wait_for_a_fetch_in_flight_ends_within_jwks_timeout",
    ],
    "*A kid rotated in while the budget is spent*": [
        "test_concurrent_rotation::test_random_kids_cannot_keep_a_rotated_key_out_past_one_cooldown",
        "test_fleet_rotation::test_random_kids_in_the_load_across_a_rotation_reject_no_valid_token_outside_the_declared_windows",
    ],
    "*A kid rotated in while the fleet's lock or budget is held by nobody*": [
        "test_soak::test_a_bad_day_for_60_seconds_breaks_no_promise",  # Redis paused and workers killed
    ],
}


def policy_sentences() -> list[str]:
    import re

    from tests.docs import page

    readme = page("resilience.md")
    policy = readme.split("**The refetch policy and its bound.** ", 1)[1].split("\n\n", 1)[0]
    windows = readme.split("**Declared fail-closed windows.**", 1)[1].split("\n\n", 2)[1]
    sentences = re.split(r"(?<=[.;])\n(?=[A-Z])", policy)  # one sentence per source line start
    items = [re.sub(r"^\d+\. ", "", item) for item in re.split(r"\n(?=\d+\. )", windows)]
    return [" ".join(s.split()) for s in sentences + items]


def test_each_sentence_of_the_refetch_policy_has_its_tests():
    from pathlib import Path

    sentences = policy_sentences()
    assert len(sentences) == len(POLICY), sentences
    for sentence in sentences:
        (start,) = [s for s in POLICY if sentence.startswith(s)] or [sentence[:60]]
        assert start in POLICY, f"docs/resilience.md sentence without tests: {sentence[:80]}..."
        for node in POLICY[start]:
            module, name = node.split("::")
            assert f"\ndef {name}(" in (Path(__file__).parent / f"{module}.py").read_text(), node


def test_readme_soak_summary_is_generated_from_bench_soak_json():
    import json

    from tests.docs import ROOT, section
    from tests.soak import summary

    data = json.loads((ROOT / "bench" / "soak.json").read_text())
    assert section("soak-summary") == summary(data)
    run = data["simplejwt-patches"]
    assert run["http_5xx"] == 0 and run["valid_rejected_outside_windows"] == 0 and run["broken"] == []


def test_docs_soak_table_is_generated_from_bench_soak_json():
    import json

    from tests.docs import ROOT, section
    from tests.soak import render

    assert section("soak-table") == render(json.loads((ROOT / "bench" / "soak.json").read_text())).strip()
