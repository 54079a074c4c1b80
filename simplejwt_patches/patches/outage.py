"""Fixer answering JWKS outages with ``JWKS_FAILURE_STATUS`` wherever SimpleJWT validates a token."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ..failures import classify
from ..registry import FUNCTIONAL, also, complete_lazy, fixer

__all__ = ["OUTAGE_CODES", "record_token_error", "serializer_validate", "unavailable", "validated_token"]

#: ``token_rejected`` reason codes of a key set that cannot be had (the IdP, not the token).
OUTAGE_CODES = ("jwks_unavailable", "jwks_invalid")

#: ``TokenError`` s raised while ``get_validated_token`` tries each token class (private to this fixer,
#: whose patches share it; SimpleJWT keeps only ``e.args[0]`` of each).
_TOKEN_ERRORS: ContextVar[list[BaseException] | None] = ContextVar("simplejwt_patches_outage", default=None)


def unavailable(*candidates: BaseException | None) -> tuple[BaseException, BaseException] | None:
    """``(the 503 to raise, its cause)`` when ``JWKS_FAILURE_STATUS = 503`` and a candidate is a key-set
    outage (the first one that is), else ``None``."""
    from ..conf import get_options

    options = get_options()
    if options.failure_status != 503:
        return None
    for cause in candidates:
        if cause is not None and classify(cause)[0] in OUTAGE_CODES:
            from ..exceptions import JWKSUnavailable

            return JWKSUnavailable(wait=max(1, math.ceil(options.refetch_cooldown))), cause
    return None


@fixer(
    "outage.failure-status",
    target="rest_framework_simplejwt.authentication:JWTAuthentication.get_validated_token",
    params=("self", "raw_token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0 (every release so far)
    kind=FUNCTIONAL,
)
def validated_token(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Answer a JWKS outage with ``JWKS_FAILURE_STATUS`` (503 + ``Retry-After``) on the API and on
    SimpleJWT's own token views alike.

    Why: on every release SimpleJWT turns any ``TokenError`` into a 401, so with
    ``JWKS_FAILURE_STATUS = 503`` an unreachable (or unusable) key set must be recognised where
    SimpleJWT validates a token: ``JWTAuthentication.get_validated_token`` (the API; its
    ``InvalidToken`` carries no cause, so this fixer's ``Token.__init__`` patch records each
    ``TokenError``) and the ``validate`` of ``TokenVerifySerializer``, ``TokenRefreshSerializer`` and
    ``TokenRefreshSlidingSerializer`` (behind ``TokenVerifyView``, ``TokenRefreshView`` and
    ``TokenRefreshSlidingView``, whose ``post`` turns a ``TokenError`` into a 401). The obtain
    serializers validate no token. With the default ``401`` nothing changes; token problems
    (expired, bad signature, unknown kid) stay 401 everywhere.
    """
    errors: list[BaseException] = []
    reset = _TOKEN_ERRORS.set(errors)
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        from rest_framework_simplejwt.exceptions import InvalidToken

        answer = unavailable(exc.__cause__, *errors) if isinstance(exc, InvalidToken) else None
        if answer is None:
            raise
        raise answer[0] from answer[1]
    finally:
        _TOKEN_ERRORS.reset(reset)


@also(
    "outage.failure-status",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
)
def record_token_error(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Remember each ``TokenError`` while ``get_validated_token`` runs (it keeps only ``e.args[0]``).

    Elsewhere, a ``TokenError`` raised for a token serializer's ``validate`` that should have been wrapped
    but was not (its module imported by a path the lazy patch's post-import hook missed: a finder inserted
    before wrapt's, ``sys.modules`` injection) wraps the serializers now and is answered as they would."""
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        from rest_framework_simplejwt.exceptions import TokenError

        errors = _TOKEN_ERRORS.get()
        if isinstance(exc, TokenError) and errors is not None:
            errors.append(exc)
        elif isinstance(exc, TokenError) and _called_by(complete_lazy()):
            answer = unavailable(exc)
            if answer is not None:
                raise answer[0] from answer[1]
        raise


def _called_by(functions: tuple[Any, ...]) -> bool:
    """Whether one of ``functions`` is among the few callers above this wrapper (bounded)."""
    codes = {getattr(f, "__code__", None) for f in functions} - {None}
    frame = inspect.currentframe()
    for _ in range(12):
        if frame is None or not codes:
            return False
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def serializer_validate(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A token serializer's ``validate``: a ``TokenError`` caused by a JWKS outage becomes the 503."""
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        from rest_framework_simplejwt.exceptions import TokenError

        answer = unavailable(exc) if isinstance(exc, TokenError) else None
        if answer is None:
            raise
        raise answer[0] from answer[1]


# Lazy: DRF calls ``self.validate(attrs)``, found on the serializer class at call time, so wrapping
# the methods when SimpleJWT's serializers module is first imported misses no caller, and ``apply()``
# does not import it (with Django REST framework's serializer stack behind it, ~9 ms) for a project
# that never uses the token views.
for _serializer in ("TokenVerifySerializer", "TokenRefreshSerializer", "TokenRefreshSlidingSerializer"):
    also(
        "outage.failure-status",
        target=f"rest_framework_simplejwt.serializers:{_serializer}.validate",
        params=("self", "attrs"),
        lazy=True,
    )(serializer_validate)
