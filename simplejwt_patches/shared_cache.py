"""The key set shared by a fleet through a Django cache (``JWKS_SHARED_CACHE``).

Entries are plain bytes through the backend's raw client (:mod:`.cache_store`: nothing between the
cache and the seal unpickles), sealed with an HMAC keyed from ``SECRET_KEY`` (or one of
``SECRET_KEY_FALLBACKS``) over the URL, the fetch time and a generation, and schema-checked before
use, so whoever can write to the cache can neither run code nor plant a signing key. A process never
adopts an entry older than the set it holds, nor one fetched longer ago than
``min(lifetime, JWKS_CACHE_LIFESPAN)`` (``lifetime + JWKS_STALE_IF_ERROR`` for the last good set
during an outage: only after this process's own fetch failed, never after a wait on another's
lock). ``SET NX PX`` is the cross-process lock (it lapses after ``JWKS_TIMEOUT``) and the fleet's
demand-refetch budget; their values are sealed too (:mod:`.shared_marks`), and one no live holder
could have set is broken. A broken or refused cache means "work alone" (logged once).
An ``ISSUERS`` realm's discovery document goes through the same store, seal and age bounds under a
key and a seal of its own (:class:`SharedDocuments`, :mod:`.discovery_fleet`).
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
from .conf import Options, get_options
from .deadline import time_left, too_little_to_fetch, unsent_without_idp_failure
from .diagnostics import causes, describe, safe_url
from .failures import JWKSFailure, find_failure
from .shared_marks import open_mark, seal_mark, secret_keys
from .transport import errors

__all__ = [
    "JWKSSharedRefreshFailed",
    "JWKSSharedWaitFailed",
    "SharedCache",
    "SharedDocuments",
    "adoptable",
    "open_entry",
    "own_fetch_failed",
    "seal_entry",
]

logger = logging.getLogger("simplejwt_patches.jwks")

#: A holder's lock lapses this long after its JWKS_TIMEOUT deadline (it publishes, then unlocks).
LOCK_MARGIN = 0.2
#: How often a waiter looks for the lock holder's set.
POLL = 0.05


K = TypeVar("K", bound="Publishable")


class Sealable(Protocol):
    """What the shared cache stores of anything it shares: the entry it seals."""

    def entry(self) -> dict[str, Any]: ...


class Publishable(Sealable, Protocol):
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


class JWKSSharedWaitFailed(RuntimeError):
    """This process fetched nothing that shows the IdP is down: it waited on another process's refresh
    lock, which was held past the request's deadline, or took it over too late for a fetch to finish."""


class JWKSSharedRefreshFailed(JWKSSharedWaitFailed):
    """Another process held the shared refresh lock and published no key set (its fetch failed)."""


class _Store:
    """The key set (or, :class:`SharedDocuments`, the discovery document) in a Django cache's raw client."""

    _state_lock = threading.Lock()
    _down: ClassVar[dict[str, bool]] = {}
    _rejected: ClassVar[set[str]] = set()
    #: What the entries are: their key namespace and their seal's (:data:`_SEALS`).
    kind: ClassVar[str] = "jwks"

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @classmethod
    def key(cls, url: str) -> str:
        return f"simplejwt_patches:{cls.kind}:" + hashlib.sha256(url.encode()).hexdigest()[:32]

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
        entry = open_entry(value, url, self.kind)
        if entry is None:
            self.reject(url, "not authenticated or not well-formed")
        return entry

    def reject(self, url: str, why: str) -> None:
        """Log once per URL (and kind) that the entry published for ``url`` is ignored, and ``why``."""
        seen = url if self.kind == "jwks" else f"{self.kind} {url}"
        with self._state_lock:
            if seen in self._rejected:
                return
            self._rejected.add(seen)
        what = "entry" if self.kind == "jwks" else f"{self.kind} entry"
        logger.warning("shared JWKS cache %r: ignoring the %s for %s (%s)", self.alias, what, safe_url(url), why)

    def put(self, url: str, keyset: Sealable, ttl: float) -> None:
        """Publish ``keyset``, sealed with the current ``SECRET_KEY`` (entries of a fallback key are resealed)."""
        if not math.isfinite(ttl) or ttl <= 0:
            return
        try:
            sealed = seal_entry(keyset.entry(), url, self.kind)
        except (TypeError, ValueError):  # e.g. NaN inside the IdP's JSON: not shareable
            return
        self._op("set", self.key(url), sealed, min(ttl, 10.0**7))

    def stale(self, url: str, wall: float, options: Options) -> dict[str, Any] | None:
        """The fleet's last good set for a process that has none and whose fetch failed: the published
        entry while fetched at most ``min(lifetime, JWKS_CACHE_LIFESPAN) + JWKS_STALE_IF_ERROR`` ago."""
        entry = self.get(url)
        if entry is None:
            return None
        bound = min(entry["lifetime"], options.cache_lifespan) + options.stale_if_error
        return entry if wall - entry["fetched"] < bound else None


