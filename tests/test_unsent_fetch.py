"""A fetch not sent for want of time (``deadline.NotSent``) costs nothing and says what it was.

The time a request has for its key set can go to the shared cache (slow Redis round trips after the
check that let the request spend the demand budget) or to a lock wait. Found in the second review of the
deadline work (findings 4 and 5) and in its "left alone" notes:

* the request took the fleet's refresh lock for the fetch it then did not send, and the processes
  waiting on that lock were told the fetch had failed (``peer_failed``);
* the demand budget it had taken, its own and the fleet's, stayed spent for a cooldown although the IdP
  was asked nothing, and the process remembered the unsent fetch as a failure (no retry for a cooldown);
* after a lock wait the fetch was sent with whatever was left (its timeout cut, the "too little to
  fetch" rule judged against the cut timeout, never true), and logged "failed after 0 ms" with a
  ``jwks_fetch_failed`` signal, as if the IdP had failed.

Real redis-server, the loopback IdP, DRF's request path where a request is the subject; time runs out
through :func:`~simplejwt_patches.deadline.request_deadline` (what slow round trips leave), not sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from simplejwt_patches import signals
from simplejwt_patches.conf import get_options
from simplejwt_patches.deadline import NotSent, request_deadline
from simplejwt_patches.diagnostics import causes
from simplejwt_patches.fleet import Fleet
from simplejwt_patches.keyfetch import fetch_keyset
from simplejwt_patches.keyset import KeySet
from simplejwt_patches.shared_cache import SharedCache
from simplejwt_patches.shared_marks import seal_mark
from tests.helpers import raw_redis
from tests.test_keysource_parts import at, client_of, demand_for, now_wall, options, shared

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]


def _unsent(exc: BaseException) -> NotSent:
    (unsent,) = [e for e in causes(exc) if isinstance(e, NotSent)]
    return unsent


def test_a_fetch_that_cannot_be_sent_takes_no_refresh_lock(idp, redis):
    """Finding 4: the lock was taken (and released) around a fetch that was never sent."""
    with shared(redis, JWKS_TIMEOUT=1):
        opts, client, url = get_options(), client_of(idp), idp.jwks_url
        raw, name = raw_redis()
        lock = name(SharedCache.key(url) + ":lock")
        held: list[bytes | None] = []

        def fetch(timeout: float | None = None):
            held.append(raw.get(lock))
            return fetch_keyset(client, opts, None, now_wall())

        with request_deadline(0.05), pytest.raises(jwt.PyJWKClientError) as raised:
            SharedCache("jwks").refresh(url, fetch=fetch, adopt=lambda e: None, seen=None, wall=time.time(),
                                        options=opts)  # fmt: skip
    assert held == [None]  # was: this request's lock, so a waiter elsewhere recorded peer_failed
    assert _unsent(raised.value).after_idp_failure is False and idp.jwks_requests() == []


def test_a_fetch_left_too_little_by_a_lock_wait_is_not_sent(api, idp, redis, fresh_backend):
    """A dead holder's lock that lapses 0.07 s before the request's deadline: the fetch after the wait was
    sent with a 0.07 s timeout (the rule judged 0.07 against 0.07 / 4, never "too little"); the loopback
    IdP may answer in that time, an IdP farther away times out, and the timeout is blamed on it."""
    with shared(redis, JWKS_TIMEOUT=1):
        raw, name = raw_redis()
        with request_deadline(0.5):  # the lock is set after the deadline starts: at most 0.07 s are left at its lapse
            raw.set(name(SharedCache.key(idp.jwks_url) + ":lock"), seal_mark("lock", idp.jwks_url), px=430)
            assert api(idp.mint()).status_code in (401, 503)
        assert idp.jwks_requests() == []  # nothing sent in the 0.07 s left
        fresh_backend()
        assert api(idp.mint()).status_code == 200  # the lock lapsed: the next request fetches
        assert len(idp.jwks_requests()) == 1


def test_an_unsent_fetch_is_one_warning_and_no_fetch_failed_signal(idp, caplog):
    failed: list[dict[str, object]] = []

    def receiver(sender: object, **kwargs: object) -> None:
        failed.append(kwargs)

    signals.jwks_fetch_failed.connect(receiver)
    try:
        with caplog.at_level(logging.WARNING, "simplejwt_patches"), request_deadline(0.01):
            with pytest.raises(jwt.PyJWKClientError) as raised:
                fetch_keyset(client_of(idp), options(JWKS_TIMEOUT=1), None, at(0))
    finally:
        signals.jwks_fetch_failed.disconnect(receiver)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("simplejwt_patches")]
    assert len(lines) == 1 and lines[0].startswith("JWKS fetch not sent: JWKS_TIMEOUT deadline of 1 s passed")
    assert "failed after" not in lines[0]  # was "failed after 0 ms", as if the IdP had failed
    assert failed == [] and idp.jwks_requests() == []
    assert _unsent(raised.value) is not None


def test_an_unsent_demand_refetch_gives_back_this_processs_budget(idp):
    """Finding 5, one process: slow round trips after the check spent the budget and sent nothing; the
    rotated kid was then rejected for a cooldown without the IdP being asked."""
    demand, refresher, _client = demand_for(client_of(idp))
    opts = options(JWKS_REFETCH_COOLDOWN=30, JWKS_TIMEOUT=1)
    refresher.attempt(opts, at(0))
    kid = idp.rotate()
    with request_deadline(0.05), pytest.raises(jwt.PyJWKClientError) as raised:  # 1 s at the check, 0.05 at the send
        demand(opts, at(1), lambda ks: kid in ks.keys, time_at_check())
    assert _unsent(raised.value).after_idp_failure is False and len(idp.jwks_requests()) == 1
    assert refresher.memory.ok  # no attempt remembered
    assert demand(opts, at(2), lambda ks: kid in ks.keys, time_at_check()) is refresher.keyset  # the budget is back
    assert kid in refresher.keyset.keys and len(idp.jwks_requests()) == 2
    later = idp.rotate()
    assert demand(opts, at(3), lambda ks: later in ks.keys, time_at_check()) is None  # and now spent
    assert len(idp.jwks_requests()) == 2


def test_an_unsent_demand_refetch_gives_back_the_fleets_budget(idp, redis):
    """Finding 5, a fleet: the other worker was refused the fleet's budget for a cooldown, waited for a set
    nobody was fetching, and rejected the rotated kid."""
    with shared(redis, JWKS_REFETCH_COOLDOWN=30, JWKS_TIMEOUT=1):
        opts, now = get_options(), now_wall()
        a, a_set, _a = demand_for(client_of(idp))
        b, b_set, _b = demand_for(client_of(idp))
        a_set.attempt(opts, now)
        b_set.attempt(opts, now)  # adopts a's
        kid, later = idp.rotate(), (1.0, now[1] + 1)
        raw, name = raw_redis()
        with request_deadline(0.05), pytest.raises(jwt.PyJWKClientError):
            a(opts, later, lambda ks: kid in ks.keys, time_at_check())
        assert raw.get(name(SharedCache.key(idp.jwks_url) + ":demand")) is None  # given back
        assert b(opts, later, lambda ks: kid in ks.keys, time_at_check()) is b_set.keyset  # the fleet's one refetch
        assert kid in b_set.keyset.keys and len(idp.jwks_requests()) == 2
        assert raw.pttl(name(SharedCache.key(idp.jwks_url) + ":demand")) > 25_000  # b's, spent for a cooldown


def test_a_budget_given_back_is_only_ever_the_takers(idp, redis):
    """Giving back deletes the fleet's budget only while it holds the taker's mark: never one another
    process took since (a budget that lapsed and was taken again)."""
    with shared(redis, JWKS_REFETCH_COOLDOWN=30):
        opts = get_options()
        clients = client_of(idp), client_of(idp)
        a, b = Fleet(weakref.ref(clients[0])), Fleet(weakref.ref(clients[1]))
        raw, name = raw_redis()
        key = name(SharedCache.key(idp.jwks_url) + ":demand")
        assert a.take_budget(opts) is True
        raw.delete(key)  # a's budget lapsed
        assert b.take_budget(opts) is True
        a.give_back_budget(opts)
        assert raw.get(key) is not None and a.take_budget(opts) is False  # b's stands
        b.give_back_budget(opts)
        b.give_back_budget(opts)  # twice: nothing more
        assert raw.get(key) is None and a.take_budget(opts) is True


def test_an_unsent_fetch_is_no_attempt_for_a_waiter_either(idp):
    """A cold request whose fetch was not sent: the next one (a waiter for it) fetches instead of being
    refused with "last attempt 0 s ago; not retried before JWKS_REFETCH_COOLDOWN"."""
    _demand, refresher, _client = demand_for(client_of(idp))
    opts = options(JWKS_REFETCH_COOLDOWN=30, JWKS_TIMEOUT=1)
    generation = refresher.current[0]
    with request_deadline(0.0), pytest.raises(jwt.PyJWKClientError):
        refresher.refresh(opts, at(0), time_at_check())
    assert refresher.current[0] == generation and refresher.memory.attempt is None
    assert refresher.refresh(opts, at(0), time_at_check()) is refresher.keyset is not None
    assert len(idp.jwks_requests()) == 1


def time_at_check() -> float:
    """A deadline one second away on the clock the demand refetch checks (its request may have less)."""
    from simplejwt_patches.refetch import elapsed

    return elapsed() + 1


# -- the adversarial review of the change above --------------------------------------------------------


@pytest.fixture
def slow_redis(redis_server: str, redis: str):
    """The real redis-server behind a relay that holds its replies back (:class:`tests.slow_relay.SlowRelay`)."""
    from tests.slow_relay import SlowRelay

    relay = SlowRelay(redis_server)
    try:
        yield relay
    finally:
        relay.close()


def test_a_slow_shared_cache_without_a_request_deadline_still_fetches(api, idp, slow_redis, fresh_backend):
    """Review finding 1: the no-lock rule judged the cache's own 0.35 s reply against JWKS_TIMEOUT = 0.4 s
    where no request deadline applies (SimpleJWT's single JWK_URL): every cold request was refused and nothing
    was remembered, for as long as the cache stayed slow. The fetch gets its JWKS_TIMEOUT, as before."""
    with shared(slow_redis.url(), JWKS_TIMEOUT=0.4):
        fresh_backend()
        slow_redis.delay = 0.35
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 1


def test_a_lock_wait_that_leaves_too_little_spends_nothing(idp, redis):
    """Review finding 4: a dead holder's lock lapsing 0.05 s before the deadline ended the wait as a failure:
    the fleet's budget stayed spent and the failure was remembered, so the rotated kid was refused for a
    cooldown although the IdP was asked nothing."""
    with shared(redis, JWKS_TIMEOUT=1, JWKS_REFETCH_COOLDOWN=30):
        opts, now = get_options(), now_wall()
        demand, refresher, _client = demand_for(client_of(idp))
        refresher.attempt(opts, now)
        kid = idp.rotate()
        raw, name = raw_redis()
        raw.set(name(SharedCache.key(idp.jwks_url) + ":lock"), seal_mark("lock", idp.jwks_url), px=950)
        try:  # nothing sent in the 0.05 s left (or, on a slow core, sent with 0.1 s or more: then it has the kid)
            demand(opts, (1.0, now[1] + 1), lambda ks: kid in ks.keys, time_at_check())
        except jwt.PyJWKClientError as exc:
            assert _unsent(exc).after_idp_failure is False and len(idp.jwks_requests()) == 1
            assert refresher.memory.ok and raw.get(name(SharedCache.key(idp.jwks_url) + ":demand")) is None
        for _ in range(50):  # until the dead holder's lock is gone (it lapses 0.95 s after it was set)
            if raw.get(name(SharedCache.key(idp.jwks_url) + ":lock")) is None:
                break
            time.sleep(0.02)
        assert demand(opts, (2.0, now[1] + 2), lambda ks: kid in ks.keys, time_at_check()) is refresher.keyset
        assert kid in refresher.keyset.keys and len(idp.jwks_requests()) == 2


def test_a_discovery_document_not_sent_is_no_attempt(idp):
    """Review finding 3: a realm's discovery document not sent for want of time (the request's deadline went
    to the shared cache) was remembered as a failure: the realm's tokens were refused for a cooldown."""
    from simplejwt_patches.discovery import Discovery

    opts = options(JWKS_TIMEOUT=1, JWKS_REFETCH_COOLDOWN=30)
    doc = Discovery(idp.issuer, idp.discovery_url)
    with request_deadline(0.05), pytest.raises(Exception) as raised:  # less than MIN_FETCH left
        doc.jwks_uri(opts)
    assert _unsent(raised.value).after_idp_failure is False and idp.discovery_requests() == []
    assert doc.jwks_uri(opts) == idp.jwks_url and len(idp.discovery_requests()) == 1


