"""One fetch of a client's key set from the IdP: a conditional request (``ETag`` /
``Last-Modified``) unless a kid is missing, a ``304`` answered with the set already held, the
lifetime from ``Cache-Control``, and PyJWT's own cache kept in step for direct users of the client."""

from __future__ import annotations

from typing import Any

from .conf import Options
from .diagnostics import safe_url
from .keyset import KeySet, build_keyset
from .transport import cache_lifetime, fetch

__all__ = ["fetch_keyset"]


def fetch_keyset(
    client: Any, options: Options, previous: KeySet | None, now: tuple[float, float], *, demand: bool = False
) -> KeySet:
    """``client``'s key set from its IdP; ``previous`` is the set held (revalidated unless ``demand``)."""
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
