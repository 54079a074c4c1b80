"""Subprocess probe for tests/test_lazy_targets.py: the lazy serializer targets in one import order.

A fresh Django project (``simplejwt_patches`` in ``INSTALLED_APPS``; ``SJP_EARLY_IMPORTS`` imported
by an app listed before it, when set) runs the comma-separated ``SJP_STEPS`` and prints one JSON
line, a list with one entry per step:

* ``state``: fixer ``outage.failure-status``'s state and reason, and whether SimpleJWT's and DRF's
  serializer modules are imported;
* ``api``: a request to the protected view through DRF's request path, the view called directly
  (the URLconf would import SimpleJWT's views, and with them the serializers);
* ``verify``: ``POST /api/token/verify`` through the URLconf (which imports the serializers);
* ``import``: ``import rest_framework_simplejwt.serializers``;
* ``wrapped``: per token serializer, the fixers on its ``validate`` and whether the object under
  them is the upstream function; and the undo-log entries on the serializers;
* ``doctor``: ``manage.py simplejwt_doctor --json``'s line for the fixer, then the text report's;
* ``apply``, ``revert``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import types
from typing import Any

import django

django.setup()

from django.core.management import call_command  # noqa: E402

import simplejwt_patches  # noqa: E402
from simplejwt_patches.patcher import changes, fixers_on  # noqa: E402

FIXER = "outage.failure-status"
SERIALIZERS = "rest_framework_simplejwt.serializers"
CLASSES = ("TokenVerifySerializer", "TokenRefreshSerializer", "TokenRefreshSlidingSerializer")
TOKEN = os.environ["SJP_TOKEN"]


def state() -> dict[str, Any]:
    fx = {f.id: f for f in simplejwt_patches.status().fixers}.get(FIXER)
    return {
        "state": fx.state if fx else None,
        "reason": fx.reason if fx else None,
        "imported": SERIALIZERS in sys.modules,
        "drf_serializers": "rest_framework.serializers" in sys.modules,
    }


def api() -> dict[str, Any]:
    from rest_framework.test import APIRequestFactory

    from tests.project.views import WhoAmI

    response = WhoAmI.as_view()(APIRequestFactory().get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    imported = SERIALIZERS in sys.modules
    return {"status": response.status_code, "retry_after": response.get("Retry-After"), "imported": imported}


def verify() -> dict[str, Any]:
    from rest_framework.test import APIClient

    response = APIClient(raise_request_exception=False).post("/api/token/verify", {"token": TOKEN}, format="json")
    body = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
    return {"status": response.status_code, "code": body.get("code"), "retry_after": response.get("Retry-After")}


def wrapped() -> dict[str, Any]:
    module = sys.modules[SERIALIZERS]
    owners = [getattr(module, name) for name in CLASSES]
    out: dict[str, Any] = {"log": sum(1 for c in changes() if any(c.owner is o for o in owners))}
    for owner in owners:
        top = vars(owner)["validate"]
        under = getattr(top, "__wrapped__", top)
        out[owner.__name__] = {"fixers": list(fixers_on(top)), "upstream_under": isinstance(under, types.FunctionType)}
    return out


def doctor() -> dict[str, Any]:
    reports = []
    for argv in (["--json"], []):
        out = io.StringIO()
        try:
            call_command("simplejwt_doctor", *argv, stdout=out)
        except SystemExit:  # 1: the JWKS is not healthy (the IdP refuses it in these runs)
            pass
        reports.append(out.getvalue())
    line = next(ln.strip() for ln in reports[1].splitlines() if ln.strip().startswith(f"- {FIXER}:"))
    return {"json": json.loads(reports[0])["patches"]["fixers"][FIXER], "text": line, **state()}


STEPS = {
    "state": state,
    "api": api,
    "verify": verify,
    "wrapped": wrapped,
    "doctor": doctor,
    "import": lambda: {"module": __import__(SERIALIZERS, fromlist=["x"]).__name__},
    "apply": lambda: {"applied": simplejwt_patches.apply().applied},
    "revert": lambda: {"applied": simplejwt_patches.revert().applied, "log": len(changes())},
}

print(json.dumps([{"step": step, **STEPS[step]()} for step in os.environ["SJP_STEPS"].split(",")]))