def test_a_holder_whose_fetch_was_not_sent_lets_its_waiters_fetch(idp, redis, slow_redis):
    """Review finding 2: a realm request took the refresh lock (the lock's reply came 0.3 s late, so its
    deadline was then spent) and its fetch was not sent; the process waiting on that lock was told the fleet's
    fetch had failed (peer_failed) and refused the realm's tokens for a cooldown. The holder now leaves a
    sealed "unsent" mark: the waiter takes the lock and fetches itself."""
    from django.conf import settings
    from django.test import override_settings

    from simplejwt_patches.refresher import Refresher

    caches = {**settings.CACHES,
              "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": slow_redis.url()},
              "jwks_b": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis}}  # fmt: skip
    conf = {"JWKS_REFRESH_AHEAD": 0, "JWKS_TIMEOUT": 1, "JWKS_REFETCH_COOLDOWN": 30}
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={**conf, "JWKS_SHARED_CACHE": "jwks"}):
        a_opts = get_options()
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={**conf, "JWKS_SHARED_CACHE": "jwks_b"}):
        b_opts = get_options()
    with override_settings(CACHES=caches):
        clients = client_of(idp), client_of(idp)
        fleets = Fleet(weakref.ref(clients[0])), Fleet(weakref.ref(clients[1]))
        a, b = (Refresher(f.fetch, f.stale) for f in fleets)
        slow_redis.only, slow_redis.delay = b"NX", 0.3  # A's SET NX PX reply: 0.3 s late
        error, outcome = _a_holds_b_waits(a, a_opts, b, b_opts, deadline=0.35, after=0.1)
    assert _unsent(error).after_idp_failure is False  # A sent nothing
    assert outcome is b.keyset is not None and b.memory.ok, outcome  # was peer_failed, a cooldown
    assert len(idp.jwks_requests()) == 1


