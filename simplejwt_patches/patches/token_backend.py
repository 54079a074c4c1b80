"""Fixers on ``rest_framework_simplejwt.backends.TokenBackend``."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..clients import adopt, state_of
from ..diagnostics import promote_context
from ..registry import DIAGNOSTICS, FUNCTIONAL, fixer

__all__ = ["backend_error", "decode", "decode_after_key_replaced", "get_verifying_key", "invalid_message"]


@lru_cache(maxsize=1)
def _jwks_errors() -> tuple[type[BaseException], ...]:
    import jwt

    # PyJWKError/PyJWKSetError: unusable or empty key set (caught by no SimpleJWT release);
    # PyJWKClientError: escapes up to 5.2.0; the rest: PyJWT < 2.5 lets them escape fetch_data raw.
    return (
        jwt.PyJWKClientError,
        jwt.PyJWKSetError,
        jwt.PyJWKError,
        json.JSONDecodeError,
        http.client.HTTPException,
        OSError,
    )


@lru_cache(maxsize=1)
def backend_error() -> type[BaseException]:
    """SimpleJWT's ``TokenBackendError`` (looked up once: an import statement per request costs)."""
    from rest_framework_simplejwt.exceptions import TokenBackendError

    return TokenBackendError


@lru_cache(maxsize=1)
def invalid_message() -> Any:
    from django.utils.translation import gettext_lazy as _
    from rest_framework_simplejwt import exceptions

    # 5.5.0 split "Token is invalid or expired" into "Token is invalid" / "Token is expired".
    if hasattr(exceptions, "TokenBackendExpiredToken"):
        return _("Token is invalid")
    return _("Token is invalid or expired")


@fixer(
    "backend.verifying-key.jwks-errors",
    target="rest_framework_simplejwt.backends:TokenBackend.get_verifying_key",
    params=("self", "token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0
    kind=FUNCTIONAL,
)
def get_verifying_key(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Manage the backend's JWKS client and turn JWKS failures into ``TokenBackendError``.

    Why: up to and including 5.2.0 ``PyJWKClientError`` escapes ``get_verifying_key`` (HTTP 500);
    on every release ``PyJWKSetError``/``PyJWKError`` (an empty or unusable key set) do. Both now
    become the release's own ``TokenBackendError`` message *from* the PyJWT error, so DRF answers
    401 with an unchanged body and the cause stays reachable. This is also where SimpleJWT's
    client is discovered and put under :mod:`simplejwt_patches.jwks` management, whenever the
    backend was created (before or after ``ready()``).
    """
    client = getattr(instance, "jwks_client", None)
    if client is None:
        return wrapped(*args, **kwargs)
    adopt(client)
    try:
        return wrapped(*args, **kwargs)
    except backend_error():  # an except clause's class is only looked up when something was raised
        raise
    except _jwks_errors() as exc:
        raise backend_error()(invalid_message()) from promote_context(exc)


@fixer(
    "backend.decode.chain-cause",
    target="rest_framework_simplejwt.backends:TokenBackend.decode",
    params=("self", "token"),
    simplejwt=">=4.8.0,<5.2.1",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 5.2.1 (which added `from ex`)
    kind=DIAGNOSTICS,
)
def decode(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Chain ``TokenBackendError`` to the PyJWT error ``decode`` caught.

    Why: up to and including 5.2.0 ``decode`` does ``except InvalidTokenError: raise
    TokenBackendError(...)`` without ``from``; the PyJWT error survives only as ``__context__``,
    which DRF and error trackers do not follow. 5.2.1 added ``from ex``.
    """
    try:
        return wrapped(*args, **kwargs)
    except backend_error() as exc:
        promote_context(exc)
        raise


def _replaced_key(instance: Any, exc: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a bad signature was checked with a cached JWKS key that the IdP has since replaced."""
    import jwt

    error = exc.__cause__ or exc.__context__
    if not isinstance(error, jwt.InvalidSignatureError):
        return False
    verify = args[1] if len(args) > 1 else kwargs.get("verify", True)
    client = getattr(instance, "jwks_client", None)
    state = state_of(client) if client is not None and verify else None
    source = state.source if state is not None else None
    keyset = source.keyset if source is not None else None
    if source is None or keyset is None:
        return False
    token = args[0] if args else kwargs.get("token")
    if not isinstance(token, (str, bytes)):
        return False
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except Exception:  # noqa: BLE001 - an undecodable header cannot have failed on a signature
        return False
    cached = keyset.keys.get(kid) if isinstance(kid, str) else None
    return cached is not None and source.refetch_replaced(kid, cached) is not None


@fixer(
    "backend.decode.key-replaced",
    target="rest_framework_simplejwt.backends:TokenBackend.decode",
    params=("self", "token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0
    kind=FUNCTIONAL,
    requires=("pyjwt.client.key-source",),  # whose key set and demand-refetch budget it uses
)
def decode_after_key_replaced(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Verify once more after refetching the JWKS when a cached kid's signature fails.

    Why: no SimpleJWT release (4.8.0 to 5.5.1) and no PyJWT 2.x refetches when a token's kid *is*
    cached but its signature does not verify, so an IdP that replaces a key under the same kid
    (a re-imported or regenerated Keycloak key provider keeps its kid when the key id is set) makes
    every new token fail until the cache expires. Only on ``InvalidSignatureError`` from a JWKS
    backend with verification on: the key source's demand-refetch budget allows at most one refetch
    per ``JWKS_REFETCH_COOLDOWN``, and the token is verified again once, only when the refetched set
    publishes a *different* key under that kid. Anything else re-raises the original error unchanged.
    """
    try:
        return wrapped(*args, **kwargs)
    except backend_error() as exc:
        if not _replaced_key(instance, exc, args, kwargs):
            raise
    return wrapped(*args, **kwargs)