class SharedDocuments(_Store):
    """The fleet's discovery documents (:mod:`.discovery_fleet`): sealed and aged exactly like key sets,
    under keys and a seal of their own, so a key-set entry is never a document nor the reverse."""

    kind = "discovery"


class _Coordination(_Store):
    """The refresh lock and the demand budget: sealed values (:mod:`.shared_marks`), judged before obeyed.

    A value this fleet did not seal (planted, or left by an older release), one taken longer ago than
    the key may live, or one whose expiry is missing or longer than that is broken (compare-and-delete:
    never a key taken meanwhile) and logged once; a lock is only ever released by its own holder, or
    handed over by it (its fetch was not sent) to the one waiter that replaces it."""

    _waited: ClassVar[dict[str, float]] = {}

    def __init__(self, alias: str) -> None:
        super().__init__(alias)
        self._handed: bytes | None = None  # the handed-over lock value _lapses saw last (one refresh each)

    def _misfit(
        self, kind: str, url: str, value: bytes, bound: float, at: str | None = None
    ) -> tuple[str | None, float]:
        """Why the key (``at``, else ``kind``'s own) holding ``value``, a ``kind`` mark, is no live holder's
        (``None`` when it is one's), and the seconds it has left by its sealed taken-at and its expiry
        (0.0: gone since it was read)."""
        wall = time.time()
        taken = open_mark(kind, value, url)
        if taken is None:
            return "not sealed with SECRET_KEY: planted, or written by an older release", 0.0
        if abs(wall - taken) > bound:
            return f"taken {wall - taken:.1f} s ago, a holder's lives {bound:g} s", 0.0
        ok, left = self._op("ttl", self.key(url) + ":" + (at or kind))
        if ok and left is not None and left > bound:
            return ("it has no expiry" if math.isinf(left) else f"it expires in {left:.1f} s, over {bound:g} s"), 0.0
        return None, min(taken + bound - wall, left if ok and left is not None else math.inf)

    def _break(self, url: str, kind: str, value: bytes, why: str) -> None:
        self._op("delete_if", self.key(url) + ":" + kind, value)
        with self._state_lock:
            if f"{kind} {url}" in self._rejected:
                return
            self._rejected.add(f"{kind} {url}")
        name = "refresh lock" if kind == "lock" else "demand-refetch budget"
        logger.warning("shared JWKS cache %r: broke the %s for %s (%s)", self.alias, name, safe_url(url), why)

    def _value(self, url: str, kind: str) -> tuple[bool, bytes | None]:
        """The raw value at ``kind``'s key; ``b""`` for an empty one (a bounded read sees it as missing)."""
        key = self.key(url) + ":" + kind
        ok, value = self._op("get", key)
        if ok and value is None:
            ok, there = self._op("exists", key)
            value = b"" if ok and there else None
        return ok, value

    def _lapses(self, url: str, options: Options) -> float | None:
        """When (monotonic) the refresh lock lapses; ``None`` when there is none (or the cache is down).
        A lock no live holder could have set is broken, and lapses now; so does one its holder handed over
        (its fetch was not sent: the sealed ``unsent`` value), which :meth:`_take` then takes."""
        asked = time.monotonic()  # before the round trips: the estimate never lies after the real lapse
        self._handed = None
        ok, value = self._value(url, "lock")
        if not ok or value is None:
            return None
        kind = "unsent" if open_mark("unsent", value, url) is not None else "lock"
        why, left = self._misfit(kind, url, value, options.timeout + LOCK_MARGIN, at="lock")
        if why is not None:
            self._break(url, "lock", value, why)
            return asked
        if kind == "unsent":
            self._handed = value
            return asked
        if left <= 0:  # gone since it was read: released or lapsed, which the caller tells by its estimate
            return None
        return asked + left

    def take_demand_budget(self, url: str, cooldown: float) -> tuple[bool | None, bytes]:
        """The fleet's demand-refetch budget: ``(True, mark)`` when this process may refetch now (``mark``
        gives it back, :meth:`give_back_demand_budget`), ``False`` when another one did within ``cooldown``,
        ``None`` when the cache is down (the local budget applies). A budget key no process of this fleet
        could have set is broken, then taken."""
        key, ttl, mark = self.key(url) + ":demand", max(1.0, cooldown), seal_mark("demand", url)
        for attempt in range(2):
            ok, added = self._op("add", key, mark, ttl)
            if not ok:
                return None, mark
            if added or attempt:
                return bool(added), mark
            ok, value = self._value(url, "demand")
            if not ok:
                return None, mark
            if value is not None:  # None: gone meanwhile (expired), add once more
                why = self._misfit("demand", url, value, ttl)[0]
                if why is None:
                    return False, mark  # a live budget: another process refetched within the cooldown
                self._break(url, "demand", value, why)
        return False, mark  # pragma: no cover - the loop returns

    def give_back_demand_budget(self, url: str, mark: bytes) -> None:
        """Return the fleet's budget taken as ``mark``: its refetch was never sent. Deleted only while it
        holds ``mark``, never a budget another process took since."""
        self._op("delete_if", self.key(url) + ":demand", mark)

    def _take(self, url: str, ttl: float) -> tuple[bool | None, bytes]:
        """:meth:`lock`, or the lock a holder handed over (:meth:`_lapses`): replaced, so one process takes it."""
        handed, self._handed = self._handed, None
        if handed is None:
            return self.lock(url, ttl)
        value = seal_mark("lock", url)
        ok, replaced = self._op("replace_if", self.key(url) + ":lock", handed, value, ttl)
        return (bool(replaced) if ok else None), value

    def lock(self, url: str, ttl: float) -> tuple[bool | None, bytes]:
        """``(acquired, our lock's value)``; acquired is ``False`` when another process holds the lock,
        ``None`` when the cache is down."""
        value = seal_mark("lock", url)
        ok, added = self._op("add", self.key(url) + ":lock", value, ttl)
        return (bool(added) if ok else None), value

    def unlock(self, url: str, value: bytes) -> None:
        """Release our lock: deleted only while it holds ``value``, never a lock another process took since."""
        self._op("delete_if", self.key(url) + ":lock", value)

    def locked(self, url: str, options: Options | None = None) -> bool:
        """Whether a live holder's refresh lock is held (one no holder could have set is broken: not held)."""
        lapses = self._lapses(url, options or get_options())
        return lapses is not None and lapses > time.monotonic()

    def _warn_wait(self, url: str, options: Options) -> None:
        """One WARNING per cooldown and URL: a request gave up waiting on a live holder's lock."""
        now, key = time.monotonic(), self.alias + " " + url
        with self._state_lock:
            last = self._waited.get(key)
            if last is not None and 0 <= now - last < options.refetch_cooldown:
                return
            self._waited[key] = now
        logger.warning(
            "shared JWKS cache %r: another process's refresh of %s held the lock for this request's whole "
            "JWKS_TIMEOUT=%g s; no key set for it (a lock wait never serves the shared cache's last good set)",
            self.alias,
            safe_url(url),
            options.timeout,
        )


