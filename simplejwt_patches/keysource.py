"""Resilient signing-key lookup for SimpleJWT's managed JWKS clients.

One :class:`KeySource` per managed ``PyJWKClient`` replaces PyJWT's lookup (fixer
``pyjwt.client.key-source``) with the behaviour of the best JWKS clients, on every PyJWT:

* **Warm path without locks or network**: a kid in the cached key set is a dict lookup; PyJWT
  2.14+'s global lock (held across network I/O) is never taken.
* **Rotation pick-up, bounded** (README, "The refetch policy and its bound"): only *demand*
  refetches (caused by an unknown kid, or by a cached kid whose signature fails) use the refetch
  budget of one per ``JWKS_REFETCH_COOLDOWN`` -- per fleet with a shared cache (``cache.add`` on a
  budget key). Cold, expiry and background refreshes do not, so the first token signed with a
  freshly rotated key triggers an immediate refetch. Before spending the budget, a process with a
  shared cache adopts a newer set the fleet published (one bounded read, :mod:`.refetch`); a token
  whose kid is unknown while a refresh is in flight waits for it and is judged by its result, and a
  process refused the fleet's budget waits for the set the fleet is fetching. A kid still unknown
  after that is rejected without network. A failed attempt of any kind is not retried before the
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

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .conf import Options, get_options
from .diagnostics import describe, root_cause, safe_url
from .failures import JWKSFailure
from .keys import log_dropped, usable_signing_keys
from .refetch import DemandBudget, FailureMemory, FleetReads, await_fleet, elapsed
from .shared_cache import SharedCache, adoptable, own_fetch_failed
from .transport import cache_lifetime, errors, fetch

__all__ = ["KeySet", "KeySource", "build_keyset"]

logger = logging.getLogger("simplejwt_patches.jwks")


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
    size: int = 0  # bytes of the body it was parsed from (re-serialised when taken from the shared cache)
    generation: int = 0  # the fleet's count of published sets when this one was fetched or adopted

    def entry(self) -> dict[str, Any]:
        """What goes into the shared cache (sealed with the URL by ``shared_cache.seal_entry``)."""
        return {
            "generation": self.generation,
            "payload": self.payload,
            "fetched": self.fetched_wall,
            "expires": self.expires_wall,
            "lifetime": self.lifetime,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }

    def with_generation(self, generation: int) -> KeySet:
        """This set as the fleet's ``generation``-th published one."""
        return replace(self, generation=generation)


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
    size: int | None = None,
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
        size=_json_size(payload) if size is None else size,
    )


