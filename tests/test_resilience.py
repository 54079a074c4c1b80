"""JWKS resilience: refetch bound, stale-if-error, single flight, Cache-Control, shared cache, 503.

Everything goes through DRF's real request path (or ``get_validated_token`` for the threaded
cases) against the loopback IdP; expiry is reached by time travel (freezegun), never by sleeping.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import uuid

import pytest
from django.test import override_settings
from freezegun import freeze_time

from simplejwt_patches.clients import state_of
from simplejwt_patches.shared_cache import JWKSSharedRefreshFailed, SharedCache, open_entry, seal_entry
from simplejwt_patches.shared_marks import seal_mark
from tests.conftest import last_exception, register_sensitive_token
from tests.helpers import PYJWT, find_in_chain, raw_redis
from tests.idp import Mode, generate_rsa_key

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, **options})


def source():
    from rest_framework_simplejwt import state

    return state_of(state.token_backend.jwks_client).key_source()


def stranger(idp) -> str:
    return idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=generate_rsa_key())


@pytest.fixture(scope="module")
def foreign_key():
    return generate_rsa_key()


def test_unknown_kids_fetch_at_most_once_per_cooldown(api, idp, foreign_key):
    with patches(), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        for _ in range(25):
            assert api(idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign_key)).status_code == 401
        assert len(idp.jwks_requests()) == 2  # the cold fetch + one demand refetch (cold fetches use no budget)
        clock.tick(31)
        for _ in range(25):
            assert api(idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign_key)).status_code == 401
        assert len(idp.jwks_requests()) == 3
    assert "Unable to find a signing key" in str(last_exception().__cause__.__cause__.__cause__)


def test_failed_attempts_count_toward_the_cooldown(api, idp):
    idp.mode = Mode.FORBIDDEN
    with patches(), freeze_time() as clock:
        for _ in range(10):
            assert api(idp.mint()).status_code == 401
            assert find_in_chain(last_exception(), urllib.error.HTTPError).code == 403
        assert len(idp.jwks_requests()) == 1
        clock.tick(31)
        idp.mode = Mode.OK
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 2


def test_stale_if_error_serves_the_last_good_set_then_fails_closed(api, idp, caplog):
    with patches(JWKS_CACHE_LIFESPAN=60), freeze_time() as clock, caplog.at_level(logging.WARNING, "simplejwt_patches"):
        assert api(idp.mint()).status_code == 200
        idp.mode = Mode.FORBIDDEN
        clock.tick(61)
        for _ in range(5):
            assert api(idp.mint()).status_code == 200  # stale, while the refresh fails in the background
            assert source().wait_idle(5)
        assert len(idp.jwks_requests()) == 2  # one failed refresh: retries wait for the cooldown
        stale = [r for r in caplog.records if "serving the last good JWKS" in r.getMessage()]
        assert len(stale) == 1 and "HTTP 403 Forbidden" in stale[0].getMessage()
        clock.tick(31)
        assert api(idp.mint()).status_code == 200
        assert source().wait_idle(5)
        assert len(idp.jwks_requests()) == 3
        assert len([r for r in caplog.records if "serving the last good JWKS" in r.getMessage()]) == 2
        clock.tick(3600)  # past expiry + JWKS_STALE_IF_ERROR: fail closed
        assert api(idp.mint()).status_code == 401
        assert find_in_chain(last_exception(), urllib.error.HTTPError).code == 403


def test_stale_if_error_zero_fails_closed_at_expiry(api, idp):
    with patches(JWKS_CACHE_LIFESPAN=60, JWKS_STALE_IF_ERROR=0), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        idp.mode = Mode.FORBIDDEN
        clock.tick(61)
        assert api(idp.mint()).status_code == 401


def test_a_hanging_idp_never_blocks_tokens_with_a_known_kid(api, idp):
    idp.hang_seconds = 1.0
    with patches(JWKS_CACHE_LIFESPAN=60, JWKS_TIMEOUT=2), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        idp.mode = Mode.HANG
        clock.tick(61)
        assert api(idp.mint()).status_code == 200  # served stale; the refresh runs in the background
        for _ in range(200):  # bounded wait until the IdP holds the refresh request
            if len(idp.jwks_requests()) == 2:
                break
            threading.Event().wait(0.01)
        assert len(idp.jwks_requests()) == 2
        assert source()._refresh_lock.locked()  # the refresh is in flight (hanging) ...
        for _ in range(20):  # ... and tokens with a known kid do not wait for it
            assert api(idp.mint()).status_code == 200
        idp.mode = Mode.OK
        assert source().wait_idle(5)
    assert len(idp.jwks_requests()) == 2


def run_threads(n: int, target) -> list[object]:
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = target()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    return results


def test_single_flight_cold_cache_32_threads(idp, fresh_backend):
    from rest_framework_simplejwt.authentication import JWTAuthentication

    idp.mode = Mode.HANG
    idp.hang_seconds = 0.3  # keep the fetch in flight while the others arrive
    token = idp.mint().encode()
    with patches():
        results = run_threads(32, lambda: JWTAuthentication().get_validated_token(token))
    assert all(not isinstance(r, Exception) for r in results), results
    assert len(idp.jwks_requests()) == 1


def test_single_flight_expired_cache_32_threads(idp, fresh_backend):
    from rest_framework_simplejwt.authentication import JWTAuthentication

    token = idp.mint().encode()
    with patches(JWKS_CACHE_LIFESPAN=60), freeze_time() as clock:
        JWTAuthentication().get_validated_token(token)
        clock.tick(61)
        results = run_threads(32, lambda: JWTAuthentication().get_validated_token(token))
        assert source().wait_idle(5)
    assert all(not isinstance(r, Exception) for r in results), results
    assert len(idp.jwks_requests()) == 2


@pytest.mark.skipif(PYJWT.release < (2, 14), reason="PyJWT < 2.14 has no global client lock")
def test_pyjwt_global_lock_is_kept_out_of_the_hot_path(api, idp):
    from rest_framework_simplejwt import state

    assert api(idp.mint()).status_code == 200
    lock = state.token_backend.jwks_client._client_lock
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        assert api(idp.mint()).status_code == 200  # would wait for the lock on vanilla PyJWT 2.14+
    finally:
        release.set()
        t.join(5)


def test_refresh_ahead(api, idp):
    with patches(JWKS_CACHE_LIFESPAN=60, JWKS_REFRESH_AHEAD=20), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        clock.tick(30)
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 1
        clock.tick(11)  # 41 s: inside the last 20 s
        assert api(idp.mint()).status_code == 200
        assert source().wait_idle(5)
        assert len(idp.jwks_requests()) == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [("max-age=120", 120), ("public, max-age=5", 60), ("max-age=999999", 86400), ("no-store", 60), ("no-cache", 300)],
)
def test_cache_control_within_bounds(api, idp, header, expected):
    idp.cache_control = header
    with patches(), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        assert source().keyset.lifetime == expected
        clock.tick(expected - 1)
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 1
        clock.tick(2)
        assert api(idp.mint()).status_code == 200
        assert source().wait_idle(5)
        assert len(idp.jwks_requests()) == 2


def test_conditional_refresh_with_etag(api, idp):
    idp.etags = True
    with patches(JWKS_CACHE_LIFESPAN=60), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        clock.tick(61)
        assert api(idp.mint()).status_code == 200
        assert source().wait_idle(5)
        clock.tick(10)
        assert api(idp.mint()).status_code == 200
    first, second = idp.jwks_requests()
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"].startswith('"') and second.status == 304


def test_failure_status_503_with_retry_after(api, idp):
    idp.mode = Mode.FORBIDDEN
    with patches(JWKS_FAILURE_STATUS=503):
        response = api(idp.mint())
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        assert response.json()["code"] == "jwks_unavailable"
        assert find_in_chain(last_exception(), urllib.error.HTTPError).code == 403
        idp.mode = Mode.OK
        assert api(stranger(idp)).status_code in (401, 503)


def test_failure_status_503_is_only_for_the_key_set(api, idp):
    with patches(JWKS_FAILURE_STATUS=503):
        assert api(idp.mint(expires_in=-60)).status_code == 401
        assert api(idp.mint(key=generate_rsa_key())).status_code == 401


# -- shared cache (real Redis) --------------------------------------------------------------


def shared(redis_url: str, **options: object) -> override_settings:
    from django.conf import settings

    caches = {
        **settings.CACHES,
        "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
    }
    return override_settings(
        CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_SHARED_CACHE": "jwks", **options}
    )


@pytest.fixture
def second_backend():
    """Another TokenBackend with its own client: a second process as far as the key source knows."""
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.settings import api_settings

    def build():
        return TokenBackend("RS256", None, "", api_settings.AUDIENCE, api_settings.ISSUER, api_settings.JWK_URL, 0)

    return build


def test_shared_cache_one_fetch_for_several_clients(api, idp, redis, second_backend):
    with shared(redis), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        others = [second_backend() for _ in range(3)]
        for backend in others:
            assert backend.decode(idp.mint())["sub"] == idp.subject
        assert len(idp.jwks_requests()) == 1
        clock.tick(301)
        assert api(idp.mint()).status_code == 200
        assert source().wait_idle(5)
        for backend in others:
            backend.decode(idp.mint())
            state_of(backend.jwks_client).key_source().wait_idle(5)
        assert len(idp.jwks_requests()) == 2


def test_shared_cache_waits_for_the_lock_holder(api, idp, redis, second_backend):
    from django.core.cache import caches

    with shared(redis):
        first = second_backend()
        first.decode(idp.mint())  # publishes the set
        cache = caches["jwks"]
        raw, name = raw_redis()
        key = SharedCache.key(idp.jwks_url)
        entry = open_entry(raw.get(name(key)), idp.jwks_url)
        assert entry is not None
        cache.delete(key)
        # "another process" is fetching (its lock is sealed and lasts JWKS_TIMEOUT)
        raw.set(name(key + ":lock"), seal_mark("lock", idp.jwks_url), ex=5)

        def publish() -> None:
            raw.set(name(key), seal_entry({**entry, "fetched": entry["fetched"] + 1}, idp.jwks_url), ex=300)
            cache.delete(key + ":lock")

        timer = threading.Timer(0.3, publish)
        timer.start()
        assert api(idp.mint()).status_code == 200
        timer.join(5)
    assert len(idp.jwks_requests()) == 1  # the second client never fetched


def test_shared_cache_lock_holder_failure_is_reported(api, idp, redis):
    from django.core.cache import caches

    with shared(redis):
        cache = caches["jwks"]
        key = SharedCache.key(idp.jwks_url)
        raw, name = raw_redis()
        raw.set(name(key + ":lock"), seal_mark("lock", idp.jwks_url), ex=5)  # a holder's lock: JWKS_TIMEOUT (5 s)
        threading.Timer(0.2, lambda: cache.delete(key + ":lock")).start()
        assert api(idp.mint()).status_code == 401
        find_in_chain(last_exception(), JWKSSharedRefreshFailed)
    assert idp.jwks_requests() == []


def test_no_store_is_never_shared(api, idp, redis):
    from django.core.cache import caches

    idp.cache_control = "no-store"
    with shared(redis):
        assert api(idp.mint()).status_code == 200
        assert caches["jwks"].get(SharedCache.key(idp.jwks_url)) is None


def test_redis_down_falls_back_to_per_process_and_logs_once(api, idp, caplog, closed_redis):
    with shared(closed_redis), caplog.at_level(logging.WARNING, "simplejwt_patches"):
        for _ in range(3):
            assert api(idp.mint()).status_code == 200
        from tests.conftest import SESSION_IDP

        assert SESSION_IDP is idp
        with freeze_time() as clock:
            clock.tick(301)
            assert api(idp.mint()).status_code == 200
            assert source().wait_idle(5)
    down = [r for r in caplog.records if "shared JWKS cache" in r.getMessage() and "unavailable" in r.getMessage()]
    assert len(down) == 1
    assert len(idp.jwks_requests()) >= 1
    SharedCache._down.clear()


def test_warm_path_does_not_touch_the_shared_cache(api, idp, redis):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis)
    with shared(redis):
        assert api(idp.mint()).status_code == 200
        before = client.info("stats")["total_commands_processed"]
        for _ in range(20):
            assert api(idp.mint()).status_code == 200
        after = client.info("stats")["total_commands_processed"]
    assert after - before <= 1  # the INFO call itself


def test_register_tokens_are_sensitive():
    assert register_sensitive_token("a.b.c") == "a.b.c"


def test_a_process_started_during_an_outage_serves_the_fleets_last_good_set(api, idp, redis, second_backend):
    with shared(redis), freeze_time() as clock:
        second_backend().decode(idp.mint())  # another process fetched and shared the set
        idp.mode = Mode.FORBIDDEN
        clock.tick(301)  # expired, still within JWKS_STALE_IF_ERROR
        assert api(idp.mint()).status_code == 200  # this process never had a key set of its own
        assert len(idp.jwks_requests()) == 2  # one fetch, one failed attempt
        clock.tick(3600)
        assert api(idp.mint()).status_code == 401  # beyond the bound: fail closed