class SharedCache(_Coordination):
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
        fetch alone. A lock that lapses (its holder died mid-fetch) or that no live holder could have
        set (not sealed, taken too long ago, no expiry or a longer one) is broken. A wait that ends
        without a set raises with :class:`JWKSSharedWaitFailed` in the chain (see :func:`own_fetch_failed`).
        """
        left = time_left()  # the request's own deadline, when it already spent part of JWKS_TIMEOUT
        deadline = time.monotonic() + (options.timeout if left is None else min(options.timeout, left))
        entry = self.get(url)
        if entry is not None and adoptable(entry, seen, wall, options):
            return adopt(entry)
        generation = max(entry["generation"] if entry else 0, seen.generation if seen else 0) + 1
        left = time_left()  # a request's own deadline (a realm's): its fetch will not be sent with too little
        if left is not None and too_little_to_fetch(left, options.timeout):  # left, so no lock for it, and no
            return fetch(timeout=left).with_generation(generation)  # waiter misled (NotSent; nothing spent)
        locked, held = self.lock(url, options.timeout + LOCK_MARGIN)
        if locked is None:  # cache down: work alone
            return fetch().with_generation(generation)
        if locked:
            return self._holding(url, fetch, adopt, seen, generation, wall, options, held, None)
        return self._wait(url, fetch, adopt, seen, generation, wall, options, deadline)

    def _holding(
        self,
        url: str,
        fetch: Callable[..., K],
        adopt: Callable[[dict[str, Any]], K],
        seen: Publishable | None,
        generation: int,
        wall: float,
        options: Options,
        held: bytes,
        deadline: float | None,
    ) -> K:
        """The lock is ours (``held``): adopt a set published since the entry was read (by a holder that
        released the lock just before), else fetch and publish -- within what is left of ``deadline``
        after a lock wait (too little: not sent, the lock handed over), else within ``JWKS_TIMEOUT``."""
        entry = self.get(url)
        if entry is not None and adoptable(entry, seen, wall, options):
            self.unlock(url, held)
            return adopt(entry)
        if deadline is None:
            return self._fetch_and_publish(url, fetch, generation, wall, options, held)
        left = max(0.0, deadline - time.monotonic())
        try:
            return self._fetch_and_publish(url, fetch, generation, wall, options, held, timeout=left)
        except Exception as exc:
            cut = _cut_short(exc, left, options, self.alias)
            if cut is None:
                raise
            raise cut from cut.__cause__

    def _fetch_and_publish(
        self,
        url: str,
        fetch: Callable[..., K],
        generation: int,
        wall: float,
        options: Options,
        held: bytes,
        **timeout: float,
    ) -> K:
        """Fetch (caller holds the lock whose value is ``held``) and publish, then unlock. A fetch not sent
        for want of this request's time (no IdP failure) leaves a sealed ``unsent`` mark before the unlock:
        the waiters then take the lock and fetch themselves instead of judging the IdP by it."""
        try:
            keyset = fetch(**timeout).with_generation(generation)
            if keyset.storable:
                self.put(url, keyset, (keyset.expires_wall - wall) + options.stale_if_error)
            return keyset
        except Exception as exc:
            if unsent_without_idp_failure(exc):  # hand the lock over (then the unlock below finds it not ours)
                unsent = seal_mark("unsent", url)
                self._op("replace_if", self.key(url) + ":lock", held, unsent, options.timeout + LOCK_MARGIN)
            raise
        finally:
            self.unlock(url, held)

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
        never a live holder's, and never wait past ``deadline`` (bounded loop, one poll per ``POLL``)."""
        lapses = self._lapses(url, options)
        if lapses is None:  # gone since our lock was refused (released, or its holder died): take it, then
            lapses = time.monotonic()  # adopt what a release published (_holding) rather than judge by it
        for _ in range(int(options.timeout / POLL) + 3):
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            if lapses is not None and now >= lapses:  # the holder died mid-fetch (or it was no holder's lock)
                if too_little_to_fetch(left, options.timeout):  # a fetch would not be sent: no lock for it,
                    return fetch(timeout=left).with_generation(generation)  # and no attempt (NotSent, nothing spent)
                taken, held = self._take(url, left + LOCK_MARGIN)
                if taken is None:  # the cache went down: work alone
                    return fetch(timeout=left).with_generation(generation)
                if taken:
                    return self._holding(url, fetch, adopt, seen, generation, wall, options, held, deadline)
                judged = self._lapses(url, options)  # another waiter took over: wait for it
                lapses = time.monotonic() if judged is None else judged  # or it is gone just now: take it
                continue
            time.sleep(min(POLL, left, POLL if lapses is None else max(0.001, lapses - now)))
            entry = self.get(url)
            if entry is not None and adoptable(entry, seen, wall, options):
                return adopt(entry)
            judged = self._lapses(url, options)  # a live holder's lock (maybe another's now), broken, or gone
            if judged is None and (lapses is None or time.monotonic() < lapses - 2 * POLL):
                entry = self.get(url)  # released, not lapsed: the holder published or failed
                if entry is not None and adoptable(entry, seen, wall, options):
                    return adopt(entry)
                failed = _peer_failed(url, self.alias)
                raise failed from failed.__cause__
            lapses = judged if judged is not None else lapses
        self._warn_wait(url, options)
        failure = JWKSFailure("timeout", f"waited JWKS_TIMEOUT for the refresh lock in {self.alias!r}")
        failure.__cause__ = JWKSSharedWaitFailed(f"the refresh lock for {safe_url(url)} was held past the deadline")
        raise _connection_error(
            f"another process's JWKS refresh did not finish within JWKS_TIMEOUT={options.timeout:g} s"
        ) from failure


