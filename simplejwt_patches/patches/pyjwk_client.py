"""Fixers on PyJWT's ``jwt.jwks_client.PyJWKClient`` (managed instances only).

Each wrapper is :func:`~simplejwt_patches.clients.managed_only`: any ``PyJWKClient`` that is not
SimpleJWT's runs the original method untouched.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

from ..clients import ClientState, managed_only
from ..conf import get_options
from ..registry import FUNCTIONAL, fixer
from ..transport import fetch_payload

__all__ = ["cached_kid", "fetch_data", "get_signing_key_from_jwt"]

#: A header segment the warm path reads itself: plain base64url, no padding, the size of a real header.
_HEADER = re.compile(r"[A-Za-z0-9_-]{2,1024}")
_HEADER_BYTES = re.compile(rb"[A-Za-z0-9_-]{2,1024}")
#: Header segment -> its kid: a fleet's tokens share a handful of headers (alg, kid, typ), so the warm
#: path decodes each once. Bounded; cleared when full.
_kids: dict[bytes, str] = {}
_KIDS_MAX = 256


@fixer(
    "pyjwt.client.transport",
    target="jwt.jwks_client:PyJWKClient.fetch_data",
    params=("self",),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0 (every 5.x release)
    kind=FUNCTIONAL,
    requires=("backend.verifying-key.jwks-errors",),  # which puts SimpleJWT's client under management
)
@managed_only
def fetch_data(
    wrapped: Callable[..., Any], state: ClientState, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Fetch SimpleJWT's JWKS with the configured headers, timeout, TLS, proxy and size cap.

    Why: SimpleJWT builds ``PyJWKClient(jwk_url)`` with no options, so urllib sends
    ``User-Agent: Python-urllib/3.x`` (403 from many WAF/CDN-fronted Keycloaks, upstream issues
    #832/#773) and waits 30 s (PyJWT >= 2.7) or without limit (< 2.7). PyJWT only grew ``headers``/
    ``timeout`` in 2.7 and ``ssl_context`` in 2.8 and never supported a proxy, so the request is
    made here on every PyJWT. Failures are raised as PyJWT's own exception classes ``from`` the
    urllib/ssl/json error (PyJWT 2.5-2.9 drop that cause; 2.0-2.4 let urllib errors escape raw and
    reject a whole Keycloak key set because of its RSA-OAEP key). PyJWT's cache is filled only on
    success (2.5-2.12 wipe it on failure). The key source (``pyjwt.client.key-source``) uses the same
    transport; this fixer covers anything that still calls ``fetch_data`` on SimpleJWT's client.
    """
    payload = fetch_payload(instance, get_options())
    cache = getattr(instance, "jwk_set_cache", None)
    if cache is not None:
        cache.put(payload)
    if hasattr(instance, "_last_successful_fetch"):
        # PyJWT >= 2.14 starts its unknown-kid cooldown from here, as its own fetch_data does.
        instance._last_successful_fetch = time.monotonic()
    return payload


@fixer(
    "pyjwt.client.key-source",
    target="jwt.jwks_client:PyJWKClient.get_signing_key_from_jwt",
    params=("self", "token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0
    kind=FUNCTIONAL,
    requires=("backend.verifying-key.jwks-errors",),  # which puts SimpleJWT's client under management
)
@managed_only
def get_signing_key_from_jwt(
    wrapped: Callable[..., Any], state: ClientState, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Look signing keys up through a resilient, single-flight key source.

    Why: PyJWT's lookup is the weak point of SimpleJWT's JWKS support. 2.0 fetches per token;
    2.1-2.4 cache keys forever (``cache_keys=True`` lru_cache) and reject Keycloak's set over its
    RSA-OAEP key; 2.5-2.13 refetch on *every* unknown kid (one request can make the API hammer the
    IdP) and wipe or bypass the cache on failure; 2.14+ count only successful fetches toward their
    30 s cooldown and hold one global lock across network I/O, so one hanging refresh stalls every
    token check. None honours Cache-Control, serves a stale set when the IdP is down, or shares a
    set between processes. See :mod:`simplejwt_patches.keysource` for the policy that replaces it.
    """
    token = args[0] if args else kwargs["token"]
    source = state.key_source()
    kid = cached_kid(token, source.keyset)
    if kid is None:
        import jwt

        kid = jwt.get_unverified_header(token).get("kid")
    return source.get_signing_key(kid)


def cached_kid(token: Any, keyset: Any) -> str | None:
    """The token's ``kid`` when it names a key of the fresh ``keyset``, read from the header segment only.

    PyJWT's ``get_unverified_header`` decodes and checks every segment of the token (on PyJWT 2.15
    character by character, most of a warm request's cost) only for ``decode`` to do it all again.
    When the header is plain base64url JSON naming a key of the unexpired set, this key is the one
    PyJWT's header would name, and anything else wrong with the token is raised by ``jwt.decode``
    exactly as ``get_unverified_header`` would have raised it. Anything else (``None``): PyJWT reads
    the header, as before.
    """
    if keyset is None or time.monotonic() >= keyset.expires_mono:
        return None
    segment = b""
    if isinstance(token, str):
        text, dot, _ = token.partition(".")
        if dot and _HEADER.fullmatch(text):
            segment = text.encode("ascii")
    elif isinstance(token, bytes):
        head, separator, _ = token.partition(b".")
        if separator and _HEADER_BYTES.fullmatch(head):
            segment = head
    if not segment:
        return None
    kid = _kids.get(segment)
    if kid is None:
        kid = _header_kid(segment)
        if kid is None:
            return None
        if len(_kids) >= _KIDS_MAX:  # a flood of made-up headers: start over (bounded memory)
            _kids.clear()
        _kids[segment] = kid
    return kid if kid in keyset.keys else None


def _header_kid(segment: bytes) -> str | None:
    """The string ``kid`` of a plain base64url header segment, else ``None``."""
    if len(segment) % 4 == 1:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None
