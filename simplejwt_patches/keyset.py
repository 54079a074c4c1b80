"""A parsed JWKS: :class:`KeySet` (the signing keys by kid, when the set expires, its validators and
its place in the fleet's sequence of published sets); :func:`build_keyset` parses a payload once
into its usable signing keys, :func:`from_entry` the payload of a shared-cache entry."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .diagnostics import safe_url
from .failures import JWKSFailure
from .keys import log_dropped, usable_signing_keys

__all__ = ["KeySet", "build_keyset", "from_entry"]

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
    shared: bool = False  # taken from the shared cache (another process fetched it), not fetched here

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


def from_entry(entry: dict[str, Any], url: str, now: tuple[float, float]) -> KeySet:
    """The key set of a shared-cache entry (opened and checked by :mod:`.shared_cache`), parsed again."""
    keyset = build_keyset(
        entry["payload"],
        entry["lifetime"],
        now=now,
        fetched_wall=entry["fetched"],
        etag=entry.get("etag"),
        last_modified=entry.get("last_modified"),
    ).with_generation(entry["generation"])
    keyset = replace(keyset, shared=True)
    logger.debug(
        "JWKS for %s taken from the shared cache (fetched %.0f s ago)", safe_url(url), now[1] - entry["fetched"]
    )
    return keyset
