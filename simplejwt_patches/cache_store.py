"""Plain bytes in a Django cache, never unpickled: the store under ``JWKS_SHARED_CACHE``.

Django's cache backends unpickle what they read *before* the package can check the entry's seal,
so whoever can write the cache could run code in every worker. The shared key set therefore goes
through a backend's raw client, where bytes stay bytes:

* Django's ``RedisCache`` (4.0+): ``cache._cache.get_client(key, write=...)``, keys from
  ``cache.make_and_validate_key``; django-redis (duck-typed): ``cache.client.get_client(write=...)``.
  Both give a ``redis.Redis``; GETRANGE, SET NX PX, EXISTS, PTTL and DEL never deserialise, nor does
  the compare-and-delete script (:data:`_DELETE_IF`) that releases or breaks a lock.
* ``LocMemCache`` and ``DummyCache``: in-process only. LocMem pickles, but only this process can
  write it, so nothing outside can plant a value.
* Everything else is refused (system check ``simplejwt_patches.E050``; at run time the package works
  alone): the database and file caches unpickle what is in the table or on disk, and the memcached
  clients (pymemcache's ``pickle_serde``, pylibmc) unpickle any value whose *flags* say pickle -- flags
  are written with the value, by whoever writes it.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

__all__ = ["MAX_VALUE", "RawStore", "backend_kind", "raw_store", "refusal"]

#: The largest value ever read (a sealed entry's body is at most 4 MiB); longer ones are not entries.
MAX_VALUE = 4 * 1024 * 1024 + 256

_REDIS = ("django.core.cache.backends.redis.RedisCache",)
_IN_PROCESS = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")
_WHY = {
    "django.core.cache.backends.db.DatabaseCache": "it unpickles whatever is in its table",
    "django.core.cache.backends.filebased.FileBasedCache": "it unpickles whatever is in its files",
    "django.core.cache.backends.memcached.PyMemcacheCache": "pymemcache unpickles any value whose memcached "
    "flags say pickle, and whoever writes memcached sets those flags",
    "django.core.cache.backends.memcached.PyLibMCCache": "pylibmc unpickles any value whose memcached flags say "
    "pickle, and whoever writes memcached sets those flags",
    "django.core.cache.backends.memcached.MemcachedCache": "python-memcached unpickles any value whose flags say "
    "pickle, and whoever writes memcached sets those flags",
}


def _names(backend: type) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in backend.__mro__]


def backend_kind(backend: type) -> str | None:
    """``"redis"``, ``"django-redis"`` or ``"in-process"`` for a backend class read raw; else ``None``."""
    names = _names(backend)
    if any(n in _REDIS for n in names):
        return "redis"
    if isinstance(getattr(backend, "client", None), property):  # django-redis, duck-typed (need not be installed)
        return "django-redis"
    if any(n in _IN_PROCESS for n in names):
        return "in-process"
    return None


class RawStore(Protocol):
    """What the shared cache needs: bytes in, bytes out, and ``add`` as a lock."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl: float) -> None: ...

    def add(self, key: str, value: bytes, ttl: float) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_if(self, key: str, value: bytes) -> bool:
        """Delete ``key`` only while it holds ``value`` (as :meth:`get` read it) or is not a string."""

    def replace_if(self, key: str, value: bytes, new: bytes, ttl: float) -> bool:
        """Set ``key`` to ``new`` (expiring in ``ttl``) only while it holds ``value``: ``True`` when it did."""

    def exists(self, key: str) -> bool: ...

    def ttl(self, key: str) -> float | None:
        """Seconds the key has left; ``math.inf`` without expiry, ``0.0`` when gone, ``None`` when unknown."""