def _json_size(payload: dict[str, Any]) -> int:
    """The size of ``payload`` as compact JSON, for a set whose body was not seen (primed, shared)."""
    try:
        return len(json.dumps(payload, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError, RecursionError):  # pragma: no cover - parsed from JSON, so serialisable
        return 0


class KeySource:
    """Signing keys for one managed client (see the module docstring for the policy)."""

    def __init__(self, client_ref: Any, clock: Any = None) -> None:
        self._client_ref = client_ref  # weak reference to the managed PyJWKClient
        self._clock = clock or (lambda: (time.monotonic(), time.time()))  # (monotonic, wall) - injectable
        self._keyset: KeySet | None = None
        self._refresh_lock = threading.Lock()
        self._bg_guard = threading.Lock()
        self._bg_thread: threading.Thread | None = None
        self._generation = 0  # completed attempts and adopted fleet sets
        self._memory = FailureMemory()  # the last attempt: bounds retries after a failure
        self._budget = DemandBudget()  # the unknown-kid budget (the fleet's is in the shared cache)
        self._fleet_reads: FleetReads[KeySet] = FleetReads()
        self._adopt_lock = threading.Lock()
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
        deadline = elapsed() + options.timeout  # every wait of this request ends by then
        if not isinstance(kid, str):  # a hostile header: a list or an object is no key id
            raise jwt.PyJWKClientError("Unable to find a signing key: the token's kid is not a string") from (
                JWKSFailure("unknown_kid", f"the token's kid is a {type(kid).__name__}")
            )
        generation, keyset = self._generation, self._keyset
        if keyset is not None and now < keyset.expires_mono + options.stale_if_error:
            ahead = min(options.refresh_ahead, keyset.lifetime / 2)
            if now >= keyset.expires_mono - ahead:
                self._refresh_in_background(options, (now, wall), generation)
                if now >= keyset.expires_mono and not self._memory.ok:
                    self._warn_stale(keyset, now, options)
            key = keyset.keys.get(kid)
            if key is not None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("JWKS cache hit for kid %s (%d signing keys, expires in %.0f s)", kid,
                                 len(keyset.keys), keyset.expires_mono - now)  # fmt: skip
                return key
            refreshed = self._demand_refetch(options, (now, wall), lambda ks: kid in ks.keys, deadline)
            key = refreshed.keys.get(kid) if refreshed is not None else None
            if key is not None:
                return key
            raise _unknown_kid(kid, None if self._memory.ok else self._memory.error)
        if self._memory.blocked(now, options.refetch_cooldown):
            raise self._error_again(now, options)
        key = self._refresh_sync(options, (now, wall), deadline).keys.get(kid)
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
        if self._keyset is None:
            return None

        def replaced(keyset: KeySet) -> bool:
            fresh = keyset.keys.get(kid)
            return fresh is not None and fresh is not key and not _same_jwk(fresh, key)

        try:
            refreshed = self._demand_refetch(options, (now, wall), replaced, elapsed() + options.timeout)
        except Exception:  # noqa: BLE001 - logged by the transport; the signature error stands
            return None
        return refreshed.keys[kid] if refreshed is not None and replaced(refreshed) else None

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
            self._memory.record(now[0], None)
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
            self._memory.record(now[0], error)
            self._generation += 1
        return True

    # -- the refetch policy (README, "The refetch policy and its bound") -------------------------

    def _demand_refetch(
        self, options: Options, now: tuple[float, float], wanted: Callable[[KeySet], bool], deadline: float
    ) -> KeySet | None:
        """A set that has what the token needs (``wanted(keyset)``), or ``None``.

        In order: a set refreshed since the request looked; the fleet's newer set (one bounded read);
        the result of a refresh in flight (waited for until ``deadline``); then, budget permitting, one
        demand refetch -- or, when another process spent the fleet's budget, the set its fetch publishes.
        """
        keyset = self._keyset
        if keyset is not None and wanted(keyset):
            return keyset  # refreshed meanwhile
        if options.shared_cache:
            adopted = self._fleet_reads.read(lambda: self._shared_newer(options, now), deadline)
            if adopted is not None and wanted(adopted):
                return adopted
        if not self._refresh_lock.acquire(timeout=max(0.0, deadline - elapsed())):
            raise _connection_error(
                f"a JWKS refresh in progress did not finish within JWKS_TIMEOUT={options.timeout:g} s"
            ) from JWKSFailure("timeout", "waited JWKS_TIMEOUT for a refresh in progress")
        try:
            keyset = self._keyset
            if keyset is not None and wanted(keyset):
                return keyset  # the refresh this request waited for has it
            if self._memory.blocked(now[0], options.refetch_cooldown):
                return None
            if not self._budget.take(now[0], options.refetch_cooldown):
                return None  # spent by a fetch this process made (or waited for) less than a cooldown ago
            if options.shared_cache:
                cache = SharedCache(options.shared_cache)
                url = self._url()
                if cache.take_demand_budget(url, options.refetch_cooldown) is False:
                    self._budget.refused_by_fleet(now[0], options.refetch_cooldown)
                    return await_fleet(lambda: self._shared_newer(options, now), lambda: cache.locked(url), deadline)
            return self._attempt(options, now, demand=True)
        finally:
            self._refresh_lock.release()

    def _shared_newer(self, options: Options, now: tuple[float, float]) -> KeySet | None:
        """The shared cache's set, adopted, when another process published one newer than ours."""
        assert options.shared_cache
        url = self._url()
        entry = SharedCache(options.shared_cache).get(url)
        seen = self._keyset
        if entry is None or not adoptable(entry, seen, now[1], options):
            return None
        try:
            keyset = self._adopt(entry, url, now)
        except Exception:  # noqa: BLE001 - an unusable entry: fetch instead
            return None
        with self._adopt_lock:
            current = self._keyset
            if current is not None and current.fetched_wall >= keyset.fetched_wall:
                return current if current.fetched_wall == keyset.fetched_wall else None
            self._keyset = keyset
            self._generation += 1
        return keyset

    def _url(self) -> str:
        client = self._client_ref()
        return str(getattr(client, "uri", ""))

    # -- refreshing ---------------------------------------------------------------------------

    def _refresh_sync(self, options: Options, now: tuple[float, float], deadline: float) -> KeySet:
        generation = self._generation
        # Single flight: wait for a refresh already in progress, but never past the request's deadline
        # (the fetch itself has that deadline; a waiter must not queue behind it indefinitely).
        if not self._refresh_lock.acquire(timeout=max(0.0, deadline - elapsed())):
            keyset = self._keyset
            if keyset is not None and now[0] < keyset.expires_mono + options.stale_if_error:
                return keyset  # the stale set, while a slow refresh is still running
            raise _connection_error(
                f"a JWKS refresh in progress did not finish within JWKS_TIMEOUT={options.timeout:g} s"
            ) from JWKSFailure("timeout", "waited JWKS_TIMEOUT for a refresh in progress")
        try:
            if self._generation != generation:
                if self._memory.ok and self._keyset is not None:
                    return self._keyset
                raise self._error_again(now[0], options)
            return self._attempt(options, now)
        finally:
            self._refresh_lock.release()

    def _refresh_in_background(self, options: Options, clock: tuple[float, float], generation: int) -> None:
        now = clock[0]
        if self._refresh_lock.locked() or self._generation != generation:
            return  # in flight, or refreshed since this request looked
        if self._memory.blocked(now, options.refetch_cooldown):
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
            self._memory.record(started, exc)
            self._generation += 1
            # the fleet's last good set only when this process's own fetch failed (not after a lock wait)
            stale = self._stale_from_shared(options, now) if self._keyset is None and own_fetch_failed(exc) else None
            if stale is None:
                raise
            self._keyset = stale  # a process (re)started during an outage: the fleet's last good set
            return stale
        self._keyset = keyset
        self._memory.record(started, None)
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
            fetch=lambda timeout=None: self._network(client, _within(options, timeout), previous, now, demand=demand),
            adopt=lambda entry: self._adopt(entry, url, now),
            seen=previous,
            wall=now[1],
            options=options,
        )

    def _stale_from_shared(self, options: Options, now: tuple[float, float]) -> KeySet | None:
        """The shared cache's last good set if still within ``JWKS_STALE_IF_ERROR`` of its expiry."""
        client = self._client_ref()
        if not options.shared_cache or client is None:
            return None
        url = str(client.uri)
        entry = SharedCache(options.shared_cache).stale(url, now[1], options)
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
        ).with_generation(entry["generation"])
        logger.debug(
            "JWKS for %s taken from the shared cache (fetched %.0f s ago)", safe_url(url), now[1] - entry["fetched"]
        )
        return keyset

    def _network(
        self, client: Any, options: Options, previous: KeySet | None, now: tuple[float, float], *, demand: bool = False
    ) -> KeySet:
        # A demand refetch looks for a key the cached set lacks (or replaced): never conditional.
        conditional = {}
        cached = None
        if previous is not None and not demand:
            conditional = {"etag": previous.etag, "last_modified": previous.last_modified}
            cached = (previous.payload, previous.size)  # what a 304 reports (jwks_fetched, the DEBUG line)
        payload, raw = fetch(client, options, cached=cached, **conditional)
        lifetime, storable = cache_lifetime(raw.cache_control, options)
        revalidated = raw.status == 304 and previous is not None
        if revalidated:
            assert previous is not None
            payload = previous.payload
        keyset = build_keyset(
            payload,
            lifetime,
            now=now,
            storable=storable,
            etag=raw.etag or (previous.etag if previous and raw.status == 304 else None),
            last_modified=raw.last_modified or (previous.last_modified if previous and raw.status == 304 else None),
            url=safe_url(str(client.uri)),
            size=previous.size if revalidated and previous is not None else len(raw.body),
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
        last = self._memory.error
        ago = now - (self._memory.attempt or now)
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
            describe(_root(self._memory.error)) if self._memory.error else "unknown",
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


def _within(options: Options, timeout: float | None) -> Options:
    """``options`` with ``JWKS_TIMEOUT`` cut to what is left of a deadline (after a shared-cache lock wait)."""
    if timeout is None or timeout >= options.timeout:
        return options
    return Options({**options._values, "JWKS_TIMEOUT": max(timeout, 0.001)}, options.problems)


def _connection_error(message: str) -> BaseException:
    return errors()[0](message)
