"""A protected endpoint and an exception-recording DRF exception handler for the tests."""

from __future__ import annotations

import math
import os
import time
from typing import Any

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

#: The last exception DRF handled, so tests can walk ``__cause__`` from the real request path.
LAST_EXCEPTION: list[BaseException] = []


def recording_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's own handler, after remembering the exception (settings-level hook, not a mock)."""
    LAST_EXCEPTION[:] = [exc]
    return exception_handler(exc, context)


def plain(claim: Any) -> str | None:
    """A claim as this view may echo it: any JSON reaches a view (1e999, a lone surrogate ...), and
    JSON rendering refuses some of it; the shim's job ends at authentication, the view's starts here."""
    if not isinstance(claim, str):
        return None
    try:
        claim.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return claim


class WhoAmI(APIView):
    """Answers 200 with the authenticated user's name and token claims."""

    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username(), "azp": plain(request.auth.get("azp"))})


class Pid(APIView):
    """Answers 200 with the serving process id and the token's subject (any user model, stateless too).

    ``?hold=S`` keeps the worker busy for up to 0.5 s, so concurrent requests spread over the workers.
    """

    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        try:
            hold = float(request.query_params.get("hold", 0))
        except ValueError:
            hold = 0.0
        time.sleep(min(max(hold, 0.0), 0.5) if math.isfinite(hold) else 0.0)
        return Response({"pid": os.getpid(), "sub": plain(request.auth.get("sub"))})
