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
* ``apply``, ``revert``;
* ``edit``: the serializers' source edited in place, same line count (``TokenVerifySerializer.validate``
  no longer checks the token), as an upgrade between ``apply()`` and the first import would;
* ``race``: ``revert()``, then one thread imports the serializers (held in the module body by
  ``builtins._sjp_gate``, which a shadow copy calls) while another runs ``apply()``; whether either
  thread is still alive after a bounded join;
* ``finder``: a ``PathFinder`` subclass inserted at ``sys.meta_path[0]`` (import hooks like typeguard's),
  which wrapt's post-import hook does not see;
* ``selection``: the selection's W032 verdict, where SimpleJWT's tokens module was imported from, and
  every fixer's state.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import io
import json
import os
import re
import sys
import threading
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


def edit() -> dict[str, Any]:
    spec = importlib.util.find_spec(SERIALIZERS)  # imports the package only
    assert spec is not None and spec.origin is not None and SERIALIZERS not in sys.modules
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    edited = re.sub(r"UntypedToken\(attrs\[.token.\]\)", "{}", source, count=1)
    assert edited != source and edited.count("\n") == source.count("\n")
    with open(spec.origin, "w", encoding="utf-8") as f:
        f.write(edited)
    return {"edited": spec.origin}


def race() -> dict[str, Any]:
    simplejwt_patches.revert()  # the hook of the first apply() stays registered with wrapt
    inside, go = threading.Event(), threading.Event()

    def gate() -> None:
        inside.set()
        go.wait(10)

    builtins._sjp_gate = gate  # type: ignore[attr-defined]
    importer = threading.Thread(target=__import__, args=(SERIALIZERS,), daemon=True)
    importer.start()
    assert inside.wait(10)
    applier = threading.Thread(target=simplejwt_patches.apply, daemon=True)
    applier.start()
    applier.join(2)  # apply() must not wait for the import (which waits for go)
    go.set()
    applier.join(5)
    importer.join(5)
    out = {"apply_alive": applier.is_alive(), "import_alive": importer.is_alive()}
    if any(out.values()):  # deadlocked: the next step would wait for the patcher's lock forever
        print(json.dumps([{"step": "race", **out}]), flush=True)
        os._exit(0)
    return out


def finder() -> dict[str, Any]:
    class Instrumenting(importlib.machinery.PathFinder):
        pass

    sys.meta_path.insert(0, Instrumenting)  # type: ignore[arg-type]
    return {"meta_path_0": sys.meta_path[0].__name__}  # type: ignore[union-attr]


def selection() -> dict[str, Any]:
    from simplejwt_patches.patcher import selection as last

    chosen = last()
    tokens = sys.modules["rest_framework_simplejwt.tokens"]
    return {
        "source_unavailable": chosen.source_unavailable if chosen else "no selection",
        "tokens": tokens.__file__,
        "states": {f.id: f.state for f in simplejwt_patches.status().fixers},
    }


STEPS = {
    "state": state,
    "api": api,
    "verify": verify,
    "wrapped": wrapped,
    "doctor": doctor,
    "import": lambda: {"module": __import__(SERIALIZERS, fromlist=["x"]).__name__},
    "apply": lambda: {"applied": simplejwt_patches.apply().applied},
    "edit": edit,
    "race": race,
    "finder": finder,
    "selection": selection,
    "revert": lambda: {"applied": simplejwt_patches.revert().applied, "log": len(changes())},
}

print(json.dumps([{"step": step, **STEPS[step]()} for step in os.environ["SJP_STEPS"].split(",")]))
sys.stdout.flush()
os._exit(0)  # a thread a race left hanging (the failure reported above) must not hang the exit