def test_a_lock_handed_over_on_a_uniformly_slow_cache_is_taken_by_its_waiter(idp, slow_redis):
    """Second review, finding 1: with every reply of the one shared cache 0.2 s late (under the documented
    socket timeout), the waiter read a separate "unsent" mark only after it had expired, and was told
    peer_failed. The holder now hands the lock itself over (its value replaced by a sealed "unsent" one)."""
    from simplejwt_patches.refresher import Refresher

    with shared(slow_redis.url(), JWKS_TIMEOUT=5, JWKS_REFETCH_COOLDOWN=30):
        opts = get_options()
        clients = client_of(idp), client_of(idp)
        a, b = (Refresher(f.fetch, f.stale) for f in (Fleet(weakref.ref(c)) for c in clients))
        connect = lambda: SharedCache("jwks").get(idp.jwks_url)  # noqa: E731 - each process's connection first

        def slow() -> None:
            connect()
            slow_redis.delay = 0.2

        error, outcome = _a_holds_b_waits(a, opts, b, opts, deadline=0.45, after=0.05, warm=connect, then=slow)
    assert _unsent(error).after_idp_failure is False
    assert outcome is b.keyset is not None and b.memory.ok, outcome
    assert len(idp.jwks_requests()) == 1


def test_a_handed_over_lock_is_taken_by_one_waiter_only(idp, redis):
    """Second review, finding 2: every waiter that saw the holder's mark took the lock in turn, so in an
    outage each fetched from the failing IdP. A handed-over lock is replaced (compare-and-set): one takes it."""
    with shared(redis, JWKS_TIMEOUT=1):
        opts, url = get_options(), idp.jwks_url
        raw, name = raw_redis()
        raw.set(name(SharedCache.key(url) + ":lock"), seal_mark("unsent", url), px=1200)  # a holder's hand-over
        waiters = SharedCache("jwks"), SharedCache("jwks")
        assert [w._lapses(url, opts) is not None for w in waiters] == [True, True]  # both see it lapsed now
        taken = [w._take(url, 1.2)[0] for w in waiters]
        assert taken == [True, False]
        assert waiters[1]._lapses(url, opts) > time.monotonic()  # the taker's live lock: the other waits for it


