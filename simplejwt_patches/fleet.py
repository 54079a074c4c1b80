"""Shared-cache coordination for one client (``JWKS_SHARED_CACHE``): how a process works with the
fleet's copy of the key set.

:class:`Fleet` fetches through :meth:`.shared_cache.SharedCache.refresh` (one process fetches and
publishes, the others adopt what it published), adopts a newer set another process published (a read
that :class:`~simplejwt_patches.refetch.FleetReads` makes single-flight and rate-limited), takes the
fleet's demand budget, waits for the set a fetch elsewhere publishes, and falls back to the fleet's
last good set when a process without one cannot fetch. Without a shared cache it fetches alone.
The policy that decides when to do which is :class:`~simplejwt_patches.keysource.KeySource`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .conf import Options
from .deadline import request_deadline
from .diagnostics import safe_url
from .keyfetch import fetch_keyset
from .keyset import KeySet, from_entry
from .refetch import FleetReads, await_fleet
from .refresher import Now, Refresher
from .shared_cache import SharedCache, adoptable, own_fetch_failed

__all__ = ["Fleet"]

logger = logging.getLogger("simplejwt_patches.jwks")


class Fleet:
    """One client's key set as the fleet shares it (``client_ref``: a weak reference to the client)."""

    def __init__(self, client_ref: Any) -> None:
        self._client_ref = client_ref
        self.reads: FleetReads[KeySet] = FleetReads()  # the bounded "is there a newer set" reads
        self._budget_mark: bytes | None = None  # the fleet's budget this process took last (single flight)

    def url(self) -> str:
        return str(getattr(self._client_ref(), "uri", ""))

    def fetch(self, options: Options, now: Now, previous: KeySet | None, demand: bool = False) -> KeySet:
        """A fresh set: from the IdP, or from the process that holds the fleet's refresh lock."""
        client = self._client_ref()
        if client is None:  # pragma: no cover - the client is alive while it is being used
            raise RuntimeError("the JWKS client was garbage-collected")
        if not options.shared_cache:
            return fetch_keyset(client, options, previous, now, demand=demand)
        url = str(client.uri)
        return SharedCache(options.shared_cache).refresh(
            url,
            fetch=lambda timeout=None: _within(
                timeout, lambda: fetch_keyset(client, options, previous, now, demand=demand)
            ),
            adopt=lambda entry: from_entry(entry, url, now),
            seen=previous,
            wall=now[1],
            options=options,
        )

    def newer(self, options: Options, now: Now, into: Refresher, deadline: float) -> KeySet | None:
        """The fleet's set, adopted into ``into``, if newer than the one held (a bounded read)."""
        return self.reads.read(lambda: self._adopt_newer(options, now, into), deadline)

    def _adopt_newer(self, options: Options, now: Now, into: Refresher) -> KeySet | None:
        assert options.shared_cache
        url = self.url()
        entry = SharedCache(options.shared_cache).get(url)
        if entry is None or not adoptable(entry, into.keyset, now[1], options):
            return None
        try:
            keyset = from_entry(entry, url, now)
        except Exception:  # noqa: BLE001 - an unusable entry: fetch instead
            return None
        return into.adopt(keyset)

    def take_budget(self, options: Options) -> bool | None:
        """The fleet's demand budget: ``False`` when another process spent it (``None``: cache down)."""
        assert options.shared_cache
        taken, mark = SharedCache(options.shared_cache).take_demand_budget(self.url(), options.refetch_cooldown)
        self._budget_mark = mark if taken else None
        return taken

    def give_back_budget(self, options: Options) -> None:
        """Return the fleet's demand budget this process took last: its refetch was never sent."""
        mark, self._budget_mark = self._budget_mark, None
        if options.shared_cache and mark is not None:
            SharedCache(options.shared_cache).give_back_demand_budget(self.url(), mark)

    def published(self, options: Options, now: Now, into: Refresher, deadline: float) -> KeySet | None:
        """The set that another process's fetch in flight publishes, adopted into ``into`` (until ``deadline``)."""
        assert options.shared_cache
        cache, url = SharedCache(options.shared_cache), self.url()
        return await_fleet(lambda: self._adopt_newer(options, now, into), lambda: cache.locked(url), deadline)

    def stale(self, options: Options, now: Now, error: BaseException) -> KeySet | None:
        """The fleet's last good set if still within ``JWKS_STALE_IF_ERROR`` of its expiry -- only when this
        process's own fetch failed (``error``), never after a wait for another process's lock: a lock a
        cache writer replays must not turn a replayed old entry into the last good set."""
        client = self._client_ref()
        if not options.shared_cache or client is None or not own_fetch_failed(error):
            return None
        url = str(client.uri)
        entry = SharedCache(options.shared_cache).stale(url, now[1], options)
        if entry is None:
            return None
        try:
            keyset = from_entry(entry, url, now)
        except Exception:  # noqa: BLE001 - an unusable entry is no fallback
            return None
        logger.warning(
            "JWKS refresh for %s failed; serving the shared cache's last good set (expired %.0f s ago)",
            safe_url(url),
            now[1] - entry["expires"],
        )
        return keyset


def _within(timeout: float | None, fetch: Callable[[], KeySet]) -> KeySet:
    """``fetch()`` with only ``timeout`` seconds left (what a shared-cache lock wait left of the deadline):
    a request deadline, so the transport judges what is left against the configured ``JWKS_TIMEOUT``
    (too little, and the fetch is not sent) and its messages name that ``JWKS_TIMEOUT``."""
    if timeout is None:
        return fetch()
    with request_deadline(timeout):
        return fetch()