def _cut_short(exc: Exception, left: float, options: Options, alias: str) -> BaseException | None:
    """For ``exc`` of a fetch made in the ``left`` seconds a lock wait left: a timeout after a wait of more
    than ``LOCK_MARGIN`` proves no outage (the wait cut the fetch short), so it is raised chained to
    :class:`JWKSSharedWaitFailed` (no stale fallback serves on it); ``None``: raise ``exc`` as it is."""
    failure = find_failure(exc)
    if failure is None or failure.kind != "timeout" or left >= options.timeout - LOCK_MARGIN:
        return None
    cut = JWKSSharedWaitFailed(f"the fetch had {left:.2f} s left after waiting for the refresh lock")
    cut.__cause__ = exc
    wrapped = JWKSFailure("timeout", f"the fetch after a wait for the refresh lock in {alias!r} timed out")
    wrapped.__cause__ = cut
    error = _connection_error(str(exc))
    error.__cause__ = wrapped
    return error


def _peer_failed(url: str, alias: str) -> BaseException:
    """The lock was released and no fresh set published: the holder's fetch failed."""
    failure = JWKSFailure("peer_failed", f"no fresh key set was published in {alias!r}")
    failure.__cause__ = JWKSSharedRefreshFailed(f"no fresh key set was published for {safe_url(url)} in {alias!r}")
    error = _connection_error("the JWKS refresh by another process failed")
    error.__cause__ = failure
    return error


