"""The key set shared by a fleet through a Django cache (``JWKS_SHARED_CACHE``).

Entries are plain bytes through the backend's raw client (:mod:`.cache_store`: nothing between the
cache and the seal unpickles), sealed with an HMAC keyed from ``SECRET_KEY`` (or one of
``SECRET_KEY_FALLBACKS``) over the URL, the fetch time and a generation, and schema-checked before
use, so whoever can write to the cache can neither run code nor plant a signing key. A process never
adopts an entry older than the set it holds, nor one fetched longer ago than
``min(lifetime, JWKS_CACHE_LIFESPAN)`` (``lifetime + JWKS_STALE_IF_ERROR`` for the last good set
during an outage). ``SET NX PX`` is the cross-process lock (it lapses after ``JWKS_TIMEOUT``) and
the fleet's demand-refetch budget. A broken or refused cache means "work alone" (logged once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from .cache_store import RawStore, raw_store, refusal
from .conf import Options
from .diagnostics import describe, safe_url
from .failures import JWKSFailure
from .transport import errors

__all__ = ["JWKSSharedRefreshFailed", "SharedCache", "adoptable", "open_entry", "seal_entry"]

logger = logging.getLogger("simplejwt_patches.jwks")

#: A holder's lock lapses this long after its JWKS_TIMEOUT deadline (it publishes, then unlocks).
LOCK_MARGIN = 0.2
#: How often a waiter looks for the lock holder's set.
POLL = 0.05


K = TypeVar("K", bound="Publishable")


class Publishable(Protocol):
    """What the shared cache needs of a key set (``keysource.KeySet``)."""

    @property
    def storable(self) -> bool: ...

    @property
    def expires_wall(self) -> float: ...

    @property
    def fetched_wall(self) -> float: ...

    @property
    def generation(self) -> int: ...

    def entry(self) -> dict[str, Any]: ...

    def with_generation(self: K, generation: int) -> K: ...


class JWKSSharedRefreshFailed(RuntimeError):
    """Another process held the shared refresh lock and published no key set (its fetch failed)."""


class _Store:
    """The key set in a Django cache's raw client, with ``SET NX PX`` as a cross-process lock."""

    _state_lock = threading.Lock()
    _down: ClassVar[dict[str, bool]] = {}
    _rejected: ClassVar[set[str]] = set()

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @staticmethod
    def key(url: str) -> str:
        return "simplejwt_patches:jwks:" + hashlib.sha256(url.encode()).hexdigest()[:32]

    def _store(self) -> RawStore:
        from django.core.cache import caches

        cache = caches[self.alias]
        store = raw_store(cache)
        if store is None:
            backend = type(cache)
            raise RuntimeError(f"{backend.__module__}.{backend.__qualname__} is refused: {refusal(backend)}")
        return store

    def _failed(self, exc: BaseException) -> None:
        with self._state_lock:
            if self._down.get(self.alias):
                return
            self._down[self.alias] = True
        logger.warning(
            "shared JWKS cache %r unavailable (%s); falling back to per-process fetches until it recovers",
            self.alias,
            describe(exc),
        )

    def _ok(self) -> None:
        if self._down.get(self.alias):
            with self._state_lock:
                self._down[self.alias] = False
            logger.info("shared JWKS cache %r reachable again", self.alias)

    def _op(self, name: str, *args: Any) -> tuple[bool, Any]:
        try:
            result = getattr(self._store(), name)(*args)
        except Exception as exc:  # noqa: BLE001 - any cache failure means "work alone"
            self._failed(exc)
            return False, None
        self._ok()
        return True, result

    def get(self, url: str) -> dict[str, Any] | None:
        """The entry other processes published, if it is authentic and well-formed; else ``None``.

        Read as plain bytes (never unpickled); whoever can write to the cache could otherwise run
        code or plant a signing key for the whole fleet: entries carry an HMAC keyed from
        ``SECRET_KEY`` (or a fallback key) and are schema-checked before use.
        """
        ok, value = self._op("get", self.key(url))
        if not ok or value is None:
            return None
        entry = open_entry(value, url)
        if entry is None:
            self._reject(url, "not authenticated or not well-formed")
        return entry

    def _reject(self, url: str, why: str) -> None:
        with self._state_lock:
            if url in self._rejected:
                return
            self._rejected.add(url)
        logger.warning("shared JWKS cache %r: ignoring the entry for %s (%s)", self.alias, safe_url(url), why)

    def put(self, url: str, keyset: Publishable, ttl: float) -> None:
        """Publish ``keyset``, sealed with the current ``SECRET_KEY`` (entries of a fallback key are resealed)."""
        if not math.isfinite(ttl) or ttl <= 0:
            return
        try:
            sealed = seal_entry(keyset.entry(), url)
        except (TypeError, ValueError):  # e.g. NaN inside the IdP's JSON: not shareable
            return
        self._op("set", self.key(url), sealed, min(ttl, 10.0**7))

    def _lapses(self, url: str, options: Options) -> float | None:
        """When (monotonic) the refresh lock lapses, ``None`` when unknown (an in-process cache) or gone.

        A lock no holder could have set (no expiry, or longer than ``JWKS_TIMEOUT`` allows: planted, or
        left by an older release) is broken now."""
        asked = time.monotonic()  # before the round trip: the estimate never lies after the real lapse
        ok, left = self._op("ttl", self.key(url) + ":lock")
        if not ok or left is None:
            return None
        if left > options.timeout + LOCK_MARGIN:
            self.unlock(url)
            return time.monotonic()
        return asked + float(left)

    def stale(self, url: str, wall: float, options: Options) -> dict[str, Any] | None:
        """The fleet's last good set for a process that has none and whose fetch failed: the published
        entry while fetched at most ``min(lifetime, JWKS_CACHE_LIFESPAN) + JWKS_STALE_IF_ERROR`` ago."""
        entry = self.get(url)
        if entry is None:
            return None
        bound = min(entry["lifetime"], options.cache_lifespan) + options.stale_if_error
        return entry if wall - entry["fetched"] < bound else None

    def take_demand_budget(self, url: str, cooldown: float) -> bool | None:
        """The fleet's demand-refetch budget: ``True`` when this process may refetch now, ``False`` when
        another one did within ``cooldown``, ``None`` when the cache is down (the local budget applies)."""
        ok, added = self._op("add", self.key(url) + ":demand", b"1", max(1.0, cooldown))
        return bool(added) if ok else None

    def lock(self, url: str, ttl: float) -> bool | None:
        """``True`` when acquired, ``False`` when another process holds it, ``None`` when the cache is down."""
        ok, added = self._op("add", self.key(url) + ":lock", b"1", ttl)
        return bool(added) if ok else None

    def unlock(self, url: str) -> None:
        self._op("delete", self.key(url) + ":lock")

    def locked(self, url: str) -> bool:
        """Whether the refresh lock is held (an existence check: its value is never read)."""
        ok, held = self._op("exists", self.key(url) + ":lock")
        return bool(ok and held)


