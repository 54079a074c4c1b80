"""Fixers on PyJWT's ``jwt.jwks_client.PyJWKClient`` (managed instances only).

Each wrapper first asks whether the instance is one of SimpleJWT's clients
(:func:`simplejwt_patches.jwks.state_of`); any other ``PyJWKClient`` in the process runs the
original method untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..conf import get_options
from ..diagnostics import safe_url
from ..jwks import fetch_payload, state_of, sync
from ..registry import fixer
from ..versions import PyJWTCaps

__all__ = ["fetch_data", "get_jwk_set", "get_signing_key"]

logger = logging.getLogger("simplejwt_patches.jwks")


@fixer(
    "pyjwt.client.transport",
    target="jwt.jwks_client:PyJWKClient.fetch_data",
    params=("self",),
    simplejwt=">=5.0.0,<6",  # INCLUDING 5.0.0, EXCLUDING 6.0 (every 5.x release)
)
def fetch_data(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Fetch SimpleJWT's JWKS with the configured headers, timeout, TLS, proxy and size cap.

    Why: SimpleJWT builds ``PyJWKClient(jwk_url)`` with no options, so urllib sends
    ``User-Agent: Python-urllib/3.x`` (403 from many WAF/CDN-fronted Keycloaks, upstream issues
    #832/#773) and waits 30 s (PyJWT >= 2.7) or forever (< 2.7). PyJWT only grew ``headers``/
    ``timeout`` in 2.7 and ``ssl_context`` in 2.8 and never supported a proxy, so the request is
    made here on every PyJWT. Failures are raised as PyJWT's own exception classes ``from`` the
    urllib/ssl/json error (PyJWT 2.5-2.9 drop that cause; 2.0-2.4 let urllib errors escape raw and
    reject a whole Keycloak key set because of its RSA-OAEP key). The PyJWT cache is filled only on
    success (2.5-2.12 wipe it on failure); on PyJWT < 2.5, which has no cache, ours is used.
    """
    state = state_of(instance)
    if state is None:
        return wrapped(*args, **kwargs)
    options = get_options()
    cache = getattr(instance, "jwk_set_cache", None)
    if cache is None:
        payload = state.fresh_payload(options.cache_lifespan)
        if payload is not None:
            return payload
    payload = fetch_payload(instance, options)
    state.fetch_count += 1
    if cache is not None:
        cache.put(payload)
    else:
        state.payload, state.fetched_at = payload, time.monotonic()
    if hasattr(instance, "_last_successful_fetch"):
        # PyJWT >= 2.14 starts its unknown-kid cooldown from here, as its own fetch_data does.
        instance._last_successful_fetch = time.monotonic()
    return payload


@fixer(
    "pyjwt.client.cache",
    target="jwt.jwks_client:PyJWKClient.get_jwk_set",
    params=("self",),
    simplejwt=">=5.0.0,<6",  # INCLUDING 5.0.0, EXCLUDING 6.0
)
def get_jwk_set(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Apply ``JWKS_CACHE_LIFESPAN`` to SimpleJWT's client and log cache hits.

    Why: SimpleJWT never passes ``lifespan``, so PyJWT's 300 s default (2.5+) cannot be tuned;
    the lifespan lives on the client's ``JWKSetCache`` and is re-synced lazily whenever
    ``SIMPLE_JWT_PATCHES`` changes (``override_settings`` included). A hit is logged at DEBUG so
    an operator can tell a cached key set from a fetch.
    """
    state = state_of(instance)
    if state is None:
        return wrapped(*args, **kwargs)
    sync(instance, state)
    if not logger.isEnabledFor(logging.DEBUG):
        return wrapped(*args, **kwargs)
    before = state.fetch_count
    result = wrapped(*args, **kwargs)
    if state.fetch_count == before:
        logger.debug(
            "JWKS cache hit for %s (%d keys)",
            safe_url(str(instance.uri)),
            len(getattr(result, "keys", []) or []),
        )
    return result


def _refreshes_itself(caps: PyJWTCaps) -> str | None:
    if caps.jwk_set_cache:
        return f"PyJWT {caps.version} refreshes the key set on an unknown kid itself"
    return None


@fixer(
    "pyjwt.client.refresh-unknown-kid",
    target="jwt.jwks_client:PyJWKClient.get_signing_key",
    params=("self", "kid"),
    simplejwt=">=5.0.0,<6",  # INCLUDING 5.0.0, EXCLUDING 6.0; PyJWT < 2.5 only
    not_needed=_refreshes_itself,
)
def get_signing_key(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """On PyJWT < 2.5, refetch once when a kid is missing from our cached key set.

    Why: PyJWT 2.0-2.4 have no key-set cache and no refresh; the cache this package adds for them
    (``pyjwt.client.transport``) must not delay a key rotation by a whole lifespan, so a kid that
    is not in a *cached* set triggers one fresh fetch, as PyJWT 2.5+ does on its own.
    """
    state = state_of(instance)
    if state is None:
        return wrapped(*args, **kwargs)
    import jwt

    before = state.fetch_count
    try:
        return wrapped(*args, **kwargs)
    except jwt.PyJWKClientError:
        if state.fetch_count != before:
            raise  # the set was fetched for this call already: the kid really is unknown
        state.invalidate()
        return wrapped(*args, **kwargs)
