"""W051: a Redis ``JWKS_SHARED_CACHE`` whose client does not time out (both socket timeouts, below
``JWKS_TIMEOUT``). The round trips to the shared cache are outside ``JWKS_TIMEOUT``; redis-py's defaults
wait forever for a reply, so a Redis that stops answering held every request that reached it, and
nothing said so at startup. Nothing is connected by the check.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from simplejwt_patches.cache_checks import check_shared_cache_timeouts
from tests.docs import page
from tests.strategies import hostile_json

REDIS = "django.core.cache.backends.redis.RedisCache"
URL = "redis://127.0.0.1:6379/0"
needs_redis_cache = pytest.mark.skipif(django.VERSION < (4, 0), reason="Django < 4.0 has no built-in RedisCache")


class DjangoRedisShaped:
    """django-redis' RedisCache as the package recognises it (a ``client`` property), without installing it."""

    @property
    def client(self) -> Any:  # pragma: no cover - never built by the check
        raise AssertionError("the check builds no cache")


def messages(conf: dict[str, Any], **patches: Any) -> list[Any]:
    caches = {**settings.CACHES, "shared": conf}
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "shared", **patches}):
        return check_shared_cache_timeouts()


@needs_redis_cache
def test_a_redis_cache_without_timeouts_is_w051_naming_the_alias_and_both():
    (warning,) = messages({"BACKEND": REDIS, "LOCATION": URL})
    assert warning.id == "simplejwt_patches.W051" and "'shared'" in warning.msg
    assert "no socket_timeout (redis-py then waits for a reply forever)" in warning.msg
    assert "no socket_connect_timeout" in warning.msg
    assert '"socket_timeout": 0.3, "socket_connect_timeout": 0.3' in warning.hint


@needs_redis_cache
@pytest.mark.parametrize(
    "conf",
    [
        {"OPTIONS": {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}},
        {"LOCATION": URL + "?socket_timeout=0.3&socket_connect_timeout=0.5"},
        {"LOCATION": [URL + "?socket_timeout=1", URL + "?socket_timeout=1"], "OPTIONS": {}},
        {"LOCATION": f"{URL}?socket_timeout=1;{URL}?socket_timeout=0.5,{URL}?socket_timeout=0.2"},
        {"OPTIONS": {"socket_timeout": 0.3}},  # redis-py connects within socket_timeout when no connect timeout
    ],
    ids=["options", "url-query", "url-list", "url-string-split", "socket-timeout-alone"],
)
def test_a_redis_cache_with_both_timeouts_below_jwks_timeout_passes(conf):
    assert messages({"BACKEND": REDIS, "LOCATION": URL, **conf}) == []


@needs_redis_cache
def test_a_timeout_not_below_jwks_timeout_is_w051():
    conf = {"BACKEND": REDIS, "LOCATION": URL, "OPTIONS": {"socket_timeout": 10, "socket_connect_timeout": 0.3}}
    (warning,) = messages(conf, JWKS_TIMEOUT=5)
    assert "socket_timeout = 10 s, not below JWKS_TIMEOUT = 5 s" in warning.msg
    assert "socket_connect_timeout" not in warning.msg.split("has ", 1)[1].split(".")[0]
    assert messages(conf, JWKS_TIMEOUT=11) == []


