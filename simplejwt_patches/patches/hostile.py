"""Fixer turning crashes on hostile tokens into SimpleJWT's own 401."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..diagnostics import describe, redact
from ..registry import FUNCTIONAL, fixer
from .token_backend import invalid_message

__all__ = ["LIBRARY_MODULES", "hostile_input", "raised_in_library"]

logger = logging.getLogger("simplejwt_patches.auth")

#: Modules whose exceptions while decoding and checking a token come from the token, not from the
#: project's own code (a custom token class's ``verify`` raising ValueError is left alone).
LIBRARY_MODULES = (
    "jwt", "rest_framework_simplejwt", "simplejwt_patches", "rest_framework", "django", "cryptography", "wrapt",
    "json", "datetime", "calendar", "time", "base64", "binascii", "encodings", "codecs", "functools",
    "contextlib", "typing", "abc", "re", "hmac", "hashlib", "collections", "_strptime", "zoneinfo",
)  # fmt: skip

_CRASHES = (RecursionError, OverflowError, TypeError, ValueError)


def raised_in_library(exc: BaseException) -> bool:
    """Whether every frame of ``exc``'s traceback belongs to a library module (not the project's code)."""
    tb = exc.__traceback__
    for _ in range(10_000):  # bounded: a RecursionError traceback is ~1,000 frames deep
        if tb is None:
            return True
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] not in LIBRARY_MODULES:
            return False
        tb = tb.tb_next
    return True


@fixer(
    "token.init.hostile-input",
    target="rest_framework_simplejwt.tokens:Token.__init__",
    params=("self", "token", "verify"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0, EXCLUDING 6.0 (every release so far)
    kind=FUNCTIONAL,
)
def hostile_input(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Turn crashes on hostile tokens into ``TokenError`` (a 401), chained to the crash.

    Why: on every release, ``Token.__init__`` catches only ``TokenBackendError`` and its claim
    checks assume well-typed claims, so a token anyone can craft is an HTTP 500:

    * ``exp`` as a numeric string raises ``TypeError`` and ``exp`` of 1e19 ``OverflowError`` in
      ``Token.check_exp`` / ``datetime_from_epoch`` (every SimpleJWT release, every PyJWT);
    * PyJWT 2.0 - 2.4 raise ``RecursionError`` on a header nested ~60,000 levels deep (no valid
      signature needed), and ``TypeError``/``OverflowError`` on ``iat``/``nbf`` of infinity, a list or
      null (``_validate_iat``/``_validate_nbf`` compare them before checking their type).

    Only ``RecursionError``, ``OverflowError``, ``TypeError`` and ``ValueError`` raised entirely
    inside library code (PyJWT, SimpleJWT, Django, the standard library) count; the same errors
    from the project's own code (a custom token class) still propagate. The crash is logged at
    DEBUG (its type and a short description, never the token) and chained as the 401's cause.
    """
    try:
        return wrapped(*args, **kwargs)
    except _CRASHES as exc:
        if not raised_in_library(exc):
            raise
        from rest_framework_simplejwt.exceptions import TokenError

        token = args[0] if args else kwargs.get("token")
        shown = redact(describe(exc), token if isinstance(token, (str, bytes)) else None)[:200]
        logger.debug("hostile token rejected: %s raised while decoding or checking it", shown)
        raise TokenError(invalid_message()) from exc