def _a_holds_b_waits(
    a: Any,
    a_opts: Any,
    b: Any,
    b_opts: Any,
    *,
    deadline: float,
    after: float,
    warm: Callable[[], object] | None = None,
    then: Callable[[], object] | None = None,
) -> tuple[BaseException, object]:
    """A's refresh in a request deadline of ``deadline`` s (a realm request), and another process's, B's,
    ``after`` s later; ``warm`` runs first in B's thread, ``then`` in A's before both start. A must fail:
    ``(A's error, B's keyset or error)``."""
    outcome: dict[str, object] = {}
    connected, go = threading.Event(), threading.Event()

    def other_process() -> None:
        if warm is not None:
            warm()
        connected.set()
        go.wait(5)
        time.sleep(after)  # A is taking (or holds) the lock by now
        try:
            outcome["b"] = b.attempt(b_opts, now_wall())
        except Exception as exc:  # noqa: BLE001 - the caller's assertion names it
            outcome["b"] = exc

    waiter = threading.Thread(target=other_process)
    waiter.start()
    connected.wait(5)
    if then is not None:
        then()
    go.set()
    try:
        with request_deadline(deadline), pytest.raises(jwt.PyJWKClientError) as raised:
            a.attempt(a_opts, now_wall())
    finally:
        waiter.join(10)
    return raised.value, outcome["b"]


