"""Subprocess probe for tests/test_enablement.py: one request through a fresh Django process.

Prints one JSON line: the response status, whether the shim is applied, a double-wrap census
after apply/apply/revert/apply, and whether revert restored every original.
"""

from __future__ import annotations

import json
import os

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402


def request() -> int:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {os.environ['SJP_TOKEN']}")
    return client.get("/api/whoami").status_code


def census() -> dict[str, list[str]]:
    from simplejwt_patches.patcher import changes

    out: dict[str, list[str]] = {}
    for change in changes():
        obj = vars(change.owner).get(change.attribute)
        marks = []
        while hasattr(obj, "__wrapped__"):
            mark = getattr(obj, "_self_simplejwt_patches_fixer", None)
            if mark:
                marks.append(mark)
            obj = obj.__wrapped__
        out[f"{getattr(change.owner, '__qualname__', '?')}.{change.attribute}"] = marks
    return out


call_command("migrate", verbosity=0, run_syncdb=True)
from django.contrib.auth import get_user_model  # noqa: E402

get_user_model().objects.create(username=os.environ["SJP_SUBJECT"])
result: dict[str, object] = {"status": request()}
try:
    from django.apps import apps

    import simplejwt_patches
except ImportError:  # pragma: no cover
    simplejwt_patches = None  # type: ignore[assignment]

if apps.is_installed("simplejwt_patches"):
    result["applied"] = simplejwt_patches.status().applied
    early = apps.is_installed("tests.project.early")
    if early:
        from rest_framework_simplejwt import state

        from tests.project.early import CLIENT_BEFORE_PATCHES

        result["client_existed_before_ready"] = (
            len(CLIENT_BEFORE_PATCHES) == 1 and CLIENT_BEFORE_PATCHES[0] is state.token_backend.jwks_client
        )
    simplejwt_patches.apply()
    simplejwt_patches.apply()
    before = {k: list(v) for k, v in census().items()}
    from simplejwt_patches.patcher import changes

    first: dict[tuple[int, str], tuple[object, str, object]] = {}
    for c in changes():  # the first change per attribute holds the pristine upstream object
        first.setdefault((id(c.owner), c.attribute), (c.owner, c.attribute, c.original))
    simplejwt_patches.revert()
    result["restored_after_revert"] = all(vars(o).get(a) is orig for o, a, orig in first.values())
    simplejwt_patches.apply()
    after = census()
    result["double_wrapped"] = sorted(k for k, v in after.items() if len(v) != len(set(v)))
    result["census_stable"] = {k: sorted(v) for k, v in before.items()} == {k: sorted(v) for k, v in after.items()}
    result["status_after_reapply"] = request()
else:
    result["applied"] = False
print(json.dumps(result))
