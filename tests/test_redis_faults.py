"""Fault injection on a real redis-server used as JWKS_SHARED_CACHE (issue 8).

The server is this test's own (its own port), so killing it hurts no other test. Valid tokens must
keep getting 200 while it is killed (SIGKILL), paused (SIGSTOP/SIGCONT), and while the package's
keys hold garbage or well-formed entries nobody authenticated (a planted signing key is refused).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches.shared_cache import open_entry, seal_entry
from tests.helpers import raw_redis
from tests.idp import generate_rsa_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """This test's own redis-server (killing it hurts no other test)."""
    import django

    from tests.conftest import spawn_redis

    if django.VERSION < (4, 0):
        pytest.skip("Django < 4.0 has no built-in RedisCache")
    with spawn_redis() as server:
        yield server


def shared(url: str) -> override_settings:
    caches = {
        **settings.CACHES,
        "jwks": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            # A paused server must not hold requests: every cache operation is bounded.
            "OPTIONS": {"socket_timeout": 0.3, "socket_connect_timeout": 0.3},
        },
    }
    return override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "jwks", "JWKS_TIMEOUT": 2})


def timed(api, token: str) -> tuple[int, float]:
    started = time.monotonic()
    status = api(token).status_code
    return status, time.monotonic() - started


@pytest.mark.fixer("pyjwt.client.key-source")
def test_valid_tokens_keep_200_through_redis_faults(api, idp, fresh_backend, own_redis):
    from django.core.cache import caches

    from simplejwt_patches.shared_cache import SharedCache

    proc, url = own_redis
    token = idp.mint()
    key = SharedCache.key(idp.jwks_url)
    with shared(url):
        fresh_backend()
        assert api(token).status_code == 200  # fetched and published
        cache = caches["jwks"]
        raw, name = raw_redis()
        assert open_entry(raw.get(name(key)), idp.jwks_url) is not None  # plain bytes, sealed

        # Garbage and well-formed but unauthenticated entries in the package's keys.
        attacker = generate_rsa_key()
        planted_kid = "planted-kid"
        forged = idp.jwks()
        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(attacker.public_key()))
        forged["keys"].append({**jwk, "kid": planted_kid, "use": "sig", "alg": "RS256"})
        now = time.time()
        entry = {"payload": forged, "fetched": now, "expires": now + 300, "lifetime": 300.0, "etag": None,
                 "last_modified": None}  # fmt: skip
        for value in (
            "garbage",
            b"\x00\xff",
            {"v": 1, **entry},  # the old, unauthenticated format
            {"v": 2, "body": json.dumps(entry), "mac": "0" * 64},  # a forged MAC
            {"v": 2, "body": json.dumps({**entry, "expires": "x"}), "mac": "0" * 64},
            {"v": 2, "body": "[" * 10_000, "mac": 5},
        ):
            cache.set(key, value, timeout=300)  # pickled by Django's RedisCache
            fresh_backend()  # a process that starts now reads the shared cache first
            assert api(token).status_code == 200
            assert api(idp.mint({"jti": None}, key=attacker, kid=planted_kid)).status_code == 401
        sealed = seal_entry({**entry, "generation": 1}, idp.jwks_url)
        with override_settings(SECRET_KEY="not-this-deployments-key"):
            other_key = seal_entry({**entry, "generation": 1}, idp.jwks_url)
        for value in (  # plain bytes in the new format: forged, for another URL, another key, truncated
            sealed[:11] + b"0" * 64 + sealed[75:],
            seal_entry({**entry, "generation": 1}, idp.jwks_url + "?other"),
            other_key,
            sealed[:-1],
            sealed.replace(b'"generation":1', b'"generation":2'),
            b"sjp-jwks-3\n" + "é".encode() * 32 + b"\n{}",
        ):
            raw.set(name(key), value, ex=300)
            fresh_backend()
            assert api(token).status_code == 200
            assert api(idp.mint({"jti": None}, key=attacker, kid=planted_kid)).status_code == 401

        # Paused: every cache operation times out; requests still get 200, in bounded time.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            fresh_backend()
            status, took = timed(api, token)
            assert status == 200
            assert took < 3.0, took
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        fresh_backend()
        assert api(token).status_code == 200

        # Killed: the package works alone.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        fresh_backend()
        status, took = timed(api, token)
        assert status == 200 and took < 3.0


def test_a_non_ascii_mac_is_just_a_forged_entry():
    """Found by the fuzz run: ``hmac.compare_digest`` raises TypeError on non-ASCII text."""
    from simplejwt_patches.shared_cache import open_entry

    assert open_entry({"v": 2, "body": "{}", "mac": "é" * 64}, "https://sso.example.com/certs") is None