def test_a_lock_gone_between_its_read_and_its_ttl_read_has_lapsed(idp, redis):
    """Found while making the lock-wait test stable: a lock that expired between the waiter's read of it and
    the read of its TTL was judged by its seal's bound instead (up to JWKS_TIMEOUT + 0.2 s more), so the
    waiter took the gone lock for a released one and reported peer_failed (1 run in 4 of that test). Gone
    is 0.0 left; the waiter tells lapsed from released by its estimate from the read before."""
    with shared(redis, JWKS_TIMEOUT=1):
        url = idp.jwks_url
        value = seal_mark("lock", url)  # read a moment ago; the key itself is gone now
        assert SharedCache("jwks")._misfit("lock", url, value, 1.2) == (None, 0.0)


def test_a_slow_fleet_fetches_once_and_every_waiter_adopts(idp, slow_redis):
    """Third review, finding 1 (HIGH, in the fix above): a lock released between a waiter's read and its TTL
    read counted as lapsed, and the waiter took the free lock and fetched again instead of adopting the set
    just published. With every reply 0.2 s late, one holder and three waiters made 3 IdP requests."""
    from simplejwt_patches.refresher import Refresher

    with shared(slow_redis.url(), JWKS_TIMEOUT=5, JWKS_REFETCH_COOLDOWN=30):
        opts = get_options()
        clients = [client_of(idp) for _ in range(4)]
        processes = [Refresher(f.fetch, f.stale) for f in (Fleet(weakref.ref(c)) for c in clients)]
        start = threading.Barrier(len(processes) + 1)
        outcome: dict[int, object] = {}

        def process(i: int) -> None:
            SharedCache("jwks").get(idp.jwks_url)  # its own connection, before the cache turns slow
            start.wait(5)
            time.sleep(0.05 + 0.07 * i if i else 0)  # the first holds the lock, the others wait on it
            try:
                outcome[i] = processes[i].attempt(opts, now_wall())
            except Exception as exc:  # noqa: BLE001 - the assertion below names it
                outcome[i] = exc

        threads = [threading.Thread(target=process, args=(i,)) for i in range(len(processes))]
        for thread in threads:
            thread.start()
        for _ in range(50):  # until every process has its connection
            if start.n_waiting == len(processes):
                break
            time.sleep(0.02)
        slow_redis.delay = 0.2
        start.wait(5)
        for thread in threads:
            thread.join(15)
    assert all(isinstance(outcome[i], KeySet) for i in range(len(processes))), outcome
    assert len(idp.jwks_requests()) == 1