#: Compare-and-delete in one step, so releasing or breaking a lock never deletes one taken meanwhile.
_DELETE_IF = """
local v = redis.pcall('getrange', KEYS[1], 0, tonumber(ARGV[2]))
if (type(v) == 'table' and v['err']) or v == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
#: Compare-and-set in one step: a lock handed over is taken by one process only.
_REPLACE_IF = """
local v = redis.pcall('getrange', KEYS[1], 0, tonumber(ARGV[3]))
if v == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[4])) return 1 end
return 0
"""


class _Redis:
    """A redis-py client behind Django's RedisCache or django-redis: values are bytes, unserialised.

    Every operation goes to the server that takes the writes (``LOCATION``'s first), reads too: the lock,
    the budget and the entry are read to decide what to write, and a read replica that lags would show a
    lock that is not there yet, or miss the set just published (and each process would fetch again).
    """

    def __init__(self, cache: Any, client: Any) -> None:
        self._cache = cache
        self._client = client  # client(key, write) -> redis.Redis

    def _key(self, key: str) -> str:
        make = getattr(self._cache, "make_and_validate_key", None) or self._cache.make_key
        return str(make(key))

    def get(self, key: str) -> bytes | None:
        name = self._key(key)
        try:  # bounded: a huge planted value is never read whole
            value = self._client(name, True).getrange(name, 0, MAX_VALUE)
        except Exception as exc:
            if any(c.__name__ == "ResponseError" for c in type(exc).__mro__):  # WRONGTYPE: a list planted there
                return b"\x00not a string"
            raise
        return bytes(value) if value else None

    def set(self, key: str, value: bytes, ttl: float) -> None:
        name = self._key(key)
        self._client(name, True).set(name, value, px=_ms(ttl))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        name = self._key(key)
        return bool(self._client(name, True).set(name, value, nx=True, px=_ms(ttl)))

    def delete(self, key: str) -> None:
        name = self._key(key)
        self._client(name, True).delete(name)

    def delete_if(self, key: str, value: bytes) -> bool:
        name = self._key(key)
        client = self._client(name, True)
        try:
            return bool(client.eval(_DELETE_IF, 1, name, value, MAX_VALUE))
        except Exception as exc:
            if not any(c.__name__ == "ResponseError" for c in type(exc).__mro__):
                raise
        # scripting refused (ACL, a managed Redis): compare, then delete (a lock taken in between is lost)
        if self.get(key) != value:
            return False
        client.delete(name)
        return True

    def replace_if(self, key: str, value: bytes, new: bytes, ttl: float) -> bool:
        name = self._key(key)
        client = self._client(name, True)
        try:
            return bool(client.eval(_REPLACE_IF, 1, name, value, new, MAX_VALUE, _ms(ttl)))
        except Exception as exc:
            if not any(c.__name__ == "ResponseError" for c in type(exc).__mro__):
                raise
        # scripting refused: compare, then set (as delete_if: two processes may both take it, both fetch)
        if self.get(key) != value:
            return False
        client.set(name, new, px=_ms(ttl))
        return True

    def exists(self, key: str) -> bool:
        name = self._key(key)
        return bool(self._client(name, True).exists(name))

    def ttl(self, key: str) -> float | None:
        name = self._key(key)
        left = int(self._client(name, True).pttl(name))
        if left == -2:  # gone since it was read (never judged by its seal's bound then)
            return 0.0
        return math.inf if left < 0 else left / 1000


class _InProcess:
    """LocMemCache/DummyCache: only this process writes them; values that are not bytes are ignored."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    def get(self, key: str) -> bytes | None:
        value = self._cache.get(key)
        return value if isinstance(value, bytes) else (None if value is None else b"\x00not bytes")

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._cache.set(key, value, timeout=_seconds(ttl))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(self._cache.add(key, value, timeout=_seconds(ttl)))

    def delete(self, key: str) -> None:
        self._cache.delete(key)

    def delete_if(self, key: str, value: bytes) -> bool:
        if self.get(key) != value:
            return False
        self._cache.delete(key)
        return True

    def replace_if(self, key: str, value: bytes, new: bytes, ttl: float) -> bool:
        if self.get(key) != value:
            return False
        self.set(key, new, ttl)
        return True

    def exists(self, key: str) -> bool:
        return bool(self._cache.has_key(key))

    def ttl(self, key: str) -> float | None:
        return None


def _ms(ttl: float) -> int:
    return max(1, min(math.ceil(ttl * 1000), 10**10))


def _seconds(ttl: float) -> int:
    return max(1, min(math.ceil(ttl), 10**7))


def raw_store(cache: Any) -> RawStore | None:
    """The raw store over ``cache``, or ``None`` when its backend can only unpickle (see :func:`refusal`)."""
    kind = backend_kind(type(cache))
    if kind == "redis":
        return _Redis(cache, lambda key, write: cache._cache.get_client(key, write=write))
    if kind == "django-redis":
        client = cache.client
        if callable(getattr(client, "get_client", None)):
            return _Redis(cache, lambda key, write: client.get_client(write=write))
        return None
    if kind == "in-process":
        return _InProcess(cache)
    return None


def refusal(backend: type) -> str | None:
    """Why a cache backend class cannot hold the shared key set (it unpickles what it reads), or ``None``."""
    if backend_kind(backend) is not None:
        return None
    for name in _names(backend):
        if name in _WHY:
            return _WHY[name]
    return (
        "it offers no way to read plain bytes, and Django's cache API unpickles values (use Django's RedisCache or "
        "django-redis)"
    )
