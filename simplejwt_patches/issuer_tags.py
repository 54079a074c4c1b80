"""Which trusted issuer a managed ``PyJWKClient`` serves (for logs and signals).

A leaf module (no package imports) so that the transport, which sends the fetch signals, and
:mod:`simplejwt_patches.realms`, which creates the realms' clients, can both use it. Weak: a tag
goes with its client.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["issuer_of", "tag_client"]

_issuers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def tag_client(client: Any, issuer: str) -> None:
    """Record that ``client`` fetches the keys of ``issuer``."""
    try:
        _issuers[client] = issuer
    except TypeError:  # not weak-referenceable: left untagged
        pass


def issuer_of(client: Any) -> str | None:
    """The issuer ``client`` serves, or ``None`` (SimpleJWT's single client, or any other)."""
    try:
        return _issuers.get(client)
    except TypeError:
        return None