class SharedCache(_Store):
    """The fleet's refresh: one fetch per lifespan for all processes sharing the cache."""

    def refresh(
        self,
        url: str,
        *,
        fetch: Callable[..., K],
        adopt: Callable[[dict[str, Any]], K],
        seen: Publishable | None,
        wall: float,
        options: Options,
    ) -> K:
        """One fetch for the fleet: adopt a newer published set, or take the lock, fetch and publish,
        or wait for the lock holder's set; lock wait and fetch share one ``JWKS_TIMEOUT`` deadline.

        ``fetch(timeout=None)`` fetches (within ``timeout`` seconds when given); a broken cache means
        fetch alone. A lock that lapses (its holder died mid-fetch) or that no holder could have set
        (no expiry, or longer than ``JWKS_TIMEOUT``) is broken.
        """
        deadline = time.monotonic() + options.timeout
        entry = self.get(url)
        if entry is not None and adoptable(entry, seen, wall, options):
            return adopt(entry)
        generation = max(entry["generation"] if entry else 0, seen.generation if seen else 0) + 1
        locked = self.lock(url, options.timeout + LOCK_MARGIN)
        if locked is None:  # cache down: work alone
            return fetch().with_generation(generation)
        if locked:
            return self._fetch_and_publish(url, fetch, generation, wall, options)
        return self._wait(url, fetch, adopt, seen, generation, wall, options, deadline)

    def _fetch_and_publish(
        self, url: str, fetch: Callable[..., K], generation: int, wall: float, options: Options, **timeout: float
    ) -> K:
        """Fetch (caller holds the lock) and publish, then unlock."""
        try:
            keyset = fetch(**timeout).with_generation(generation)
            if keyset.storable:
                self.put(url, keyset, (keyset.expires_wall - wall) + options.stale_if_error)
            return keyset
        finally:
            self.unlock(url)

    def _wait(
        self,
        url: str,
        fetch: Callable[..., K],
        adopt: Callable[[dict[str, Any]], K],
        seen: Publishable | None,
        generation: int,
        wall: float,
        options: Options,
        deadline: float,
    ) -> K:
        """Another process holds the lock: adopt what it publishes, break its lock when it lapsed or was
        never a holder's, and never wait past ``deadline`` (bounded loop, one poll per ``POLL``)."""
        lapses = self._lapses(url, options)
        for _ in range(int(options.timeout / POLL) + 3):
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            if lapses is not None and now >= lapses:  # the holder died mid-fetch (or it was no holder's lock)
                if left < POLL:
                    break
                taken = self.lock(url, left + LOCK_MARGIN)
                if taken is None:  # the cache went down: work alone
                    return fetch(timeout=left).with_generation(generation)
                if taken:
                    return self._fetch_and_publish(url, fetch, generation, wall, options, timeout=left)
                lapses = self._lapses(url, options)  # another waiter took over: wait for it
                continue
            time.sleep(min(POLL, left, POLL if lapses is None else max(0.001, lapses - now)))
            entry = self.get(url)
            if entry is not None and adoptable(entry, seen, wall, options):
                return adopt(entry)
            if not self.locked(url) and (lapses is None or time.monotonic() < lapses - 2 * POLL):
                entry = self.get(url)  # released, not lapsed: the holder published or failed
                if entry is not None and adoptable(entry, seen, wall, options):
                    return adopt(entry)
                failure = JWKSFailure("peer_failed", f"no fresh key set was published in {self.alias!r}")
                failure.__cause__ = JWKSSharedRefreshFailed(
                    f"no fresh key set was published for {safe_url(url)} in {self.alias!r}"
                )
                raise _connection_error("the JWKS refresh by another process failed") from failure
        raise _connection_error(
            f"another process's JWKS refresh did not finish within JWKS_TIMEOUT={options.timeout:g} s"
        ) from JWKSFailure("timeout", f"waited JWKS_TIMEOUT for the refresh lock in {self.alias!r}")


