"""Resilient signing-key lookup for SimpleJWT's managed JWKS clients.

One :class:`KeySource` per managed ``PyJWKClient`` replaces PyJWT's lookup (fixer
``pyjwt.client.key-source``) with the behaviour of the best JWKS clients, on every PyJWT:

* **Warm path without locks or network**: a kid in the cached key set is a dict lookup; PyJWT
  2.14+'s global lock (held across network I/O) is never taken.
* **Rotation pick-up, bounded**: only *demand* refetches (caused by an unknown kid, or by a cached
  kid whose signature fails) use the refetch budget of one per ``JWKS_REFETCH_COOLDOWN`` -- per
  fleet with a shared cache (``cache.add`` on a budget key). Cold, expiry and background refreshes
  do not, so the first token signed with a freshly rotated key triggers an immediate refetch,
  while random kids cost at most one fetch per cooldown. A kid still unknown after the demand
  refetch is rejected without network. A failed attempt of any kind is not retried before the
  cooldown has passed; a failed demand refetch is in the 401's cause chain.
* **Stale-while-revalidate / stale-if-error**: once the set expires, requests keep being served
  from it while *one* background thread refreshes; if refreshes fail, the last good set is served
  for up to ``JWKS_STALE_IF_ERROR`` seconds past its expiry (WARNING once per cooldown), then the
  source fails closed.
* **Single-flight**: at most one fetch in flight per client; synchronous callers (cold cache,
  unknown kid) wait for it instead of fetching again. Optional refresh-ahead.
* **Cache-Control**: ``max-age`` within ``[JWKS_CACHE_MIN, JWKS_CACHE_MAX]``; ``no-store`` ->
  ``JWKS_CACHE_MIN`` and never shared; conditional requests with ``ETag``/``Last-Modified``.
* **Shared cache** (``JWKS_SHARED_CACHE``): the set, its fetch time and validators live in a
  Django cache so a fleet fetches once per lifespan; ``cache.add`` is the cross-process lock; the
  local copy serves the warm path; a broken cache falls back to per-process fetching (logged once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .conf import Options, get_options
from .diagnostics import describe, root_cause, safe_url
from .failures import JWKSFailure
from .keys import log_dropped, usable_signing_keys
from .transport import cache_lifetime, errors, fetch

__all__ = ["JWKSSharedRefreshFailed", "KeySet", "KeySource", "SharedCache", "open_entry", "seal_entry"]

logger = logging.getLogger("simplejwt_patches.jwks")


class JWKSSharedRefreshFailed(RuntimeError):
    """Another process held the shared refresh lock and published no key set (its fetch failed)."""


@dataclass(frozen=True)
class KeySet:
    """A parsed key set and when it expires (wall clock for sharing, monotonic for local use)."""

    keys: Mapping[Any, Any]  # kid -> PyJWK (signing keys only)
    payload: dict[str, Any]
    fetched_wall: float
    expires_wall: float
    expires_mono: float
    lifetime: float
    storable: bool = True
    etag: str | None = None
    last_modified: str | None = None

    def entry(self) -> dict[str, Any]:
        """What goes into the shared cache."""
        return {
            "v": 1,
            "payload": self.payload,
            "fetched": self.fetched_wall,
            "expires": self.expires_wall,
            "lifetime": self.lifetime,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }


def build_keyset(
    payload: dict[str, Any],
    lifetime: float,
    *,
    now: tuple[float, float] | None = None,
    fetched_wall: float | None = None,
    storable: bool = True,
    etag: str | None = None,
    last_modified: str | None = None,
    url: str | None = None,
) -> KeySet:
    """Parse ``payload`` once into its usable signing keys (``PyJWKClientError`` from a
    :class:`~simplejwt_patches.failures.JWKSFailure` when there is none); ``url`` logs dropped keys."""
    import jwt

    try:
        keys, dropped = usable_signing_keys(payload)
    except JWKSFailure as failure:
        raise jwt.PyJWKClientError(f"The JWKS endpoint did not return a JSON key set: {failure.detail}") from failure
    if url is not None:
        log_dropped(dropped, url)
    if not keys:
        reasons = "; ".join(f"#{d.index}: {d.why}" for d in dropped[:5]) or "the key set is empty"
        raise jwt.PyJWKClientError("The JWKS endpoint did not contain any signing keys") from JWKSFailure(
            "no_usable_key", reasons
        )
    if not math.isfinite(lifetime) or lifetime <= 0:
        raise ValueError(f"unusable key-set lifetime {lifetime!r}")
    now_mono, now_wall = now or (time.monotonic(), time.time())
    fetched = now_wall if fetched_wall is None else fetched_wall
    expires_wall = fetched + lifetime
    return KeySet(
        keys=keys,
        payload=payload,
        fetched_wall=fetched,
        expires_wall=expires_wall,
        expires_mono=now_mono + (expires_wall - now_wall),
        lifetime=lifetime,
        storable=storable,
        etag=etag,
        last_modified=last_modified,
    )


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

    def put(self, url: str, keyset: KeySet, ttl: float) -> None:
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
        fetch: Callable[[], KeySet],
        adopt: Callable[[dict[str, Any]], KeySet],
        since: float | None,
        wall: float,
        options: Options,
    ) -> KeySet:
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


class KeySource:
    """Signing keys for one managed client (see the module docstring for the policy)."""

    def __init__(self, client_ref: Any, clock: Any = None) -> None:
        self._client_ref = client_ref  # weak reference to the managed PyJWKClient
        self._clock = clock or (lambda: (time.monotonic(), time.time()))  # (monotonic, wall) - injectable
        self._keyset: KeySet | None = None
        self._refresh_lock = threading.Lock()
        self._bg_guard = threading.Lock()
        self._bg_thread: threading.Thread | None = None
        self._generation = 0  # completed attempts
        self._last_attempt: float | None = None  # monotonic, any attempt: bounds retries after a failure
        self._last_demand: float | None = None  # monotonic, last demand refetch: the unknown-kid budget
        self._demand_lock = threading.Lock()
        self._last_ok = True
        self._last_error: BaseException | None = None
        self._stale_warned: float | None = None

    # -- public -------------------------------------------------------------------------------

    @property
    def keyset(self) -> KeySet | None:
        """The current key set (possibly expired), or ``None`` before the first fetch."""
        return self._keyset

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait for a background refresh to finish (tests and benchmarks); ``False`` on timeout."""
        thread = self._bg_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def get_signing_key(self, kid: str | None) -> Any:
        """The PyJWK for ``kid``; raises PyJWT errors chained to the root cause."""
        import jwt

        options = get_options()
        now, wall = self._clock()
        if not isinstance(kid, str):  # a hostile header: a list or an object is no key id
            raise jwt.PyJWKClientError("Unable to find a signing key: the token's kid is not a string") from (
                JWKSFailure("unknown_kid", f"the token's kid is a {type(kid).__name__}")
            )
        generation, keyset = self._generation, self._keyset
        if keyset is not None and now < keyset.expires_mono + options.stale_if_error:
            ahead = min(options.refresh_ahead, keyset.lifetime / 2)
            if now >= keyset.expires_mono - ahead:
                self._refresh_in_background(options, (now, wall), generation)
                if now >= keyset.expires_mono and not self._last_ok:
                    self._warn_stale(keyset, now, options)
            key = keyset.keys.get(kid)
            if key is not None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("JWKS cache hit for kid %s (%d signing keys, expires in %.0f s)", kid,
                                 len(keyset.keys), keyset.expires_mono - now)  # fmt: skip
                return key
            refreshed = self._demand_refetch(options, (now, wall), keyset)
            key = refreshed.keys.get(kid) if refreshed is not None else None
            if key is not None:
                return key
            raise _unknown_kid(kid, None if self._last_ok else self._last_error)
        if self._retry_blocked(now, options):
            raise self._error_again(now, options)
        key = self._refresh_sync(options, (now, wall)).keys.get(kid)
        if key is None:
            raise _unknown_kid(kid)
        return key

    def refetch_replaced(self, kid: Any, key: Any) -> Any:
        """A fresh key for ``kid`` when the cached ``key`` failed to verify a signature, else ``None``.

        Uses the demand-refetch budget (at most one per ``JWKS_REFETCH_COOLDOWN``); returns a key only
        when the refetched set publishes a *different* key under the same kid (a key replaced in place).
        Never raises: the caller's signature error stands when nothing better is found.
        """
        if not isinstance(kid, str):
            return None
        options = get_options()
        now, wall = self._clock()
        keyset = self._keyset
        if keyset is None:
            return None
        try:
            refreshed = self._demand_refetch(options, (now, wall), keyset)
        except Exception:  # noqa: BLE001 - logged by the transport; the signature error stands
            return None
        fresh = refreshed.keys.get(kid) if refreshed is not None else None
        if fresh is None or fresh is key or _same_jwk(fresh, key):
            return None
        return fresh

    def prime(self, payload: dict[str, Any], lifetime: float, *, storable: bool = True) -> bool:
        """Use a key set fetched elsewhere in this process (the doctor's probe) when none is cached.

        Counts as a successful cold fetch (no demand budget used); ``False`` when a set is already
        cached or ``payload`` has no usable signing key.
        """
        if self._keyset is not None:
            return False
        now = self._clock()
        with self._refresh_lock:
            if self._keyset is not None:
                return False
            try:
                keyset = build_keyset(payload, lifetime, now=now, storable=storable)
            except Exception:  # noqa: BLE001 - an unusable set is left to the normal fetch
                return False
            self._keyset = keyset
            self._last_attempt, self._last_ok, self._last_error = now[0], True, None
            self._generation += 1
        return True

    def prime_failure(self, error: BaseException) -> bool:
        """Record a failed fetch made elsewhere in this process (the doctor's probe) as this source's
        last attempt, so the same failure answers without a second request; ``False`` when a set is cached."""
        if self._keyset is not None:
            return False
        now = self._clock()
        with self._refresh_lock:
            if self._keyset is not None:
                return False
            self._last_attempt, self._last_ok, self._last_error = now[0], False, error
            self._generation += 1
        return True

    # -- the demand-refetch budget ------------------------------------------------------------

    def _retry_blocked(self, now: float, options: Options) -> bool:
        """Whether the last attempt failed less than a cooldown ago (failed fetches are not retried sooner)."""
        return (
            not self._last_ok and self._last_attempt is not None and now - self._last_attempt < options.refetch_cooldown
        )

    def _demand_refetch(self, options: Options, now: tuple[float, float], seen: KeySet) -> KeySet | None:
        """Refetch for an unknown kid if the budget allows; ``None`` when it does not.

        The budget is one demand refetch per cooldown, per process and -- with a shared cache --
        per fleet. A set that changed since ``seen`` (another thread or process refreshed) is used
        without spending the budget.
        """
        if self._keyset is not seen and self._keyset is not None and self._last_ok:
            return self._keyset  # refreshed meanwhile
        if self._retry_blocked(now[0], options):
            return None
        with self._demand_lock:
            last = self._last_demand
            if last is not None and now[0] - last < options.refetch_cooldown:
                return None
            self._last_demand = now[0]
        if options.shared_cache:
            adopted = self._shared_newer(options, now, seen)
            if adopted is not None:
                return adopted
            granted = SharedCache(options.shared_cache).take_demand_budget(self._url(), options.refetch_cooldown)
            if granted is False:  # another process used the fleet's budget in this window
                return None
        return self._refresh_sync(options, now, demand=True)

    def _shared_newer(self, options: Options, now: tuple[float, float], seen: KeySet) -> KeySet | None:
        """The shared cache's set when another process published one newer than ``seen``."""
        assert options.shared_cache
        url = self._url()
        entry = SharedCache(options.shared_cache).get(url)
        if entry is None or entry["fetched"] <= seen.fetched_wall or entry["expires"] <= now[1]:
            return None
        try:
            keyset = self._adopt(entry, url, now)
        except Exception:  # noqa: BLE001 - an unusable entry: fetch instead
            return None
        self._keyset = keyset
        return keyset

    def _url(self) -> str:
        client = self._client_ref()
        return str(getattr(client, "uri", ""))

    # -- refreshing ---------------------------------------------------------------------------

    def _refresh_sync(self, options: Options, now: tuple[float, float], *, demand: bool = False) -> KeySet:
        generation = self._generation
        # Single flight: wait for a refresh already in progress, but never longer than JWKS_TIMEOUT
        # (the fetch itself has that deadline; a waiter must not queue behind it indefinitely).
        if not self._refresh_lock.acquire(timeout=options.timeout):
            keyset = self._keyset
            if keyset is not None and now[0] < keyset.expires_mono + options.stale_if_error:
                return keyset  # the stale set, while a slow refresh is still running
            raise _connection_error(
                f"a JWKS refresh in progress did not finish within JWKS_TIMEOUT={options.timeout:g} s"
            ) from JWKSFailure("timeout", "waited JWKS_TIMEOUT for a refresh in progress")
        try:
            if self._generation != generation:
                if self._last_ok and self._keyset is not None:
                    return self._keyset
                raise self._error_again(now[0], options)
            return self._attempt(options, now, demand=demand)
        finally:
            self._refresh_lock.release()

    def _refresh_in_background(self, options: Options, clock: tuple[float, float], generation: int) -> None:
        now = clock[0]
        if self._refresh_lock.locked() or self._generation != generation:
            return  # in flight, or refreshed since this request looked
        if not self._last_ok and self._last_attempt is not None and now - self._last_attempt < options.refetch_cooldown:
            return
        with self._bg_guard:
            if self._bg_thread is not None and self._bg_thread.is_alive():
                return
            self._bg_thread = threading.Thread(
                target=self._background,
                args=(options, clock, generation),
                name="simplejwt-patches-jwks-refresh",
                daemon=True,
            )
            self._bg_thread.start()

    def _background(self, options: Options, now: tuple[float, float], generation: int) -> None:
        # Timestamps come from the requesting thread (one clock for all bookkeeping).
        if not self._refresh_lock.acquire(blocking=False):
            return
        try:
            if self._generation == generation:  # nobody refreshed meanwhile
                self._attempt(options, now)
        except Exception:  # noqa: BLE001 - the failure was logged by the transport; stale set keeps serving
            pass
        finally:
            self._refresh_lock.release()
            if options.shared_cache:
                from django.db import connections

                connections.close_all()  # this thread's connections only (a database cache backend)

    def _attempt(self, options: Options, now: tuple[float, float], *, demand: bool = False) -> KeySet:
        """One refresh (caller holds ``_refresh_lock``); records the outcome for the retry bound."""
        started = now[0]
        try:
            keyset = self._fetch(options, now, demand=demand)
        except Exception as exc:
            self._last_attempt, self._last_ok, self._last_error = started, False, exc
            self._generation += 1
            stale = self._stale_from_shared(options, now) if self._keyset is None else None
            if stale is None:
                raise
            self._keyset = stale  # a process (re)started during an outage: the fleet's last good set
            return stale
        self._keyset = keyset
        self._last_attempt, self._last_ok, self._last_error = started, True, None
        self._generation += 1
        return keyset

    def _fetch(self, options: Options, now: tuple[float, float], *, demand: bool = False) -> KeySet:
        client = self._client_ref()
        if client is None:  # pragma: no cover - the client is alive while it is being used
            raise RuntimeError("the JWKS client was garbage-collected")
        url = str(client.uri)
        previous = self._keyset
        if not options.shared_cache:
            return self._network(client, options, previous, now, demand=demand)
        return SharedCache(options.shared_cache).refresh(
            url,
            fetch=lambda: self._network(client, options, previous, now, demand=demand),
            adopt=lambda entry: self._adopt(entry, url, now),
            since=previous.fetched_wall if previous else None,
            wall=now[1],
            options=options,
        )

    def _stale_from_shared(self, options: Options, now: tuple[float, float]) -> KeySet | None:
        """The shared cache's last good set if still within ``JWKS_STALE_IF_ERROR`` of its expiry."""
        client = self._client_ref()
        if not options.shared_cache or client is None:
            return None
        url = str(client.uri)
        entry = SharedCache(options.shared_cache).stale(url, now[1], options.stale_if_error)
        if entry is None:
            return None
        try:
            keyset = self._adopt(entry, url, now)
        except Exception:  # noqa: BLE001 - an unusable entry is no fallback
            return None
        logger.warning(
            "JWKS refresh for %s failed; serving the shared cache's last good set (expired %.0f s ago)",
            safe_url(url),
            now[1] - entry["expires"],
        )
        return keyset

    def _adopt(self, entry: dict[str, Any], url: str, now: tuple[float, float]) -> KeySet:
        keyset = build_keyset(
            entry["payload"],
            entry["lifetime"],
            now=now,
            fetched_wall=entry["fetched"],
            etag=entry.get("etag"),
            last_modified=entry.get("last_modified"),
        )
        logger.debug(
            "JWKS for %s taken from the shared cache (fetched %.0f s ago)", safe_url(url), now[1] - entry["fetched"]
        )
        return keyset

    def _network(
        self, client: Any, options: Options, previous: KeySet | None, now: tuple[float, float], *, demand: bool = False
    ) -> KeySet:
        # A demand refetch looks for a key the cached set lacks (or replaced): never conditional.
        conditional = {}
        if previous is not None and not demand:
            conditional = {"etag": previous.etag, "last_modified": previous.last_modified}
        payload, raw = fetch(client, options, **conditional)
        lifetime, storable = cache_lifetime(raw.cache_control, options)
        if raw.status == 304 and previous is not None:
            payload = previous.payload
        keyset = build_keyset(
            payload,
            lifetime,
            now=now,
            storable=storable,
            etag=raw.etag or (previous.etag if previous and raw.status == 304 else None),
            last_modified=raw.last_modified or (previous.last_modified if previous and raw.status == 304 else None),
            url=safe_url(str(client.uri)),
        )
        cache = getattr(client, "jwk_set_cache", None)
        if cache is not None:  # keep PyJWT's own cache in step for direct users of the client
            try:
                cache.put(payload)
            except Exception:  # noqa: BLE001 - PyJWT's cache is a convenience here
                pass
        return keyset

    # -- errors and warnings ------------------------------------------------------------------

    def _error_again(self, now: float, options: Options) -> BaseException:
        last = self._last_error
        ago = now - (self._last_attempt or now)
        reason = describe(_root(last)) if last is not None else "unknown"
        error = _connection_error(
            f'Fail to fetch data from the url, err: "{reason}" (last attempt {ago:.0f} s ago; '
            f"not retried before JWKS_REFETCH_COOLDOWN={options.refetch_cooldown:g} s)"
        )
        error.__cause__ = last
        return error

    def _warn_stale(self, keyset: KeySet, now: float, options: Options) -> None:
        if self._stale_warned is not None and now - self._stale_warned < options.refetch_cooldown:
            return
        self._stale_warned = now
        client = self._client_ref()
        logger.warning(
            "serving the last good JWKS for %s, expired %.0f s ago (JWKS_STALE_IF_ERROR=%g s), because refreshing "
            "it failed: %s",
            safe_url(str(getattr(client, "uri", ""))),
            now - keyset.expires_mono,
            options.stale_if_error,
            describe(_root(self._last_error)) if self._last_error else "unknown",
        )


def _root(exc: BaseException | None) -> BaseException:
    assert exc is not None
    return root_cause(exc)


def _unknown_kid(kid: str, last_error: BaseException | None = None) -> BaseException:
    """The unknown-kid error; chained to the last refresh's failure when it failed (the real cause)."""
    import jwt

    error = jwt.PyJWKClientError(f'Unable to find a signing key that matches: "{kid[:100]}"')
    if last_error is not None:
        error.__cause__ = last_error
        return error
    error.__cause__ = JWKSFailure("unknown_kid", "no key in the current key set has this kid")
    return error


def _same_jwk(a: Any, b: Any) -> bool:
    """Whether two PyJWK objects hold the same public key (by their JWK dict when available)."""
    da, db = getattr(a, "_jwk_data", None), getattr(b, "_jwk_data", None)
    if isinstance(da, dict) and isinstance(db, dict):
        return {k: da.get(k) for k in ("kty", "n", "e", "x", "y", "crv", "k")} == {
            k: db.get(k) for k in ("kty", "n", "e", "x", "y", "crv", "k")
        }
    return False


def _connection_error(message: str) -> BaseException:
    return errors()[0](message)