def own_fetch_failed(exc: BaseException) -> bool:
    """Whether the failed refresh ``exc`` was this process's own fetch, the only proof that the IdP is
    down (the shared cache's last good set may then serve); ``False`` after a wait on another
    process's refresh lock that ended without a set (``JWKSSharedWaitFailed`` in the chain), and after a
    fetch not sent for want of time when no fetch of the request had failed at the IdP (a slow shared cache
    is no outage: :func:`~simplejwt_patches.deadline.unsent_without_idp_failure`)."""
    if unsent_without_idp_failure(exc):
        return False
    return not any(isinstance(err, JWKSSharedWaitFailed) for err in causes(exc))


def adoptable(entry: dict[str, Any], seen: Publishable | None, wall: float, options: Options) -> bool:
    """Whether a process holding ``seen`` may adopt ``entry``: newer than ``seen`` (by fetch time and
    generation), unexpired, and fetched at most ``min(lifetime, JWKS_CACHE_LIFESPAN)`` ago -- so an old
    sealed entry written back into the cache is refused past that age."""
    if seen is not None and not (entry["fetched"] > seen.fetched_wall and entry["generation"] >= seen.generation):
        return False
    return bool(entry["expires"] > wall and wall - entry["fetched"] < min(entry["lifetime"], options.cache_lifespan))


#: Each kind of entry's prefix and HMAC salt: a key set's seal never opens as a discovery document's.
_SEALS = {
    "jwks": (b"sjp-jwks-3\n", "simplejwt_patches.jwks.shared-cache"),
    "discovery": (b"sjp-discovery-1\n", "simplejwt_patches.discovery.shared-cache"),
}


def _mac(body: str, url: str, secret: Any, kind: str) -> str:
    from django.utils.crypto import salted_hmac

    return salted_hmac(_SEALS[kind][1], f"{url}\n{body}", secret=secret, algorithm="sha256").hexdigest()


def seal_entry(entry: dict[str, Any], url: str, kind: str = "jwks") -> bytes:
    """The bytes stored for ``entry``: a prefix, the HMAC (current ``SECRET_KEY``) and the JSON body,
    which names ``url`` (so the MAC covers the URL, the fetch time and the generation)."""
    body = json.dumps({**entry, "url": url}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return _SEALS[kind][0] + _mac(body, url, secret_keys()[0], kind).encode() + b"\n" + body.encode()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _authentic(value: Any, url: str, kind: str) -> str | None:
    """The body of a sealed value whose MAC verifies with the current key or a fallback, else ``None``."""
    import hmac

    prefix = _SEALS[kind][0]
    if not isinstance(value, bytes) or not value.startswith(prefix) or len(value) > 4 * 1024 * 1024 + 100:
        return None
    mac, _, raw = value[len(prefix) :].partition(b"\n")
    if len(mac) != 64:
        return None
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for secret in secret_keys():
        if hmac.compare_digest(mac, _mac(body, url, secret, kind).encode()):
            return body
    return None


def open_entry(value: Any, url: str, kind: str = "jwks") -> dict[str, Any] | None:
    """The verified entry, or ``None`` (not sealed bytes, forged, from another URL or kind, or wrong field types)."""
    body = _authentic(value, url, kind)
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
