"""Fixers on ``rest_framework_simplejwt.tokens.Token``."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ..diagnostics import promote_context
from ..registry import fixer

__all__ = ["FAILURES", "chain_cause", "force_verify", "record_failure"]

#: ``(token class name, TokenError)`` recorded while ``get_validated_token`` tries each class.
FAILURES: ContextVar[list[tuple[str, BaseException]] | None] = ContextVar("simplejwt_patches_failures", default=None)


def _token_error() -> type[BaseException]:
    from rest_framework_simplejwt.exceptions import TokenError

    return TokenError


@fixer(
    "token.init.chain-cause",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
    simplejwt=">=5.0.0,<5.5.1",  # INCLUDING 5.0.0, EXCLUDING 5.5.1 (which added `from e`)
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


@fixer(
    "token.init.record-failure",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
    simplejwt=">=5.0.0,<6",  # INCLUDING 5.0.0, EXCLUDING 6.0
)
def record_failure(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Remember each ``TokenError`` for ``JWTAuthentication.get_validated_token``.

    Why: on every release ``get_validated_token`` keeps only ``e.args[0]`` of each failure and
    raises ``InvalidToken`` after its loop, so the exceptions are gone by the time DRF sees the
    401. Recording them here (only while a ``get_validated_token`` call is collecting) lets the
    ``auth.validated-token.cause`` fixer chain the 401 to its real cause.
    """
    try:
        return wrapped(*args, **kwargs)
    except _token_error() as exc:
        failures = FAILURES.get()
        if failures is not None and not any(f is exc for _, f in failures):
            failures.append((type(instance).__name__, exc))
        raise


_warned_unverified = False


@fixer(
    "token.init.force-verify",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
    simplejwt="==5.2.1",  # INCLUDING 5.2.1, EXCLUDING 5.2.2 (which reverted the change)
)
def force_verify(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Always verify signature and expiry of tokens authenticating a request.

    Why: 5.2.1's ``get_validated_token`` calls ``AuthToken(raw_token, api_settings.VERIFYING_KEY
    is not None)``: with ``VERIFYING_KEY = None`` - natural when keys come from ``JWK_URL`` - every
    token is accepted *unverified* (forged signature, long expired). 5.2.2 reverted it. Inside
    ``get_validated_token`` (where ``record-failure`` is collecting) ``verify`` is forced to True.
    """
    global _warned_unverified
    verify = args[1] if len(args) > 1 else kwargs.get("verify", True)
    if verify is False and FAILURES.get() is not None:
        if not _warned_unverified:
            _warned_unverified = True
            import logging

            logging.getLogger("simplejwt_patches").warning(
                "SimpleJWT 5.2.1 asked to skip token verification (VERIFYING_KEY is None); "
                "verifying anyway (token.init.force-verify)"
            )
        token = args[0] if args else kwargs.get("token")
        return wrapped(token, True)
    return wrapped(*args, **kwargs)
