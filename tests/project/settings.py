"""Settings for the test/demo project: the Keycloak scenario of the README (tests/test_recipes.py
checks that the README's settings blocks are these).

``scenario_settings(jwk_url, issuer)`` is shared by the in-process test configuration
(tests/conftest.py) and the subprocess projects (this module, driven by environment variables).
"""

from __future__ import annotations

import os
from typing import Any

BASE_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt",
]


#: Django's ``mail_admins`` handler renders every 500 with ``pprint`` of each frame's locals, which
#: takes minutes for a token nested thousands of levels deep: a fuzz run that finds a 500 would
#: hang instead of failing. The ``django`` logger still propagates to the root (the leak detector).
DJANGO_LOGGER: dict[str, Any] = {"handlers": [], "level": "INFO"}


def scenario_settings(jwk_url: str, issuer: str | None, *, apps: list[str] | None = None) -> dict[str, Any]:
    """Django settings of a project that validates Keycloak access tokens with SimpleJWT."""
    return {
        "SECRET_KEY": "tests-only-not-secret",
        "DEBUG": False,
        "ALLOWED_HOSTS": ["testserver", "127.0.0.1", "localhost"],
        "DATABASES": {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("SJP_DB", ":memory:")}
        },
        "INSTALLED_APPS": apps if apps is not None else [*BASE_APPS, "simplejwt_patches"],
        "MIDDLEWARE": [],
        "ROOT_URLCONF": "tests.project.urls",
        "USE_TZ": True,
        "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
        "REST_FRAMEWORK": {
            "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
            "EXCEPTION_HANDLER": "tests.project.views.recording_exception_handler",
            "UNAUTHENTICATED_USER": None,
        },
        "SIMPLE_JWT": {
            "ALGORITHM": "RS256",
            "JWK_URL": jwk_url,
            "ISSUER": issuer,
            "AUDIENCE": "acme-api",
            "USER_ID_CLAIM": "sub",
            "USER_ID_FIELD": "username",
            "TOKEN_TYPE_CLAIM": "typ",
            "AUTH_TOKEN_CLASSES": ("simplejwt_patches.tokens.BearerAccessToken",),
        },
        "SIMPLE_JWT_PATCHES": {"AUTHORIZED_PARTIES": ("acme-web",)},
        "LOGGING": {"version": 1, "disable_existing_loggers": False, "loggers": {"django": dict(DJANGO_LOGGER)}},
    }


if "SJP_JWK_URL" in os.environ:  # subprocess projects (tests/test_enablement.py, make demo, make bench)
    _apps = os.environ.get("SJP_APPS")
    globals().update(
        scenario_settings(
            os.environ["SJP_JWK_URL"],
            os.environ.get("SJP_ISSUER") or None,
            apps=_apps.split(",") if _apps else None,
        )
    )
    if os.environ.get("SJP_PATCHES"):  # JSON SIMPLE_JWT_PATCHES (make bench)
        import json

        SIMPLE_JWT_PATCHES = json.loads(os.environ["SJP_PATCHES"])
    if os.environ.get("SJP_SIMPLE_JWT"):  # JSON overrides of SIMPLE_JWT (the OpenID Provider tests)
        import json

        globals()["SIMPLE_JWT"].update(json.loads(os.environ["SJP_SIMPLE_JWT"]))
    if os.environ.get("SJP_AUTH"):  # e.g. rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication
        globals()["REST_FRAMEWORK"]["DEFAULT_AUTHENTICATION_CLASSES"] = [os.environ["SJP_AUTH"]]
    if os.environ.get("SJP_LOG"):  # a level: simplejwt_patches' records on stderr (the server tests read them)
        LOGGING = {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "loggers": {
                "simplejwt_patches": {"handlers": ["stderr"], "level": os.environ["SJP_LOG"]},
                "django": dict(DJANGO_LOGGER),
            },
        }
    if os.environ.get("SJP_REDIS"):
        CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["SJP_REDIS"]},
        }
        if os.environ.get("SJP_REDIS_TIMEOUT"):  # seconds for every Redis operation (the soak pauses Redis)
            _timeout = float(os.environ["SJP_REDIS_TIMEOUT"])
            CACHES["jwks"]["OPTIONS"] = {"socket_timeout": _timeout, "socket_connect_timeout": _timeout}
