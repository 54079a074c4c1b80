"""Fixers on ``rest_framework_simplejwt.authentication.JWTAuthentication``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ..diagnostics import causes, describe, fingerprint, promote_context, redact, root_cause
from ..failures import classify
from ..registry import DIAGNOSTICS, also, fixer

__all__ = ["get_validated_token", "pick_cause", "record_failure"]

logger = logging.getLogger("simplejwt_patches.auth")

#: ``(token class name, TokenError)`` recorded while ``get_validated_token`` tries each class
#: (private to the ``auth.validated-token.cause`` fixer, whose two patches share it).
FAILURES: ContextVar[list[tuple[str, BaseException]] | None] = ContextVar("simplejwt_patches_failures", default=None)


def pick_cause(failures: list[tuple[str, BaseException]]) -> BaseException | None:
    """The most informative failure: the one with the longest cause chain (first on ties)."""
    best: BaseException | None = None
    depth = 0
    for _, failure in failures:
        promote_context(failure)
        d = sum(1 for _ in causes(failure))
        if d > depth:
            best, depth = failure, d
    return best


def _report(
    instance: Any, exc: BaseException, cause: BaseException | None, failures: list[tuple[str, BaseException]], raw: Any
) -> None:
    """Send ``token_rejected`` and, when enabled, add each failure's short reason to the body."""
    from .. import signals
    from ..conf import get_options

    expose = get_options().expose_error_detail
    if not signals.token_rejected.receivers and not expose:
        return
    code, reason = classify(cause or exc)
    facts = fingerprint(raw)
    from rest_framework_simplejwt.settings import api_settings

    from ..realms import selected_issuer

    signals.send(
        signals.token_rejected,
        instance,
        reason_code=code,
        reason=redact(reason, raw),
        kid=facts.get("kid"),
        token_classes=[name for name, _ in failures],
        root_cause=type(root_cause(exc)).__name__,
        fingerprint=facts,
        issuer=selected_issuer(raw, get_options(), api_settings.ISSUER),
    )
    if expose:
        _expose(exc, failures, raw)


def _expose(exc: BaseException, failures: list[tuple[str, BaseException]], raw: Any) -> None:
    from rest_framework.exceptions import ErrorDetail

    detail = getattr(exc, "detail", None)
    messages = detail.get("messages") if isinstance(detail, dict) else None
    if not isinstance(messages, list):
        return
    by_class = {name: failure for name, failure in failures}
    for message in messages:
        if isinstance(message, dict) and str(message.get("token_class")) in by_class:
            _, reason = classify(by_class[str(message["token_class"])])
            message["reason"] = ErrorDetail(redact(reason, raw), code="reason")


def _tried(exc: BaseException) -> list[str]:
    detail = getattr(exc, "detail", None)
    messages = detail.get("messages", []) if isinstance(detail, dict) else []
    tried = []
    for m in messages:
        if isinstance(m, dict):
            tried.append(f"{m.get('token_class')}({m.get('token_type')}): {m.get('message')}")
    return tried


@fixer(
    "auth.validated-token.cause",
    target="rest_framework_simplejwt.authentication:JWTAuthentication.get_validated_token",
    params=("self", "raw_token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0
    kind=DIAGNOSTICS,
)
def get_validated_token(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Chain ``InvalidToken`` to the real cause and log the rejection at DEBUG.

    Why: on every release ``get_validated_token`` collects ``e.args[0]`` of each ``TokenError``
    and raises ``InvalidToken`` after the loop, with neither ``__cause__`` nor a useful
    ``__context__``: "Token is invalid or expired" and nothing else (upstream #832, #773). The
    response body is left exactly as upstream writes it; only the exception chain and the log
    (token fingerprint, never the token) gain the cause. A second patch on ``Token.__init__``
    records each ``TokenError`` while ``get_validated_token`` collects them.
    """
    failures: list[tuple[str, BaseException]] = []
    reset = FAILURES.set(failures)
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        from rest_framework_simplejwt.exceptions import InvalidToken

        if not isinstance(exc, InvalidToken):
            raise
        cause = pick_cause(failures)
        if cause is not None and exc.__cause__ is None:
            exc.__cause__ = cause
        raw = args[0] if args else kwargs.get("raw_token")
        _report(instance, exc, cause, failures, raw)  # JWKS_FAILURE_STATUS: the outage.failure-status fixer
        if logger.isEnabledFor(logging.DEBUG):
            root = root_cause(exc)
            logger.debug(
                "token rejected: tried %s; root cause %s: %s; token %s",
                _tried(exc),
                root.__class__.__name__,
                redact(str(root) or describe(root), raw)[:300],
                fingerprint(raw),
            )
        raise
    finally:
        FAILURES.reset(reset)


@also(
    "auth.validated-token.cause",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
)
def record_failure(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Remember each ``TokenError`` for ``get_validated_token``, which keeps only ``e.args[0]``."""
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        from rest_framework_simplejwt.exceptions import TokenError

        failures = FAILURES.get()
        if isinstance(exc, TokenError) and failures is not None and not any(f is exc for _, f in failures):
            failures.append((type(instance).__name__, exc))
        raise
