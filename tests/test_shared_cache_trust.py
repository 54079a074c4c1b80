"""The shared cache as attack surface (issue 16, points 1-3 and 10, and the review of the lock and the
budget): whoever can write the Redis behind ``JWKS_SHARED_CACHE`` but does not know ``SECRET_KEY`` runs
no code, replays no old key set past the window the docs state (not even by holding the refresh lock),
cannot keep workers from fetching with a planted lock nor turn off rotation pick-up with a planted
budget key, and a dead lock holder costs a request at most ``JWKS_TIMEOUT``.

Real redis-server, real IdP on loopback, DRF's request path; time travel (freezegun) instead of sleeps.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid

import django
import pytest
from django.conf import settings
from django.test import override_settings
from freezegun import freeze_time

from simplejwt_patches.deadline import MARGIN
from simplejwt_patches.shared_cache import JWKSSharedWaitFailed, SharedCache, open_entry, seal_entry
from simplejwt_patches.shared_marks import seal_mark
from tests.conftest import last_exception
from tests.helpers import SCHEDULING, find_in_chain, raw_redis
from tests.idp import Mode, generate_rsa_key

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]


class Planted:
    """A pickle that, when loaded, creates ``marker``: proof that the cache's bytes ran as code."""

    def __init__(self, marker: object) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "a"))


def shared(redis_url: str, **options: object) -> override_settings:
    caches = {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                          "LOCATION": redis_url}}  # fmt: skip
    return override_settings(
        CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_SHARED_CACHE": "jwks", **options}
    )


@pytest.fixture(scope="module")
def foreign_key():
    return generate_rsa_key()


@pytest.fixture
def second_backend():
    """Another TokenBackend with its own client: another process as far as the key source knows."""
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.settings import api_settings

    return lambda: TokenBackend("RS256", None, "", api_settings.AUDIENCE, api_settings.ISSUER, api_settings.JWK_URL, 0)


# -- 1. no pickle between the cache and the seal ---------------------------------------------------


def test_a_pickle_planted_at_every_key_never_runs(api, idp, redis, fresh_backend, foreign_key, tmp_path):
    """Point 1: Django's RedisCache unpickled the planted value before the seal was checked."""
    marker = tmp_path / "code-ran"
    planted = pickle.dumps(Planted(marker))
    token = idp.mint()
    with shared(redis):
        raw, name = raw_redis()
        key = SharedCache.key(idp.jwks_url)
        for _ in range(3):  # each round: a worker that starts now, with every key the package reads planted
            for suffix in ("", ":lock", ":demand"):
                raw.set(name(key + suffix), planted, ex=300)
            fresh_backend()
            assert api(token).status_code == 200
            for _ in range(3):
                raw.set(name(key), planted, ex=300)
                assert api(idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign_key)).status_code == 401
                assert api(token).status_code == 200
    assert not marker.exists()


def test_a_backend_that_unpickles_is_never_read(api, idp, fresh_backend, tmp_path, caplog):
    """Point 1: the file cache unpickles what is on disk; it is refused (E050) and never read."""
    from django.core.cache import caches

    marker = tmp_path / "code-ran"
    caches_conf = {**settings.CACHES, "files": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                                "LOCATION": str(tmp_path / "cache")}}  # fmt: skip
    SharedCache._down.clear()
    with override_settings(CACHES=caches_conf, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "files"}):
        key = SharedCache.key(idp.jwks_url)
        for suffix in ("", ":lock", ":demand"):
            caches["files"].set(key + suffix, Planted(marker), timeout=300)
        fresh_backend()
        with caplog.at_level(logging.WARNING, "simplejwt_patches"):
            assert api(idp.mint()).status_code == 200  # works alone
    SharedCache._down.clear()
    assert not marker.exists()
    assert any("'files' unavailable" in r.getMessage() and "FileBasedCache" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("backend", "why"),
    [
        ("django.core.cache.backends.db.DatabaseCache", "unpickles whatever is in its table"),
        ("django.core.cache.backends.filebased.FileBasedCache", "unpickles whatever is in its files"),
        ("django.core.cache.backends.memcached.PyMemcacheCache", "memcached flags say pickle"),
        ("django.core.cache.backends.memcached.PyLibMCCache", "memcached flags say pickle"),
        ("tests.test_shared_cache_trust.CustomCache", "no way to read plain bytes"),
    ],
)
def test_backends_that_can_only_unpickle_are_refused(backend, why, tmp_path):
    """simplejwt_patches.E050 names the alias, the backend and why."""
    import importlib

    from simplejwt_patches.checks import check_shared_cache

    module, _, cls = backend.rpartition(".")
    try:
        importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{backend} does not exist on Django {django.get_version()}")
    caches_conf = {**settings.CACHES, "shared": {"BACKEND": backend, "LOCATION": str(tmp_path / "x")}}
    with override_settings(CACHES=caches_conf, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "shared"}):
        messages = check_shared_cache()
    assert [m.id for m in messages] == ["simplejwt_patches.E050"]
    assert "'shared'" in messages[0].msg and cls in messages[0].msg and why in messages[0].msg


