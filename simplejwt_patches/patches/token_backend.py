"""Fixers on ``rest_framework_simplejwt.backends.TokenBackend``."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..clients import adopt
from ..diagnostics import promote_context
from ..registry import DIAGNOSTICS, FUNCTIONAL, fixer

__all__ = ["decode", "get_verifying_key", "invalid_message"]


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
    from rest_framework_simplejwt.exceptions import TokenBackendError

    try:
        return wrapped(*args, **kwargs)
    except TokenBackendError:
        raise
    except _jwks_errors() as exc:
        raise TokenBackendError(invalid_message()) from promote_context(exc)


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
    from rest_framework_simplejwt.exceptions import TokenBackendError

    try:
        return wrapped(*args, **kwargs)
    except TokenBackendError as exc:
        promote_context(exc)
        raise
