"""Small helpers shared by the tests (no fixtures here)."""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from simplejwt_patches.diagnostics import causes
from simplejwt_patches.versions import pyjwt_caps, simplejwt_version

SIMPLEJWT = simplejwt_version() or Version("0")
PYJWT = pyjwt_caps().version or Version("0")
#: The message SimpleJWT's TokenBackend/Token use for an invalid token on this release.
INVALID_MESSAGE = "Token is invalid" if SIMPLEJWT >= Version("5.5.0") else "Token is invalid or expired"


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first."""
    return list(causes(exc))


def chain_names(exc: BaseException) -> list[str]:
    return [type(e).__name__ for e in chain(exc)]


def find_in_chain(exc: BaseException, kind: type[BaseException]) -> Any:
    for e in chain(exc):
        if isinstance(e, kind):
            return e
    raise AssertionError(f"no {kind.__name__} in {chain_names(exc)}")


def expected_body() -> dict[str, Any]:
    """The 401 body upstream writes for a rejected BearerAccessToken (unchanged by the shim)."""
    return {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "BearerAccessToken", "token_type": "Bearer", "message": INVALID_MESSAGE}],
    }


def use_simple_jwt(monkeypatch: Any, **overrides: Any) -> None:
    """Run with other SIMPLE_JWT values everywhere SimpleJWT reads them: its ``authentication`` and
    ``tokens`` modules bind ``api_settings`` at import, and only ``rest_framework_simplejwt.settings``
    is rebound by ``override_settings`` (undone by ``monkeypatch``)."""
    from django.conf import settings
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt import settings as sj_settings

    new = sj_settings.APISettings(
        {**settings.SIMPLE_JWT, **overrides}, sj_settings.DEFAULTS, sj_settings.IMPORT_STRINGS
    )
    for module in (authentication, tokens, sj_settings):
        monkeypatch.setattr(module, "api_settings", new)