def test_a_handed_over_lock_is_judged_by_its_own_expiry(idp, redis, caplog):
    """Third review, finding 2: the expiry of a handed-over lock was read from another key, so one planted
    without an expiry was taken as handed over. It is broken, as any lock no live holder could have set."""
    with shared(redis, JWKS_TIMEOUT=1), caplog.at_level(logging.WARNING, "simplejwt_patches"):
        opts, url = get_options(), idp.jwks_url
        raw, name = raw_redis()
        SharedCache._rejected.clear()
        raw.set(name(SharedCache.key(url) + ":lock"), seal_mark("unsent", url))  # no expiry
        waiter = SharedCache("jwks")
        assert waiter._lapses(url, opts) is not None and waiter._handed is None
        assert raw.get(name(SharedCache.key(url) + ":lock")) is None  # broken
        assert any("it has no expiry" in r.getMessage() for r in caplog.records)
        SharedCache._rejected.clear()


def _two_caches(slow_url: str, direct_url: str, **conf: Any) -> tuple[Any, Any, Any]:
    """Options for a process on the slow cache (``jwks``), one on the same Redis directly (``jwks_b``), and the
    settings override that holds both aliases."""
    from django.conf import settings
    from django.test import override_settings

    caches = {**settings.CACHES,
              "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": slow_url},
              "jwks_b": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": direct_url}}  # fmt: skip
    base = {"JWKS_REFRESH_AHEAD": 0, "JWKS_TIMEOUT": 1, "JWKS_REFETCH_COOLDOWN": 30, **conf}
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={**base, "JWKS_SHARED_CACHE": "jwks"}):
        slow = get_options()
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={**base, "JWKS_SHARED_CACHE": "jwks_b"}):
        direct = get_options()
    return slow, direct, override_settings(CACHES=caches)


def test_a_lock_that_lapses_just_after_it_was_refused_is_taken_not_judged_a_failure(idp, redis, slow_redis):
    """Fourth review, finding 1: a dead holder's lock lapsing between the waiter's refused lock and its first
    read of the lock looked released, and the waiter reported peer_failed (a cooldown of refusals) although
    only the holder had died. The waiter now takes the free lock (and adopts a set published meanwhile)."""
    from simplejwt_patches.refresher import Refresher

    opts, _direct, both = _two_caches(slow_redis.url(), redis)
    with both:
        client = client_of(idp)
        fleet = Fleet(weakref.ref(client))
        waiter = Refresher(fleet.fetch, fleet.stale)
        raw, name = raw_redis("jwks_b")
        slow_redis.only, slow_redis.delay = b"NX", 0.15  # the refused lock's reply comes after the lapse
        raw.set(name(SharedCache.key(idp.jwks_url) + ":lock"), seal_mark("lock", idp.jwks_url), px=60)
        keyset = waiter.attempt(opts, now_wall())
    assert keyset is waiter.keyset is not None and waiter.memory.ok
    assert len(idp.jwks_requests()) == 1


def test_a_new_request_adopts_a_set_published_while_it_took_the_lock(idp, redis, slow_redis):
    """Fourth review, finding 3: a holder that published and released its lock between a new request's read
    of the entry and its lock made that request fetch again. It now re-reads the entry once it holds the lock."""
    from simplejwt_patches.refresher import Refresher

    slow, direct, both = _two_caches(slow_redis.url(), redis)
    with both:
        clients = client_of(idp), client_of(idp)
        fleets = Fleet(weakref.ref(clients[0])), Fleet(weakref.ref(clients[1]))
        arrival, holder = (Refresher(f.fetch, f.stale) for f in fleets)
        SharedCache("jwks").get(idp.jwks_url)  # the slow process's connection first
        slow_redis.only, slow_redis.delay = b"GETRANGE", 0.3  # its read of the entry answers 0.3 s late
        published = threading.Thread(target=lambda: (time.sleep(0.05), holder.attempt(direct, now_wall())))
        published.start()  # fetches, publishes and unlocks while the new request's read is in flight
        keyset = arrival.attempt(slow, now_wall())
        published.join(5)
    assert keyset is arrival.keyset is not None and holder.keyset is not None
    assert keyset.fetched_wall == holder.keyset.fetched_wall  # adopted, not fetched
    assert len(idp.jwks_requests()) == 1
