"""Fixer on ``JWTAuthentication.get_user``: a user id the ORM cannot look up is a 401, not a 500."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from ..diagnostics import fingerprint
from ..failures import TOKEN_REASONS
from ..registry import FUNCTIONAL, fixer

__all__ = ["USER_LOOKUP_FIXES", "UserLookupError", "get_user", "lookup_failed", "user_id_facts"]

logger = logging.getLogger("simplejwt_patches.auth")

#: The ways out, shown in the WARNING, the system check and the doctor.
USER_LOOKUP_FIXES = (
    "use rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication (JWTTokenUserAuthentication "
    "before SimpleJWT 5.2; no database user), "
    "set SIMPLE_JWT['USER_ID_FIELD'] to a field that stores the identity provider's id (e.g. 'username'), "
    "or subclass JWTAuthentication with a get_user that creates users (README: 'How IdP users reach the database')"
)

_LOOKUP_ERRORS: tuple[type[BaseException], ...] | None = None
_warned: dict[tuple[str, str, str], float] = {}
_warned_lock = threading.Lock()
WARN_EVERY = 60.0  # seconds between WARNINGs for the same (claim, field, error): every token hits it


class UserLookupError(LookupError):
    """The token's user id cannot be looked up in ``USER_ID_FIELD`` (type mismatch); carries no id."""

    reason_code = "user_lookup"


def _lookup_errors() -> tuple[type[BaseException], ...]:
    global _LOOKUP_ERRORS
    if _LOOKUP_ERRORS is None:
        from django.core.exceptions import ValidationError

        _LOOKUP_ERRORS = (ValueError, TypeError, OverflowError, RecursionError, ValidationError)
    return _LOOKUP_ERRORS


def user_id_facts(value: Any) -> str:
    """What may be said about a user id without quoting it (it can be personal data): type and length."""
    try:
        size = f" of {len(value)} characters" if isinstance(value, (str, bytes)) else ""
    except Exception:  # noqa: BLE001 - a hostile __len__
        size = ""
    return f"a {type(value).__name__}{size}"


def lookup_failed(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the ORM lookup inside upstream ``get_user``.

    The frame ``get_user`` called must belong to ``django.db`` (the manager's ``get``): errors from
    the project's own code elsewhere (a user model's ``is_active`` property, a custom manager's
    overridden ``get``, signal receivers) are not ours to turn into a 401.
    """
    tb = exc.__traceback__
    for _ in range(256):  # bounded walk
        if tb is None:
            return False
        code = tb.tb_frame.f_code
        if code.co_name == "get_user" and code.co_filename.replace("\\", "/").endswith(
            "rest_framework_simplejwt/authentication.py"
        ):
            inner = tb.tb_next
            name = inner.tb_frame.f_globals.get("__name__", "") if inner is not None else ""
            return isinstance(name, str) and name.startswith("django.db.")
        tb = tb.tb_next
    return False


def _field_label(model: Any, name: str) -> str:
    try:
        return f"{type(model._meta.get_field(name)).__name__} of {model._meta.label}"
    except Exception:  # noqa: BLE001 - a missing field is described by the error itself
        return getattr(getattr(model, "_meta", None), "label", "the user model")


def _warn(claim: str, field: str, value: Any, model: Any, exc: BaseException) -> None:
    key = (claim, field, type(exc).__name__)
    now = time.monotonic()
    with _warned_lock:
        last = _warned.get(key)
        if last is not None and now - last < WARN_EVERY:
            return
        _warned[key] = now
    logger.warning(
        "token rejected (401, user_lookup): USER_ID_CLAIM %r is %s, which USER_ID_FIELD %r (%s) cannot look up "
        "(%s); fix: %s",
        claim,
        user_id_facts(value),
        field,
        _field_label(model, field),
        type(exc).__name__,
        USER_LOOKUP_FIXES,
    )


def _report(instance: Any, validated_token: Any, exc: BaseException) -> None:
    from .. import signals

    if not signals.token_rejected.receivers:
        return
    raw = getattr(validated_token, "token", None)
    facts = fingerprint(raw) if isinstance(raw, (str, bytes)) else {}
    signals.send(
        signals.token_rejected,
        instance,
        reason_code=UserLookupError.reason_code,
        reason=TOKEN_REASONS["user_lookup"],
        kid=facts.get("kid"),
        token_classes=[type(validated_token).__name__],
        root_cause=type(exc).__name__,
        fingerprint=facts,
    )


@fixer(
    "auth.get-user.lookup-error",
    target="rest_framework_simplejwt.authentication:JWTAuthentication.get_user",
    params=("self", "validated_token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0, EXCLUDING 6.0 (every pinned release)
    kind=FUNCTIONAL,
)
def get_user(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Answer 401 ``user_not_found`` when the ORM cannot look the token's user id up.

    Why: every release from 5.0.0 to 5.5.1 catches only ``DoesNotExist`` around
    ``user_model.objects.get(**{USER_ID_FIELD: user_id})``. With Keycloak's ``sub`` (a UUID) and the
    default ``USER_ID_FIELD = "id"`` (an integer primary key) the ORM raises ``ValueError`` (or
    ``ValidationError``/``TypeError``/``OverflowError`` for other types and databases), so *every*
    valid token ends in HTTP 500. A ``sub`` nested a few hundred lists deep (a validly signed token
    whose claims a user can shape) makes Django's ``Query.resolve_lookup_value`` recurse until
    ``RecursionError``: a 500 on every release with PyJWT < 2.10, which does not require ``sub`` to
    be a string (found by the ``fuzz-5.2.0`` session). Those errors, when raised by that lookup
    only, become the same
    ``AuthenticationFailed("User not found", code="user_not_found")`` a missing user gets, chained
    (via :class:`UserLookupError`) to the original, with a WARNING naming ``USER_ID_CLAIM`` and
    ``USER_ID_FIELD`` (never the id itself) and ``token_rejected(reason_code="user_lookup")``.
    """
    try:
        return wrapped(*args, **kwargs)
    except _lookup_errors() as exc:
        if not lookup_failed(exc):
            raise
        from django.utils.translation import gettext_lazy as _
        from rest_framework_simplejwt import authentication
        from rest_framework_simplejwt.exceptions import AuthenticationFailed

        api_settings = getattr(authentication, "api_settings")  # noqa: B009 - what get_user itself read

        validated_token = args[0] if args else kwargs.get("validated_token")
        claim, field = str(api_settings.USER_ID_CLAIM), str(api_settings.USER_ID_FIELD)
        try:
            value = validated_token[claim] if validated_token is not None else None
        except Exception:  # noqa: BLE001 - only described by its type
            value = None
        model = getattr(instance, "user_model", None)
        _warn(claim, field, value, model, exc)
        _report(instance, validated_token, exc)
        lookup = UserLookupError(
            f"USER_ID_CLAIM {claim!r} is {user_id_facts(value)}, which USER_ID_FIELD {field!r} "
            f"({_field_label(model, field)}) cannot look up: {type(exc).__name__}"
        )
        lookup.__cause__ = exc
        raise AuthenticationFailed(cast(Any, _("User not found")), code="user_not_found") from lookup
