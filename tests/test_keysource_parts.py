"""KeySource's collaborators, each alone (issue 17, point 2): the parsed set (keyset), the IdP fetch
(keyfetch), refresh scheduling (refresher), shared-cache coordination (fleet) and the demand refetch
(demand). Time is injected as the ``(monotonic, wall)`` pair every collaborator takes; fetches go to
the loopback IdP and, for the fleet, to a real redis-server. Nothing in urllib or PyJWT is mocked:
where a test needs a fetch that blocks or fails on cue, it passes the Refresher a plain function.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Any

import jwt
import pytest
from django.test import override_settings

from simplejwt_patches.clients import adopt
from simplejwt_patches.conf import Options, get_options
from simplejwt_patches.demand import DemandRefetch
from simplejwt_patches.failures import JWKSFailure
from simplejwt_patches.fleet import Fleet
from simplejwt_patches.keyfetch import fetch_keyset
from simplejwt_patches.keyset import KeySet, build_keyset, from_entry
from simplejwt_patches.refetch import elapsed
from simplejwt_patches.refresher import Refresher
from simplejwt_patches.shared_cache import JWKSSharedWaitFailed
from tests.helpers import find_in_chain
from tests.idp import FakeKeycloak, Mode

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]

WALL = 1.7e9  # the injected wall clock's epoch


def at(mono: float) -> tuple[float, float]:
    """The injected clock at ``mono`` seconds: (monotonic, wall)."""
    return mono, WALL + mono


def options(**values: object) -> Options:
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, **values}):
        return get_options()


def client_of(idp: FakeKeycloak) -> Any:
    client = jwt.PyJWKClient(idp.jwks_url)
    adopt(client)
    return client


def keyset_of(idp: FakeKeycloak, now: tuple[float, float] = at(0), lifetime: float = 60.0) -> KeySet:
    return build_keyset(idp.jwks(), lifetime, now=now)


# -- keyset -------------------------------------------------------------------------------------


def test_a_keyset_expires_on_the_injected_clock_and_survives_the_shared_cache(idp):
    published = idp.jwks()["keys"]
    keyset = build_keyset({"keys": published}, 60.0, now=at(100), etag='"v1"').with_generation(7)
    signing = {k["kid"] for k in published if k.get("use") == "sig"}  # the session IdP may have rotated before
    assert set(keyset.keys) == signing and idp.active_kid in signing  # signing keys only (enc key dropped)
    assert (keyset.expires_mono, keyset.expires_wall, keyset.fetched_wall) == (160.0, WALL + 160, WALL + 100)
    again = from_entry(keyset.entry(), idp.jwks_url, at(130))  # another process, 30 s later
    assert (again.generation, again.fetched_wall, again.expires_mono, again.etag) == (7, WALL + 100, 160.0, '"v1"')
    assert set(again.keys) == set(keyset.keys)


@pytest.mark.parametrize("lifetime", [math.nan, math.inf, -math.inf, 0.0, -1.0])
def test_a_keyset_refuses_an_unusable_lifetime(idp, lifetime):
    with pytest.raises(ValueError, match="lifetime"):
        build_keyset(idp.jwks(), lifetime, now=at(0))


@pytest.mark.parametrize("payload", [{"keys": []}, {"keys": [{"kty": "RSA", "use": "enc"}]}, {"keys": "x"}, {}])
def test_a_keyset_without_a_signing_key_says_why(payload):
    with pytest.raises(jwt.PyJWKClientError) as raised:
        build_keyset(payload, 60.0, now=at(0))
    assert isinstance(find_in_chain(raised.value, JWKSFailure), JWKSFailure)


# -- keyfetch -----------------------------------------------------------------------------------


def test_keyfetch_revalidates_with_a_conditional_request_unless_a_kid_is_missing(idp):
    idp.etags = True
    client, opts = client_of(idp), options()
    first = fetch_keyset(client, opts, None, at(0))
    assert first.etag and first.size > 0
    second = fetch_keyset(client, opts, first, at(10))  # expiry refresh: If-None-Match, 304
    assert second.payload is first.payload and second.size == first.size and second.etag == first.etag
    assert second.expires_mono == 10 + second.lifetime  # the 304 restarts the lifetime
    demand = fetch_keyset(client, opts, first, at(20), demand=True)  # a kid is missing: never conditional
    assert demand.payload is not first.payload
    sent = [(r.status, {k.lower(): v for k, v in r.headers.items()}.get("if-none-match")) for r in idp.jwks_requests()]
    assert sent == [(200, None), (304, first.etag), (200, None)]


# -- refresher ----------------------------------------------------------------------------------


class Gate:
    """A fetch function for the Refresher: blocks until released, counts calls, fails on cue."""

    def __init__(self, keyset: KeySet) -> None:
        self.keyset, self.calls, self.error = keyset, 0, None
        self.open = threading.Event()

    def __call__(self, options: Options, now: tuple[float, float], previous: KeySet | None, demand: bool) -> KeySet:
        self.calls += 1
        self.open.wait(5)
        if self.error is not None:
            raise self.error
        return self.keyset


def test_refresher_single_flight_one_fetch_for_every_waiter(idp):
    gate = Gate(keyset_of(idp))
    refresher, opts = Refresher(gate, lambda o, n, e: None), options()
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(refresher.refresh(opts, at(0), elapsed() + 5))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for _ in range(200):  # bounded: until the fetch is in flight
        if gate.calls:
            break
        time.sleep(0.005)
    gate.open.set()
    for t in threads:
        t.join(5)
    assert gate.calls == 1 and len(results) == 8 and all(r is gate.keyset for r in results)
    assert refresher.current == (1, gate.keyset)


def test_refresher_waiters_stop_at_their_deadline(idp):
    gate = Gate(keyset_of(idp))
    refresher, opts = Refresher(gate, lambda o, n, e: None), options(JWKS_TIMEOUT=1)
    holder = threading.Thread(target=refresher.refresh, args=(opts, at(0), elapsed() + 5))
    holder.start()
    try:
        for _ in range(200):
            if gate.calls:
                break
            time.sleep(0.005)
        started = elapsed()
        with pytest.raises(jwt.PyJWKClientError) as raised:
            refresher.refresh(opts, at(0), elapsed() + 0.1)
        assert elapsed() - started < 1.0
        assert find_in_chain(raised.value, JWKSFailure).kind == "timeout"
    finally:
        gate.open.set()
        holder.join(5)
    assert gate.calls == 1


def test_refresher_remembers_a_failure_and_falls_back_without_a_set(idp):
    gate, fallback = Gate(keyset_of(idp)), keyset_of(idp, lifetime=5)
    gate.open.set()
    gate.error = OSError("refused")
    opts = options(JWKS_REFETCH_COOLDOWN=30)
    alone = Refresher(gate, lambda o, n, e: None)
    with pytest.raises(OSError):
        alone.attempt(opts, at(0))
    assert alone.current == (1, None) and alone.memory.error is gate.error
    assert alone.memory.blocked(29.9, 30) and not alone.memory.blocked(30, 30)
    in_fleet = Refresher(gate, lambda o, n, e: fallback)
    assert in_fleet.attempt(opts, at(0)) is fallback  # a (re)started process: the fleet's last good set
    assert in_fleet.current == (1, fallback) and not in_fleet.memory.ok


def test_refresher_background_refresh_runs_once_and_not_after_a_failure(idp):
    old = keyset_of(idp)
    gate = Gate(keyset_of(idp, now=at(61)))
    refresher, opts = Refresher(gate, lambda o, n, e: None), options(JWKS_REFETCH_COOLDOWN=30)
    assert refresher.prime(at(0), old) and refresher.keyset is old
    generation = refresher.current[0]
    for _ in range(5):
        refresher.in_background(opts, at(61), generation)
    assert refresher.keyset is old  # still serving while the refresh runs
    gate.open.set()
    assert refresher.wait_idle(5)
    assert gate.calls == 1 and refresher.keyset is gate.keyset
    refresher.in_background(opts, at(62), generation)  # refreshed since that request looked
    assert refresher.wait_idle(5) and gate.calls == 1
    gate.error = OSError("down")
    refresher.in_background(opts, at(130), refresher.current[0])
    assert refresher.wait_idle(5) and gate.calls == 2 and not refresher.memory.ok
    refresher.in_background(opts, at(150), refresher.current[0])  # within the cooldown of that failure
    assert refresher.wait_idle(5) and gate.calls == 2


def test_refresher_adopts_only_a_newer_set_and_primes_only_an_empty_source(idp):
    refresher = Refresher(Gate(keyset_of(idp)), lambda o, n, e: None)
    first, newer, older = keyset_of(idp, at(10)), keyset_of(idp, at(20)), keyset_of(idp, at(5))
    assert refresher.prime(at(10), OSError("probe failed")) and refresher.keyset is None
    assert refresher.adopt(first) is first
    assert refresher.prime(at(11), newer) is False and refresher.prime(at(11), OSError()) is False
    assert refresher.adopt(older) is None and refresher.keyset is first
    assert refresher.adopt(keyset_of(idp, at(10))) is first  # the same fetch: the set already held
    assert refresher.adopt(newer) is newer and refresher.current[0] == 3


# -- fleet (real redis-server) ------------------------------------------------------------------


def shared(redis_url: str, **values: object) -> override_settings:
    from django.conf import settings

    caches = {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                          "LOCATION": redis_url}}  # fmt: skip
    return override_settings(
        CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_SHARED_CACHE": "jwks", **values}
    )


def now_wall() -> tuple[float, float]:
    """The shared cache judges entries by the wall clock: the injected one starts at the real time."""
    return 0.0, time.time()


def test_fleet_fetches_once_and_the_other_process_adopts_the_published_set(idp, redis):
    with shared(redis):
        opts, now = get_options(), now_wall()
        a_client, b_client = client_of(idp), client_of(idp)
        a, b = Fleet(weakref.ref(a_client)), Fleet(weakref.ref(b_client))
        published = a.fetch(opts, now, None)
        adopted = b.fetch(opts, now, None)  # the published entry, no fetch of its own
        assert len(idp.jwks_requests()) == 1
        assert adopted.fetched_wall == published.fetched_wall and adopted.generation == published.generation >= 1
        into = Refresher(Gate(published), lambda o, n, e: None)
        assert b.newer(opts, now, into, elapsed() + 1) is not None and into.keyset is not None
        assert b.newer(opts, now, into, elapsed() + 1) is None  # as new as ours: nothing to adopt
        assert b.reads.reads == 2 and len(idp.jwks_requests()) == 1


def test_fleet_budget_is_one_per_cooldown_for_the_fleet(idp, redis):
    with shared(redis, JWKS_REFETCH_COOLDOWN=30):
        opts = get_options()
        clients = client_of(idp), client_of(idp)  # held: a Fleet only keeps a weak reference to its client
        a, b = Fleet(weakref.ref(clients[0])), Fleet(weakref.ref(clients[1]))
        assert a.url() == b.url() == idp.jwks_url
        assert a.take_budget(opts) is True
        assert b.take_budget(opts) is False and a.take_budget(opts) is False


def test_fleet_stale_fallback_only_within_stale_if_error(idp, redis):
    with shared(redis, JWKS_CACHE_LIFESPAN=60, JWKS_STALE_IF_ERROR=100):
        opts = get_options()
        client = client_of(idp)
        fleet = Fleet(weakref.ref(client))
        fetched = fleet.fetch(opts, now_wall(), None)
        bound = fetched.fetched_wall + min(fetched.lifetime, 60)
        down = RuntimeError("the IdP did not answer")  # this process's own fetch failed
        assert fleet.stale(opts, (0.0, bound + 90), down) is not None  # within JWKS_STALE_IF_ERROR past it
        assert fleet.stale(opts, (0.0, bound + 101), down) is None
        waited = RuntimeError("refresh failed")
        waited.__cause__ = JWKSSharedWaitFailed("held past the deadline")
        assert fleet.stale(opts, (0.0, bound + 90), waited) is None  # a lock wait proves nothing about the IdP
    assert Fleet(weakref.ref(client)).stale(options(), now_wall(), RuntimeError()) is None  # no shared cache


# -- demand -------------------------------------------------------------------------------------


def demand_for(client: Any) -> tuple[DemandRefetch, Refresher, Any]:
    """A demand refetch, its refresher and the client (kept alive by the caller: the fleet holds a weak ref)."""
    fleet = Fleet(weakref.ref(client))
    refresher = Refresher(fleet.fetch, fleet.stale)
    return DemandRefetch(refresher, fleet), refresher, client


def test_demand_refetch_is_one_per_cooldown_on_the_injected_clock(idp):
    demand, refresher, _client = demand_for(client_of(idp))
    opts = options(JWKS_REFETCH_COOLDOWN=30)
    refresher.attempt(opts, at(0))  # the cold fetch: no budget
    kid = idp.rotate()
    assert demand(opts, at(1), lambda ks: kid in ks.keys, elapsed() + 1) is refresher.keyset  # the budget's fetch
    assert kid in refresher.keyset.keys and len(idp.jwks_requests()) == 2
    later = idp.rotate()
    for second in range(2, 31):  # spent at 1: nothing until 31
        assert demand(opts, at(second), lambda ks: later in ks.keys, elapsed() + 1) is None
    assert len(idp.jwks_requests()) == 2
    assert demand(opts, at(31), lambda ks: later in ks.keys, elapsed() + 1) is refresher.keyset
    assert later in refresher.keyset.keys and len(idp.jwks_requests()) == 3
    assert demand(opts, at(32), lambda ks: later in ks.keys, elapsed() + 1) is refresher.keyset  # has it: no fetch
    assert len(idp.jwks_requests()) == 3


def test_demand_refetch_takes_the_fleets_newer_set_before_any_budget(idp, redis):
    with shared(redis, JWKS_REFETCH_COOLDOWN=30):
        opts, now = get_options(), now_wall()
        a, a_set, _a = demand_for(client_of(idp))
        b, b_set, _b = demand_for(client_of(idp))
        a_set.attempt(opts, now)
        b_set.attempt(opts, now)  # adopts a's
        kid, later = idp.rotate(), (1.0, now[1] + 1)
        assert a(opts, later, lambda ks: kid in ks.keys, elapsed() + 1) is a_set.keyset  # a's demand refetch
        assert b(opts, later, lambda ks: kid in ks.keys, elapsed() + 1) is b_set.keyset  # the fleet's set
        assert kid in b_set.keyset.keys and len(idp.jwks_requests()) == 2
        assert b.budget.take(later[0], 30)  # b's own budget was never spent


# -- a request with no time left to fetch in (review of the cold path) ----------------------------


def test_a_demand_refetch_with_no_time_left_spends_no_budget(idp):
    """A request whose deadline is (almost) over took the budget and then sent nothing: the rotated kid
    was kept out for a whole cooldown although the IdP was asked nothing."""
    demand, refresher, _client = demand_for(client_of(idp))
    opts = options(JWKS_REFETCH_COOLDOWN=30, JWKS_TIMEOUT=1)
    refresher.attempt(opts, at(0))
    kid = idp.rotate()
    with pytest.raises(jwt.PyJWKClientError) as raised:
        demand(opts, at(1), lambda ks: kid in ks.keys, elapsed() + 0.01)
    assert find_in_chain(raised.value, JWKSFailure).kind == "timeout"
    assert len(idp.jwks_requests()) == 1 and refresher.memory.ok
    assert demand(opts, at(1), lambda ks: kid in ks.keys, elapsed() + 1) is refresher.keyset  # the budget was kept
    assert kid in refresher.keyset.keys and len(idp.jwks_requests()) == 2


def test_a_demand_refetch_with_no_time_left_leaves_the_fleets_budget(idp, redis):
    with shared(redis, JWKS_REFETCH_COOLDOWN=30, JWKS_TIMEOUT=1):
        opts, now = get_options(), now_wall()
        a, a_set, _a = demand_for(client_of(idp))
        b, b_set, _b = demand_for(client_of(idp))
        a_set.attempt(opts, now)
        b_set.attempt(opts, now)
        kid, later = idp.rotate(), (1.0, now[1] + 1)
        with pytest.raises(jwt.PyJWKClientError):
            a(opts, later, lambda ks: kid in ks.keys, elapsed() + 0.01)
        assert b(opts, later, lambda ks: kid in ks.keys, elapsed() + 1) is b_set.keyset  # the fleet's one refetch
        assert kid in b_set.keyset.keys and len(idp.jwks_requests()) == 2


def test_a_fetch_not_sent_for_want_of_time_proves_no_outage_unless_the_idp_failed_first(idp):
    """NotSent (too little left of the request's deadline) lets the shared cache's last good set be served
    on its account only when an earlier fetch of the same request failed at the IdP: a slow shared cache
    alone must not unlock that longer bound (review). Without such a failure it is no attempt at all."""
    import urllib.error

    from simplejwt_patches.deadline import NotSent, request_deadline
    from simplejwt_patches.diagnostics import causes
    from simplejwt_patches.shared_cache import own_fetch_failed
    from simplejwt_patches.transport import http_get

    _demand, refresher, _client = demand_for(client_of(idp))
    opts = options(JWKS_REFETCH_COOLDOWN=30, JWKS_TIMEOUT=1)
    with request_deadline(0.0), pytest.raises(Exception) as raised:
        refresher.attempt(opts, at(0))
    (unsent,) = [e for e in causes(raised.value) if isinstance(e, NotSent)]
    assert unsent.after_idp_failure is False and idp.jwks_requests() == []
    assert not own_fetch_failed(raised.value)  # no proof the IdP is down
    assert refresher.memory.ok and refresher.memory.attempt is None and refresher.current[0] == 0  # no attempt
    idp.mode = Mode.FORBIDDEN
    try:
        with request_deadline(0.3):
            with pytest.raises(urllib.error.HTTPError):
                http_get(idp.jwks_url, opts)  # the IdP refused this request's first fetch
            time.sleep(0.25)
            with pytest.raises(NotSent) as after:
                http_get(idp.jwks_url, opts)
    finally:
        idp.mode = Mode.OK
    assert after.value.after_idp_failure is True and own_fetch_failed(after.value)
    assert len(idp.jwks_requests()) == 1  # the second fetch was not sent
