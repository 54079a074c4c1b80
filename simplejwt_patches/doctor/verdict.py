"""The verdict: what the API would answer, from the project's own authentication classes.

Each class's ``authenticate()`` runs on a real DRF ``Request`` carrying the token, in the order
DRF's ``Request._authenticate`` tries them; the answer maps as DRF's ``APIView.handle_exception``
maps exceptions. :func:`prime` first hands the probe's key set to SimpleJWT's managed client, so a
doctor run fetches the JWKS once.
"""

from __future__ import annotations

import json
from typing import Any

from ..diagnostics import describe, redact
from ..failures import classify
from .probe import JWKSProbe
from .report import jsonable
from .stack import api_settings, dotted

__all__ = ["prime", "verdict_of"]


def prime(probe: JWKSProbe, url: str) -> None:
    """Hand the probe's key set (or its failure) to SimpleJWT's managed client: one JWKS fetch per run."""
    import sys

    import jwt

    from ..clients import adopt

    error: BaseException | None = None
    if probe.failure is not None and probe.failure.category.reason_code == "jwks_unavailable":
        error = jwt.PyJWKClientError(f'Fail to fetch data from the url, err: "{probe.failure.detail}"')
        error.__cause__ = probe.failure
    elif not probe.ok or probe.payload is None:
        return
    backends = [
        getattr(sys.modules.get(m), "token_backend", None)
        for m in ("rest_framework_simplejwt.state", "rest_framework_simplejwt.tokens")
    ]
    for backend in {id(b): b for b in backends if b is not None}.values():
        client = getattr(backend, "jwks_client", None)
        if client is None or str(getattr(client, "uri", "")) != url:
            continue
        state = adopt(client)
        if state is None:
            continue
        if error is not None:
            state.key_source().prime_failure(error)
        elif probe.payload is not None:
            state.key_source().prime(probe.payload, probe.cache_lifetime or 300.0, storable=bool(probe.shared))


def verdict_of(raw: str, classes: list[type]) -> dict[str, Any]:
    """What the API would answer: ``authenticate()`` of each class on a real DRF ``Request``.

    The classes are tried in order as DRF's ``Request._authenticate`` does (the first that returns a
    user or raises decides); exceptions map as DRF's ``APIView.handle_exception`` maps them
    (``APIException`` -> its status, a 401 becoming 403 when the first class sends no
    ``WWW-Authenticate``; anything else -> 500).
    """
    from rest_framework import exceptions as drf_exceptions
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from ..diagnostics import causes
    from ..failures import TOKEN_REASONS
    from ..patches.user_lookup import UserLookupError

    s = api_settings()
    types = s.AUTH_HEADER_TYPES
    prefix = types[0] if isinstance(types, (list, tuple)) and types else str(types)
    header = f"{prefix} {raw}".encode("utf-8", "replace").decode("latin-1")  # what a WSGI server would hand over
    authenticators = [cls() for cls in classes]
    meta: dict[str, Any] = {str(s.AUTH_HEADER_NAME): header}
    request = Request(APIRequestFactory().get("/", **meta), authenticators=authenticators)
    judge: type | None = None
    try:
        for auth in authenticators:
            judge = type(auth)
            result = auth.authenticate(request)
            if result is not None:
                user, validated = result
                return {
                    "accepted": True,
                    "status": 200,
                    "auth_class": dotted(judge),
                    **_verdict_user(user),
                    "token_class": type(validated).__name__,
                }
    except drf_exceptions.APIException as exc:
        status = exc.status_code
        if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            status = 401 if authenticators[0].authenticate_header(request) else 403
        if any(isinstance(e, UserLookupError) for e in causes(exc)):
            code, reason = "user_lookup", TOKEN_REASONS["user_lookup"]
        else:
            code, reason = classify(exc.__cause__ or exc)
        return {
            "accepted": False,
            "status": status,
            "auth_class": dotted(judge) if judge else None,
            "detail": jsonable(json.loads(json.dumps(exc.detail, default=str))),
            "reason_code": code,
            "reason": redact(reason, raw),
        }
    except Exception as exc:  # noqa: BLE001 - DRF answers anything else with 500
        return {
            "accepted": False,
            "status": 500,
            "auth_class": dotted(judge) if judge else None,
            "detail": redact(describe(exc)[:300], raw),
            "reason_code": "error",
            "reason": redact(describe(exc)[:300], raw),
        }
    return {
        "accepted": False,
        "status": 401,
        "auth_class": None,
        "detail": f"no SimpleJWT class took the token (AUTH_HEADER_TYPES {types!r})",
        "reason_code": "not_authenticated",
        "reason": "no authentication class accepted the Authorization header",
    }


def _verdict_user(user: Any) -> dict[str, Any]:
    """How the verdict names the user: the username, or for a stateless ``TokenUser`` its id."""
    try:
        from rest_framework_simplejwt.models import TokenUser
    except Exception:  # noqa: BLE001 - very old releases
        TokenUser = ()  # type: ignore[assignment,misc]
    if isinstance(user, TokenUser):
        try:
            user_id = str(user.id)[:200]
        except Exception:  # noqa: BLE001 - the claim is missing or unusable
            user_id = "<missing>"
        return {"user": f"TokenUser id {user_id!r}", "user_id": user_id}
    return {"user": _username(user)}


def _username(user: Any) -> str:
    try:
        return str(user.get_username())
    except Exception:  # noqa: BLE001 - a stateless TokenUser without the claim
        return f"<{type(user).__name__}>"
