"""The project's authentication stack: which SimpleJWT classes judge, and how they look users up.

Used by the doctor and by the system check W040 (:func:`simplejwt_patches.checks.check_user_lookup`).
Reads DRF's and SimpleJWT's own settings objects; imports neither the doctor's report nor its token
checks.
"""

from __future__ import annotations

from typing import Any

from ..providers import recognise

__all__ = [
    "api_settings",
    "configured_auth_classes",
    "dotted",
    "integer_user_id_field",
    "looks_users_up",
    "user_lookup_problem",
]


def api_settings() -> Any:
    """SimpleJWT's settings as ``JWTAuthentication`` itself reads them.

    SimpleJWT rebinds only its settings module's global on ``setting_changed``; in a running
    project both are the same object.
    """
    from rest_framework_simplejwt import authentication

    return getattr(authentication, "api_settings")  # noqa: B009 - not re-exported for type checkers


def dotted(cls: type) -> str:
    """``module.QualName`` of a class, as the doctor names the classes that judge."""
    return f"{cls.__module__}.{cls.__qualname__}"


def configured_auth_classes() -> list[type]:
    """SimpleJWT's authentication classes among DRF's ``DEFAULT_AUTHENTICATION_CLASSES``, in order.

    SimpleJWT's are the subclasses of ``JWTAuthentication`` (``JWTStatelessUserAuthentication``
    included). Read through DRF's own ``api_settings``, which imports them as requests do.
    """
    from rest_framework.settings import api_settings as drf_settings
    from rest_framework_simplejwt.authentication import JWTAuthentication

    classes: list[Any] = list(drf_settings.DEFAULT_AUTHENTICATION_CLASSES)
    return [c for c in classes if isinstance(c, type) and issubclass(c, JWTAuthentication)]


def looks_users_up(auth_class: type) -> bool:
    """Whether ``auth_class`` uses upstream ``JWTAuthentication.get_user`` (a database lookup)."""
    from rest_framework_simplejwt.authentication import JWTAuthentication

    # JWTStatelessUserAuthentication (JWTTokenUserAuthentication before 5.2) defines its own get_user.
    for klass in auth_class.__mro__:  # the first class defining get_user decides
        if klass is JWTAuthentication:
            return True
        if "get_user" in vars(klass):
            return False
    return False


def integer_user_id_field(simple_jwt: Any) -> str | None:
    """The user model's ``USER_ID_FIELD`` description when it is an integer field, else ``None``."""
    from django.contrib.auth import get_user_model
    from django.db import models

    try:
        model = get_user_model()
        field = model._meta.get_field(str(simple_jwt.USER_ID_FIELD))
    except Exception:  # noqa: BLE001 - no user model or no such field: another problem
        return None
    if isinstance(field, (models.IntegerField, models.AutoField)):
        return f"{type(field).__name__} {model._meta.label}.{field.name}"
    return None


def user_lookup_problem(simple_jwt: Any, classes: list[type]) -> str | None:
    """Why every IdP token would fail the user lookup, or ``None`` (system check W040, doctor).

    ``JWK_URL`` set (an external IdP), ``USER_ID_CLAIM = "sub"`` (an opaque id, a UUID for Keycloak),
    an integer ``USER_ID_FIELD``, and a class among ``classes`` that looks users up in the database.
    """
    if not getattr(simple_jwt, "JWK_URL", None) or simple_jwt.USER_ID_CLAIM != "sub":
        return None
    provider = recognise(simple_jwt.JWK_URL, getattr(simple_jwt, "ISSUER", None))
    if provider.sub_is_integer:  # django-oauth-toolkit: sub = str(user.pk)
        return None
    field = integer_user_id_field(simple_jwt)
    lookups = [c for c in classes if looks_users_up(c)]
    if field is None or not lookups:
        return None
    names = ", ".join(dotted(c) for c in lookups)
    looked_up = f"USER_ID_CLAIM 'sub' is looked up in USER_ID_FIELD {simple_jwt.USER_ID_FIELD!r} ({field}) by {names}"
    return provider.sub_lookup_problem(looked_up)
