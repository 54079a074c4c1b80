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

__all__ = ["fetch_data", "get_jwk_set", "get_signing_key_from_jwt"]

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
    state.attempts += 1
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
    if getattr(instance, "jwk_set_cache", None) is None or not logger.isEnabledFor(logging.DEBUG):
        return wrapped(*args, **kwargs)  # PyJWT < 2.5: hits are logged by refresh-unknown-kid
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
        return f"PyJWT {caps.version} has a key-set cache with a lifespan and refreshes on an unknown kid"
    return None


def _clear_key_cache(client: Any) -> None:
    """Empty PyJWT 2.1-2.4's per-instance ``lru_cache`` on ``get_signing_key``, if any."""
    cached = vars(client).get("get_signing_key")
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


@fixer(
    "pyjwt.client.refresh-unknown-kid",
    target="jwt.jwks_client:PyJWKClient.get_signing_key_from_jwt",
    params=("self", "token"),
    simplejwt=">=5.0.0,<6",  # INCLUDING 5.0.0, EXCLUDING 6.0; PyJWT < 2.5 only
    not_needed=_refreshes_itself,
)
def get_signing_key_from_jwt(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """On PyJWT < 2.5: expire cached keys after the lifespan and refetch once on an unknown kid.

    Why: PyJWT 2.1-2.4 construct ``PyJWKClient`` with ``cache_keys=True``: an ``lru_cache`` on
    ``get_signing_key`` that never expires, so a key removed from the IdP stays trusted for the
    life of the process; 2.0 has no cache at all and fetches per token. None of them refetch on
    an unknown kid. Here the per-instance key cache is emptied once our key set is older than
    ``JWKS_CACHE_LIFESPAN``, and a kid missing from a *cached* set triggers one fresh fetch, as
    PyJWT 2.5+ do on their own. A kid still unknown after a fetch is rejected without retrying.
    """
    state = state_of(instance)
    if state is None:
        return wrapped(*args, **kwargs)
    import jwt

    if state.fresh_payload(get_options().cache_lifespan) is None:
        _clear_key_cache(instance)
    attempts = state.attempts
    try:
        key = wrapped(*args, **kwargs)
    except jwt.PyJWKClientError:
        if state.attempts != attempts:
            raise  # the network was asked during this call: nothing fresher to be had
        state.invalidate()
        _clear_key_cache(instance)
        return wrapped(*args, **kwargs)
    if state.attempts == attempts and logger.isEnabledFor(logging.DEBUG):
        logger.debug("JWKS cache hit for %s (kid %s)", safe_url(str(instance.uri)), getattr(key, "key_id", None))
    return key