def adoptable(entry: dict[str, Any], seen: Publishable | None, wall: float, options: Options) -> bool:
    """Whether a process holding ``seen`` may adopt ``entry``: newer than ``seen`` (by fetch time and
    generation), unexpired, and fetched at most ``min(lifetime, JWKS_CACHE_LIFESPAN)`` ago -- so an old
    sealed entry written back into the cache is refused past that age."""
    if seen is not None and not (entry["fetched"] > seen.fetched_wall and entry["generation"] >= seen.generation):
        return False
    return bool(entry["expires"] > wall and wall - entry["fetched"] < min(entry["lifetime"], options.cache_lifespan))


_PREFIX = b"sjp-jwks-3\n"
_SALT = "simplejwt_patches.jwks.shared-cache"


def _secrets() -> list[Any]:
    """``SECRET_KEY`` first, then ``SECRET_KEY_FALLBACKS`` (Django 4.1+): Django's own key rotation."""
    from django.conf import settings

    return [settings.SECRET_KEY, *(getattr(settings, "SECRET_KEY_FALLBACKS", None) or [])]


def _mac(body: str, url: str, secret: Any) -> str:
    from django.utils.crypto import salted_hmac

    return salted_hmac(_SALT, f"{url}\n{body}", secret=secret, algorithm="sha256").hexdigest()


def seal_entry(entry: dict[str, Any], url: str) -> bytes:
    """The bytes stored for ``entry``: a prefix, the HMAC (current ``SECRET_KEY``) and the JSON body,
    which names ``url`` (so the MAC covers the URL, the fetch time and the generation)."""
    body = json.dumps({**entry, "url": url}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return _PREFIX + _mac(body, url, _secrets()[0]).encode() + b"\n" + body.encode()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _authentic(value: Any, url: str) -> str | None:
    """The body of a sealed value whose MAC verifies with the current key or a fallback, else ``None``."""
    import hmac

    if not isinstance(value, bytes) or not value.startswith(_PREFIX) or len(value) > 4 * 1024 * 1024 + 100:
        return None
    mac, _, raw = value[len(_PREFIX) :].partition(b"\n")
    if len(mac) != 64:
        return None
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for secret in _secrets():
        if hmac.compare_digest(mac, _mac(body, url, secret).encode()):
            return body
    return None


def open_entry(value: Any, url: str) -> dict[str, Any] | None:
    """The verified entry, or ``None`` (not sealed bytes, forged, from another URL, or wrong field types)."""
    body = _authentic(value, url)
    if body is None:
        return None
    try:
        entry = json.loads(body)
    except (ValueError, RecursionError):
        return None
    ok = (
        isinstance(entry, dict)
        and entry.get("url") == url
        and isinstance(entry.get("payload"), dict)
        and all(_finite(entry.get(k)) for k in ("fetched", "expires", "lifetime"))
        and entry["lifetime"] > 0
        and type(entry.get("generation")) is int
        and 0 <= entry["generation"] < 2**53
        and all(entry.get(k) is None or isinstance(entry.get(k), str) for k in ("etag", "last_modified"))
    )
    return entry if ok else None


def _connection_error(message: str) -> BaseException:
    return errors()[0](message)
