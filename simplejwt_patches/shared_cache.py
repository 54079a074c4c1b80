"""The key set shared by a fleet through a Django cache (``JWKS_SHARED_CACHE``).

Entries are sealed with an HMAC keyed from ``SECRET_KEY`` and schema-checked before use, so
whoever can write to the cache cannot plant a signing key; ``cache.add`` is the cross-process
lock and the fleet's demand-refetch budget. A broken cache means "work alone" (logged once).
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

from .conf import Options
from .diagnostics import describe, safe_url
from .failures import JWKSFailure
from .transport import errors

__all__ = ["JWKSSharedRefreshFailed", "SharedCache", "open_entry", "seal_entry"]

logger = logging.getLogger("simplejwt_patches.jwks")


class Publishable(Protocol):
    """What the shared cache needs of a key set (``keysource.KeySet``)."""

    @property
    def storable(self) -> bool: ...

    @property
    def expires_wall(self) -> float: ...

    def entry(self) -> dict[str, Any]: ...


K = TypeVar("K", bound=Publishable)


class JWKSSharedRefreshFailed(RuntimeError):
    """Another process held the shared refresh lock and published no key set (its fetch failed)."""


class SharedCache:
    """The key set in a Django cache, with ``cache.add`` as a cross-process lock."""

    _state_lock = threading.Lock()
    _down: ClassVar[dict[str, bool]] = {}

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @staticmethod
    def key(url: str) -> str:
        return "simplejwt_patches:jwks:" + hashlib.sha256(url.encode()).hexdigest()[:32]

    def _cache(self) -> Any:
        from django.core.cache import caches

        return caches[self.alias]

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

    def _op(self, name: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        try:
            result = getattr(self._cache(), name)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any cache failure means "work alone"
            self._failed(exc)
            return False, None
        self._ok()
        return True, result

    _rejected: ClassVar[set[str]] = set()

    def get(self, url: str) -> dict[str, Any] | None:
        """The entry other processes published, if it is authentic and well-formed; else ``None``.

        Whoever can write to the cache could otherwise plant a signing key for the whole fleet:
        entries carry an HMAC keyed from ``SECRET_KEY`` and are schema-checked before use.
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
        if not math.isfinite(ttl):
            return
        try:
            sealed = seal_entry(keyset.entry(), url)
        except (TypeError, ValueError):  # e.g. NaN inside the IdP's JSON: not shareable
            return
        self._op("set", self.key(url), sealed, timeout=max(1, min(math.ceil(ttl), 10**7)))

    def refresh(
        self,
        url: str,
        *,
        fetch: Callable[[], K],
        adopt: Callable[[dict[str, Any]], K],
        since: float | None,
        wall: float,
        options: Options,
    ) -> K:
        """One fetch for the fleet: adopt a newer published set, or take the lock, fetch and publish,
        or wait (bounded by ``JWKS_TIMEOUT``) for the lock holder's set; a broken cache means fetch alone."""
        entry = self.get(url)
        if entry is not None and entry["expires"] > wall and (since is None or entry["fetched"] > since):
            return adopt(entry)
        locked = self.lock(url, options.timeout + 5)
        if locked is None:  # cache down: work alone
            return fetch()
        if locked:
            try:
                keyset = fetch()
                if keyset.storable:
                    self.put(url, keyset, (keyset.expires_wall - wall) + options.stale_if_error)
                return keyset
            finally:
                self.unlock(url)
        # Another process is fetching: wait (bounded) for what it publishes.
        floor = since if since is not None else (entry["fetched"] if entry else 0.0)
        for _ in range(max(1, int(options.timeout / 0.05))):  # bounded by JWKS_TIMEOUT
            time.sleep(0.05)
            entry = self.get(url)
            if entry is not None and entry["fetched"] > floor and entry["expires"] > wall:
                return adopt(entry)
            if not self.locked(url):
                entry = self.get(url)
                if entry is not None and entry["fetched"] > floor and entry["expires"] > wall:
                    return adopt(entry)
                failure = JWKSFailure("peer_failed", f"no fresh key set was published in {self.alias!r}")
                failure.__cause__ = JWKSSharedRefreshFailed(
                    f"no fresh key set was published for {safe_url(url)} in {self.alias!r}"
                )
                raise _connection_error("the JWKS refresh by another process failed") from failure
        return fetch()  # the lock holder is stuck: fetch ourselves

    def stale(self, url: str, wall: float, stale_if_error: float) -> dict[str, Any] | None:
        """The published entry while it is within ``stale_if_error`` of its expiry (a fleet's last good set)."""
        entry = self.get(url)
        if entry is None or entry["expires"] + stale_if_error <= wall:
            return None
        return entry

    def take_demand_budget(self, url: str, cooldown: float) -> bool | None:
        """The fleet's demand-refetch budget: ``True`` when this process may refetch now, ``False`` when
        another one did within ``cooldown``, ``None`` when the cache is down (the local budget applies)."""
        ok, added = self._op("add", self.key(url) + ":demand", 1, timeout=max(1, math.ceil(cooldown)))
        return bool(added) if ok else None

    def lock(self, url: str, ttl: float) -> bool | None:
        """``True`` when acquired, ``False`` when another process holds it, ``None`` when the cache is down."""
        ok, added = self._op("add", self.key(url) + ":lock", 1, timeout=max(1, math.ceil(ttl)))
        return bool(added) if ok else None

    def unlock(self, url: str) -> None:
        self._op("delete", self.key(url) + ":lock")

    def locked(self, url: str) -> bool:
        ok, value = self._op("get", self.key(url) + ":lock")
        return bool(ok and value)


def _mac(body: str, url: str) -> str:
    from django.utils.crypto import salted_hmac

    return salted_hmac("simplejwt_patches.jwks.shared-cache", f"{url}\n{body}", algorithm="sha256").hexdigest()


def seal_entry(entry: dict[str, Any], url: str) -> dict[str, Any]:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return {"v": 2, "body": body, "mac": _mac(body, url)}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def open_entry(value: Any, url: str) -> dict[str, Any] | None:
    """The verified entry, or ``None`` (unsigned, forged, from another URL, or wrong field types)."""
    import hmac

    if not isinstance(value, dict) or value.get("v") != 2:
        return None
    body, mac = value.get("body"), value.get("mac")
    if not isinstance(body, str) or not isinstance(mac, str) or len(body) > 4 * 1024 * 1024 or len(mac) != 64:
        return None
    if not hmac.compare_digest(mac.encode("utf-8", "replace"), _mac(body, url).encode()):
        return None
    try:
        entry = json.loads(body)
    except (ValueError, RecursionError):
        return None
    ok = (
        isinstance(entry, dict)
        and isinstance(entry.get("payload"), dict)
        and all(_finite(entry.get(k)) for k in ("fetched", "expires", "lifetime"))
        and entry["lifetime"] > 0
        and all(entry.get(k) is None or isinstance(entry.get(k), str) for k in ("etag", "last_modified"))
    )
    return entry if ok else None


def _connection_error(message: str) -> BaseException:
    return errors()[0](message)
