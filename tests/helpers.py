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
