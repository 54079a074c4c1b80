"""A realm's discovery document shared by the fleet (``JWKS_SHARED_CACHE``), as the key set is.

A process that fetched an issuer's discovery document publishes it (its ``issuer`` and ``jwks_uri``)
through :class:`~simplejwt_patches.shared_cache.SharedDocuments`: the key set's sealing (HMAC keyed
from ``SECRET_KEY`` over the discovery URL, the fetch time and the generation; raw bytes, never
unpickled) and ageing rules, under a key and a seal of its own. Another process adopts it

* instead of fetching, while it was fetched at most ``min(lifetime, JWKS_CACHE_LIFESPAN)`` ago
  (a cold worker of a fleet that has it asks the IdP nothing), and
* when its own fetch failed (a worker started or restarted during an outage), while it was fetched
  at most ``min(lifetime, JWKS_CACHE_LIFESPAN) + JWKS_STALE_IF_ERROR`` ago,

never when it is older than the document the process holds, and only after the document's own rules
(:meth:`~simplejwt_patches.discovery.Discovery` passes them in: the exact configured ``issuer``, an
http(s) ``jwks_uri`` that does not downgrade https) hold for it again. An entry sealed for another
discovery URL (another realm's) does not open; one that fails the rules is ignored (WARNING once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .conf import Options
from .failures import JWKSFailure
from .shared_cache import SharedDocuments, adoptable

__all__ = ["Check", "Document", "FleetDocument"]

#: The document's rules: the ``jwks_uri`` of a document (its JSON object), else :class:`JWKSFailure`.
Check = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Document:
    """One discovery document as kept: its two members, when it was fetched (wall clock), for how
    long it is good, and its place in the fleet's sequence of published documents."""

    issuer: str
    jwks_uri: str
    fetched_wall: float
    lifetime: float
    generation: int = 0

    @property
    def storable(self) -> bool:
        return True

    @property
    def expires_wall(self) -> float:
        return self.fetched_wall + self.lifetime

    def entry(self) -> dict[str, Any]:
        """What goes into the shared cache (sealed with the discovery URL by ``shared_cache.seal_entry``)."""
        return {
            "generation": self.generation,
            "payload": {"issuer": self.issuer, "jwks_uri": self.jwks_uri},
            "fetched": self.fetched_wall,
            "expires": self.expires_wall,
            "lifetime": self.lifetime,
            "etag": None,
            "last_modified": None,
        }

    def with_generation(self, generation: int) -> Document:
        return replace(self, generation=generation)


class FleetDocument:
    """The fleet's copy of the discovery document at ``url``, held to ``check`` on every adoption."""

    def __init__(self, url: str, check: Check) -> None:
        self.url = url
        self._check = check
        self._generation = 0  # the highest generation this process saw published

    def fresh(self, options: Options, seen: Document | None, wall: float) -> Document | None:
        """The fleet's document to use instead of a fetch: newer than ``seen`` and fresh enough."""
        assert options.shared_cache
        store = SharedDocuments(options.shared_cache)
        entry = store.get(self.url)
        if entry is None:
            return None
        self._generation = max(self._generation, entry["generation"])
        return self._document(store, entry) if adoptable(entry, seen, wall, options) else None

    def stale(self, options: Options, seen: Document | None, wall: float) -> Document | None:
        """The fleet's last good document for a process whose own fetch failed (never older than ``seen``)."""
        assert options.shared_cache
        store = SharedDocuments(options.shared_cache)
        entry = store.stale(self.url, wall, options)
        if entry is None or (seen is not None and not _newer(entry, seen)):
            return None
        return self._document(store, entry)

    def publish(self, options: Options, document: Document, wall: float) -> Document:
        """Publish a document this process fetched, as the fleet's next generation (returned)."""
        assert options.shared_cache
        document = document.with_generation(max(self._generation, document.generation) + 1)
        self._generation = document.generation
        ttl = document.expires_wall - wall + options.stale_if_error
        SharedDocuments(options.shared_cache).put(self.url, document, ttl)
        return document

    def _document(self, store: SharedDocuments, entry: dict[str, Any]) -> Document | None:
        payload = entry["payload"]
        try:
            jwks_uri = self._check(payload)
        except JWKSFailure as failure:  # sealed, but not a document this realm may use: never adopted
            store.reject(self.url, f"it fails the discovery rules: {failure.detail}")
            return None
        return Document(payload["issuer"], jwks_uri, entry["fetched"], entry["lifetime"], entry["generation"])


def _newer(entry: dict[str, Any], seen: Document) -> bool:
    return bool(entry["fetched"] > seen.fetched_wall and entry["generation"] >= seen.generation)
