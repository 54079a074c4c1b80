"""Fixers on ``rest_framework_simplejwt.tokens.Token``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ..diagnostics import promote_context
from ..registry import DIAGNOSTICS, SECURITY, also, fixer

__all__ = ["chain_cause", "force_verify", "verifying_request"]

logger = logging.getLogger("simplejwt_patches")

#: Set while ``JWTAuthentication.get_validated_token`` runs (private to ``token.init.force-verify``).
_AUTHENTICATING: ContextVar[bool] = ContextVar("simplejwt_patches_authenticating", default=False)


def _token_error() -> type[BaseException]:
    from rest_framework_simplejwt.exceptions import TokenError

    return TokenError


@fixer(
    "token.init.chain-cause",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
    simplejwt=">=4.8.0,<5.5.1",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 5.5.1 (which added `from e`)
    kind=DIAGNOSTICS,
)
def chain_cause(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Chain ``TokenError`` to the ``TokenBackendError`` it replaced.

    Why: up to and including 5.5.0 ``Token.__init__`` does ``except TokenBackendError: raise
    TokenError(...)`` without ``from``, cutting the chain between the 401 and the JWKS failure.
    5.5.1 added ``from e``.
    """
    try:
        return wrapped(*args, **kwargs)
    except _token_error() as exc:
        promote_context(exc)
        raise


_warned_unverified = False


@fixer(
    "token.init.force-verify",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
    simplejwt="==5.2.1",  # INCLUDING 5.2.1, EXCLUDING 5.2.2 (which reverted the change)
    kind=SECURITY,
)
def force_verify(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Always verify signature and expiry of tokens authenticating a request.

    Why: 5.2.1's ``get_validated_token`` calls ``AuthToken(raw_token, api_settings.VERIFYING_KEY
    is not None)``: with ``VERIFYING_KEY = None`` - natural when keys come from ``JWK_URL`` - every
    token is accepted *unverified* (forged signature, long expired). 5.2.2 reverted it. While
    ``get_validated_token`` runs (this fixer's own second patch marks it; it depends on no other
    fixer), ``verify=False`` is turned into ``verify=True``; every other argument is passed on as
    given. Tokens built elsewhere with ``verify=False`` on purpose are left alone.
    """
    global _warned_unverified
    verify = args[1] if len(args) > 1 else kwargs.get("verify", True)
    if verify is False and _AUTHENTICATING.get():
        if not _warned_unverified:
            _warned_unverified = True
            logger.warning(
                "SimpleJWT 5.2.1 asked to skip token verification (VERIFYING_KEY is None); "
                "verifying anyway (token.init.force-verify)"
            )
        if len(args) > 1:
            args = (args[0], True, *args[2:])
        else:
            kwargs = {**kwargs, "verify": True}
    return wrapped(*args, **kwargs)


@also(
    "token.init.force-verify",
    target="rest_framework_simplejwt.authentication:JWTAuthentication.get_validated_token",
    params=("self", "raw_token"),
)
def verifying_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Mark the span in which ``token.init.force-verify`` forces verification."""
    reset = _AUTHENTICATING.set(True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _AUTHENTICATING.reset(reset)