@needs_redis_cache
@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"LOCATION": [URL + "?socket_timeout=0.3", URL]}, "no socket_timeout on server 2 of 2 in LOCATION"),
        ({"LOCATION": f"{URL},{URL}?socket_timeout=0.3"}, "no socket_timeout on server 1 of 2 in LOCATION"),
        ({"LOCATION": URL + "?socket_timeout=30", "OPTIONS": {"socket_timeout": 0.3}}, "socket_timeout = 30 s"),
        ({"OPTIONS": {"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.3}}, "OPTIONS SOCKET_CONNECT_TIMEOUT"),
    ],
    ids=["a-read-replica-without", "the-writer-without", "the-query-wins", "django-redis-spelling"],
)
def test_what_redis_py_really_gets_decides(conf, expected):
    """Fourth review: every server of LOCATION counts, the URL's query wins over OPTIONS, and django-redis'
    upper-case spelling in Django's RedisCache is refused by redis-py (the cache fails)."""
    (warning,) = messages({"BACKEND": REDIS, "LOCATION": URL, **conf})
    assert expected in warning.msg


@needs_redis_cache
@pytest.mark.parametrize(
    "location", ["redis://[::1:6379/0", "redis://user:s3cr3t@127.0.0.1:6379/0", "redis://\uff03x/0", 7, None]
)
def test_a_broken_or_secret_location_is_never_raised_or_echoed(location):
    (warning,) = messages({"BACKEND": REDIS, "LOCATION": location, "OPTIONS": {"socket_timeout": 10**400}})
    assert warning.id == "simplejwt_patches.W051" and "s3cr3t" not in warning.msg + warning.hint


@needs_redis_cache
def test_a_hint_that_passes_its_own_check():
    (warning,) = messages({"BACKEND": REDIS, "LOCATION": URL}, JWKS_TIMEOUT=0.25)
    options = json.loads("{" + warning.hint.split("['OPTIONS'] = {", 1)[1].split("}", 1)[0] + "}")
    assert messages({"BACKEND": REDIS, "LOCATION": URL, "OPTIONS": options}, JWKS_TIMEOUT=0.25) == []


def test_django_redis_spelling_and_pool_kwargs():
    backend = f"{__name__}.DjangoRedisShaped"
    (warning,) = messages({"BACKEND": backend, "LOCATION": URL})
    assert '"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.3' in warning.hint
    upper = {"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.3}
    assert messages({"BACKEND": backend, "LOCATION": URL, "OPTIONS": upper}) == []
    pool = {"CONNECTION_POOL_KWARGS": {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}}
    assert messages({"BACKEND": backend, "LOCATION": URL, "OPTIONS": pool}) == []
    lower = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}  # Django's spelling: django-redis ignores it
    assert [m.id for m in messages({"BACKEND": backend, "LOCATION": URL, "OPTIONS": lower})] == [
        "simplejwt_patches.W051"
    ]
    winner = {"SOCKET_TIMEOUT": 0.3, "CONNECTION_POOL_KWARGS": {"socket_timeout": 30}}  # the pool kwargs win
    (warning,) = messages({"BACKEND": backend, "LOCATION": URL, "OPTIONS": winner})
    assert "socket_timeout = 30 s" in warning.msg


def test_no_w051_without_a_redis_shared_cache():
    assert messages({"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}) == []
    with override_settings(SIMPLE_JWT_PATCHES={}):
        assert check_shared_cache_timeouts() == []
    assert messages({"BACKEND": "no.such.Backend"}) == []  # E050's to report


@needs_redis_cache
@hsettings(max_examples=60, deadline=None)
@given(value=st.one_of(hostile_json, st.sampled_from([math.nan, math.inf, -1, 0, True, "1", "0.3", 1, 0.3])))
def test_any_timeout_value_gives_a_warning_or_nothing_never_an_exception(value):
    """A value that is not a positive finite number of seconds counts as missing."""
    conf = {"BACKEND": REDIS, "LOCATION": URL, "OPTIONS": {"socket_timeout": value, "socket_connect_timeout": 0.3}}
    found = messages(conf)
    usable = not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < 5
    assert [m.id for m in found] == ([] if usable else ["simplejwt_patches.W051"])


@needs_redis_cache
def test_manage_py_check_reports_w051():
    caches = {**settings.CACHES, "shared": {"BACKEND": REDIS, "LOCATION": URL}}
    out, err = io.StringIO(), io.StringIO()
    with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "shared"}):
        call_command("check", stdout=out, stderr=err)
    assert "simplejwt_patches.W051" in out.getvalue() + err.getvalue()


@needs_redis_cache
def test_the_documented_options_pass_the_check():
    """docs/resilience.md's advice, applied verbatim (the options tests/test_redis_faults.py pauses Redis under)."""
    (options,) = re.findall(r'`OPTIONS: (\{"socket_timeout"[^`]*\})` for Redis', page("resilience.md"))
    assert messages({"BACKEND": REDIS, "LOCATION": URL, "OPTIONS": json.loads(options)}) == []


def test_django_redis_sentinels_without_a_timeout_and_its_own_location_split():
    """Fifth review: django-redis hands SENTINEL_KWARGS to the sentinels instead of the socket options, so
    ``{"password": ...}`` there left them without a timeout; and it splits LOCATION on "," only."""
    backend, upper = f"{__name__}.DjangoRedisShaped", {"SOCKET_TIMEOUT": 0.3}
    sentinels = {**upper, "SENTINELS": [("127.0.0.1", 26379)], "SENTINEL_KWARGS": {"password": "s3cr3t"}}
    (warning,) = messages({"BACKEND": backend, "LOCATION": "redis://mymaster/0", "OPTIONS": sentinels})
    assert "SENTINEL_KWARGS without socket_timeout" in warning.msg and "s3cr3t" not in warning.msg + warning.hint
    sentinels["SENTINEL_KWARGS"] = {"password": "s3cr3t", "socket_timeout": 0.3}
    assert messages({"BACKEND": backend, "LOCATION": "redis://mymaster/0", "OPTIONS": sentinels}) == []
    with_semicolon = "redis://:pa;ss@127.0.0.1:6379/0"  # a password with ";" is one server to django-redis
    assert messages({"BACKEND": backend, "LOCATION": with_semicolon, "OPTIONS": upper}) == []