def test_raw_backends_pass_the_check():
    from simplejwt_patches.checks import check_shared_cache

    caches_conf = {**settings.CACHES, "mem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                   "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                             "LOCATION": "redis://127.0.0.1:1/0"}}  # fmt: skip
    aliases = ["mem", "redis"] if django.VERSION >= (4, 0) else ["mem"]
    for alias in aliases:
        with override_settings(CACHES=caches_conf, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": alias}):
            assert check_shared_cache() == [], alias
    with override_settings(SIMPLE_JWT_PATCHES={}):
        assert check_shared_cache() == []


class CustomCache:
    """A third-party backend the package knows nothing about."""

    def __init__(self, location: str, params: dict[str, object]) -> None:
        self.location = location


# -- 2. fresh entries only ---------------------------------------------------------------------------


def test_an_old_sealed_entry_written_back_does_not_revive_a_dropped_key(api, idp, redis, fresh_backend):
    """Point 2: the replayed entry was trusted by new workers for its whole lifetime (24 h here)."""
    idp.cache_control = "max-age=86400"
    with shared(redis, JWKS_CACHE_LIFESPAN=300), freeze_time() as clock:
        raw, name = raw_redis()
        key = name(SharedCache.key(idp.jwks_url))
        leaked = idp.mint(expires_in=86400)
        assert api(leaked).status_code == 200  # fetched and published at t=0 (lifetime 24 h)
        old = raw.get(key)
        idp.rotate(keep_old=False)  # the IdP drops the leaked key
        clock.tick(60)
        assert api(idp.mint()).status_code == 200  # this worker picks the new set up and publishes it
        published = raw.get(key)
        raw.set(key, old, ex=86400)  # someone who can write Redis writes the old sealed entry back
        assert api(leaked).status_code == 401  # never adopts an entry older than one it has seen
        fresh_backend()  # within the stated window (fetched < JWKS_CACHE_LIFESPAN ago) a new worker trusts it
        assert api(leaked).status_code == 200
        clock.tick(240)  # t=300: past the window
        fetches = len(idp.jwks_requests())
        raw.set(key, old, ex=86400)
        fresh_backend()
        assert api(leaked).status_code == 401  # a new worker fetches once itself instead
        assert len(idp.jwks_requests()) == fetches + 1
        assert api(idp.mint()).status_code == 200
    assert [open_entry(v, idp.jwks_url)["generation"] for v in (old, published)] == [1, 2]


def test_sealed_age_bounds_the_last_good_set_during_an_outage(api, idp, redis, fresh_backend, second_backend):
    """Point 2: stale-if-error counts from the sealed fetch time (lifespan + JWKS_STALE_IF_ERROR)."""
    idp.cache_control = "max-age=86400"
    with shared(redis, JWKS_CACHE_LIFESPAN=300, JWKS_STALE_IF_ERROR=600), freeze_time() as clock:
        second_backend().decode(idp.mint(expires_in=86400))  # another process published (lifetime 24 h)
        idp.mode = Mode.FORBIDDEN
        clock.tick(899)
        token = idp.mint(expires_in=86400)
        assert api(token).status_code == 200  # started during the outage: 899 s < 300 + 600
        fresh_backend()  # another worker started in the outage, 2 s later
        clock.tick(2)
        assert api(token).status_code in (401, 503)  # 901 s: fail closed, although the entry lives 24 h


# -- 3. SECRET_KEY_FALLBACKS ---------------------------------------------------------------------------


def test_entries_of_a_fallback_key_are_trusted_and_resealed(api, idp, redis, fresh_backend, second_backend, caplog):
    """Point 3: after Django's key rotation the fleet's entries looked forged (WARNING, 401 in an outage)."""
    if django.VERSION < (4, 1):
        pytest.skip("SECRET_KEY_FALLBACKS is Django 4.1+")
    old_key = settings.SECRET_KEY
    with shared(redis), freeze_time() as clock:
        second_backend().decode(idp.mint())  # the fleet published under the old key
        SharedCache._rejected.clear()
        with override_settings(SECRET_KEY="rotated-" + old_key, SECRET_KEY_FALLBACKS=[old_key]):
            idp.mode = Mode.FORBIDDEN
            clock.tick(301)
            with caplog.at_level(logging.WARNING, "simplejwt_patches"):
                assert api(idp.mint()).status_code == 200  # a worker started in an outage: the last good set
            assert not [r for r in caplog.records if "ignoring the entry" in r.getMessage()]
            idp.mode = Mode.OK
            clock.tick(31)
            fresh_backend()
            assert api(idp.mint()).status_code == 200  # fetched and published, sealed with the new key
            fetches = len(idp.jwks_requests())
        with override_settings(SECRET_KEY="rotated-" + old_key, SECRET_KEY_FALLBACKS=[]):  # the old key retired
            caplog.clear()
            with caplog.at_level(logging.WARNING, "simplejwt_patches"):
                assert second_backend().decode(idp.mint())["sub"] == idp.subject
            assert len(idp.jwks_requests()) == fetches  # adopted the resealed entry
            assert not [r for r in caplog.records if "ignoring the entry" in r.getMessage()]
    SharedCache._rejected.clear()


# -- 10. the lock wait shares the JWKS_TIMEOUT deadline -----------------------------------------------


def _timed(api, token: str) -> tuple[int, float]:
    started = time.monotonic()
    status = api(token).status_code
    return status, time.monotonic() - started


@pytest.mark.parametrize("mode", [Mode.OK, Mode.HANG])
def test_a_lock_no_live_holder_could_have_set_is_broken_at_once(api, idp, redis, mode):
    """Point 10: a lock left by a worker killed mid-fetch (an older release: JWKS_TIMEOUT + 5 s) made the next
    cold request poll for the full JWKS_TIMEOUT, then fetch with a JWKS_TIMEOUT of its own (1.9 s)."""
    idp.mode = mode
    with shared(redis, JWKS_TIMEOUT=1):
        raw, name = raw_redis()
        raw.set(name(SharedCache.key(idp.jwks_url) + ":lock"), b"1", ex=6)
        status, took = _timed(api, idp.mint())
    if mode is Mode.OK:
        assert status == 200 and took < 0.5 + SCHEDULING, took  # broken at once: no wait (was 1 s and a 401)
    else:  # an IdP that does not answer: lock wait and fetch share the one deadline
        assert status in (401, 503) and took < 1 + MARGIN + SCHEDULING, took
    assert len(idp.jwks_requests()) == 1


def test_a_dead_holders_lock_is_waited_for_within_one_deadline(api, idp, redis, fresh_backend):
    """Point 10: lock wait and the request's own fetch share one JWKS_TIMEOUT."""
    with shared(redis, JWKS_TIMEOUT=1):
        raw, name = raw_redis()
        lock = name(SharedCache.key(idp.jwks_url) + ":lock")
        raw.set(lock, seal_mark("lock", idp.jwks_url), px=1200)  # a holder's (JWKS_TIMEOUT + margin), killed 0.8 s ago
        time.sleep(0.8)  # the lock lapses 0.4 s into the request's deadline: 0.6 s left for the fetch (a loaded core)
        status, took = _timed(api, idp.mint())
        assert status == 200 and took < 1 + MARGIN + SCHEDULING, (
            took
        )  # waited for the lapse, then fetched in what was left
        assert len(idp.jwks_requests()) == 1

        raw.delete(name(SharedCache.key(idp.jwks_url)))
        raw.set(lock, seal_mark("lock", idp.jwks_url), px=1200)  # killed just now: it lapses past this deadline
        fresh_backend()
        status, took = _timed(api, idp.mint())
        assert status in (401, 503) and took < 1 + MARGIN + SCHEDULING, took
        fresh_backend()
        status, took = _timed(api, idp.mint())  # the lock lapsed meanwhile: the next request fetches
        assert status == 200 and took < 1 + MARGIN + SCHEDULING, took


# -- the review: the refresh lock and the demand budget are sealed too -------------------------------


def _lock(idp) -> str:
    return raw_redis()[1](SharedCache.key(idp.jwks_url) + ":lock")


def _warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


@pytest.mark.parametrize("holder", ["held past the deadline", "released without a set"])
def test_a_lock_wait_never_serves_a_replayed_entry_as_the_last_good_set(api, idp, redis, fresh_backend, holder,
                                                                        caplog):  # fmt: skip
    """F1: a lock wait that ended without a set (timeout, or peer_failed) fell back to the shared cache's stale
    set (lifetime + JWKS_STALE_IF_ERROR): an old sealed entry written back revived a removed key for an hour."""
    import threading

    idp.cache_control = "max-age=86400"
    with shared(redis, JWKS_TIMEOUT=0.5, JWKS_CACHE_LIFESPAN=300, JWKS_STALE_IF_ERROR=3600):
        raw, name = raw_redis()
        leaked = idp.mint(expires_in=86400)
        assert api(leaked).status_code == 200  # published (lifetime 24 h)
        entry = open_entry(raw.get(name(SharedCache.key(idp.jwks_url))), idp.jwks_url)
        idp.rotate(keep_old=False)  # the IdP drops the leaked key
        aged = {**entry, "fetched": entry["fetched"] - 600, "expires": entry["expires"] - 600}
        # the old entry written back (past the adopt window, inside lifetime + stale-if-error) and a lock
        raw.set(name(SharedCache.key(idp.jwks_url)), seal_entry(aged, idp.jwks_url), ex=86400)
        raw.set(_lock(idp), seal_mark("lock", idp.jwks_url), px=700)  # a live holder's (0.5 s + 0.2 s)
        if holder == "released without a set":
            threading.Timer(0.15, lambda: raw.delete(_lock(idp))).start()
        fresh_backend()  # a worker that starts now
        SharedCache._waited.clear()
        with caplog.at_level(logging.WARNING, "simplejwt_patches"):
            assert api(leaked).status_code in (401, 503)  # not the replayed set's removed key
        find_in_chain(last_exception(), JWKSSharedWaitFailed)
        assert not _warnings(caplog, "serving the shared cache's last good set")
        assert len(_warnings(caplog, "held the lock")) == (holder == "held past the deadline")
        assert len(idp.jwks_requests()) == 1


@pytest.mark.parametrize(
    "planted",
    ["older release", "pickle", "forged seal", "replayed, taken 5 s ago", "another URL's", "the budget's"],
)
def test_a_planted_lock_is_broken_at_once(api, idp, redis, planted, caplog):
    """F2: a lock with a believable expiry (JWKS_TIMEOUT + 0.2 s), planted again and again, kept every cold
    worker from fetching: each token waited JWKS_TIMEOUT for a 401, the IdP got nothing, nothing was logged."""
    url = idp.jwks_url
    value = {
        "older release": b"1",
        "pickle": pickle.dumps(1),
        "forged seal": b"sjp-mark-1\n" + b"0" * 64 + b"\nlock\n" + str(time.time()).encode() + b"\nnonce",
        "replayed, taken 5 s ago": seal_mark("lock", url, taken=time.time() - 5),
        "another URL's": seal_mark("lock", url + "?other"),
        "the budget's": seal_mark("demand", url),
    }[planted]
    SharedCache._rejected.clear()
    with shared(redis, JWKS_TIMEOUT=1), caplog.at_level(logging.WARNING, "simplejwt_patches"):
        raw, _ = raw_redis()
        raw.set(_lock(idp), value, px=1200)
        status, took = _timed(api, idp.mint())
        assert status == 200 and took < 0.5 + SCHEDULING, (status, took)
        assert len(idp.jwks_requests()) == 1
        assert len(_warnings(caplog, "broke the refresh lock")) == 1
        assert raw.get(_lock(idp)) is None  # and the holder released its own lock
    SharedCache._rejected.clear()


def test_a_live_holders_lock_is_obeyed_and_a_timeout_is_logged_once_per_cooldown(api, idp, redis, fresh_backend,
                                                                                  caplog):  # fmt: skip
    """F2: a request that gave up on a lock said nothing; now one WARNING per JWKS_REFETCH_COOLDOWN and URL."""
    SharedCache._waited.clear()
    with shared(redis, JWKS_TIMEOUT=0.5, JWKS_REFETCH_COOLDOWN=30), caplog.at_level(logging.WARNING,
                                                                                    "simplejwt_patches"):  # fmt: skip
        raw, _ = raw_redis()
        for _ in range(2):
            raw.set(_lock(idp), seal_mark("lock", idp.jwks_url), px=700)  # a live, slow holder's
            fresh_backend()
            status, took = _timed(api, idp.mint())
            assert status in (401, 503) and took < 0.5 + MARGIN + SCHEDULING, (status, took)
        assert idp.jwks_requests() == []
        assert len(_warnings(caplog, "held the lock for this request's whole JWKS_TIMEOUT=0.5 s")) == 1


def test_a_holder_releases_only_its_own_lock(idp, redis):
    """F2: unlock deleted whatever lock was there, also one another process had taken since."""
    with shared(redis):
        cache, raw = SharedCache("jwks"), raw_redis()[0]
        taken, ours = cache.lock(idp.jwks_url, 1.2)
        assert taken is True
        theirs = seal_mark("lock", idp.jwks_url)
        raw.set(_lock(idp), theirs, px=1200)  # ours lapsed; another process took the lock
        cache.unlock(idp.jwks_url, ours)
        assert raw.get(_lock(idp)) == theirs
        cache.unlock(idp.jwks_url, theirs)
        assert raw.get(_lock(idp)) is None


@pytest.mark.parametrize(
    ("planted", "ttl_ms", "broken"),
    [
        ("older release", None, True),
        ("sealed", None, True),  # a sealed value set again without expiry
        ("sealed", 300_000, True),  # an expiry longer than the cooldown
        ("taken 40 s ago", 30_000, True),  # a replayed budget key
        ("forged seal", 30_000, True),
        ("sealed", 30_000, False),  # another process spent the budget: obeyed
    ],
)
def test_a_planted_demand_budget_does_not_turn_off_rotation_pick_up(api, idp, redis, planted, ttl_ms, broken,
                                                                   caplog):  # fmt: skip
    """F3: ``SET <key>:demand 1`` with no expiry made the fleet reject every rotated key until the cached set
    expired (an hour here), without a fetch or a log line."""
    url = idp.jwks_url
    SharedCache._rejected.clear()
    with shared(redis, JWKS_TIMEOUT=0.5, JWKS_REFETCH_COOLDOWN=30, JWKS_CACHE_LIFESPAN=3600):
        raw, name = raw_redis()
        assert api(idp.mint()).status_code == 200  # warm
        value = {
            "older release": b"1",
            "sealed": seal_mark("demand", url),
            "taken 40 s ago": seal_mark("demand", url, taken=time.time() - 40),
            "forged seal": b"sjp-mark-1\n" + b"f" * 64 + b"\ndemand\n" + str(time.time()).encode() + b"\nx",
        }[planted]
        raw.set(name(SharedCache.key(url) + ":demand"), value, px=ttl_ms)
        idp.rotate()
        with caplog.at_level(logging.WARNING, "simplejwt_patches"):
            status = api(idp.mint()).status_code
    SharedCache._rejected.clear()
    if broken:
        assert status == 200
        assert len(idp.jwks_requests()) == 2
        assert len(_warnings(caplog, "broke the demand-refetch budget")) == 1
        left = raw.pttl(name(SharedCache.key(url) + ":demand"))
        assert 0 < left <= 30_000  # taken again, sealed, for one cooldown
    else:
        assert status == 401  # the window the docs declare (a kid rotated in while the budget is spent)
        assert len(idp.jwks_requests()) == 1
        assert not _warnings(caplog, "broke")
