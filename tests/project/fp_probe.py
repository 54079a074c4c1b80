"""Subprocess probe for tests/test_fingerprints.py: a fresh Django project on a built SimpleJWT.

Runs with DEFAULT ``SIMPLE_JWT_PATCHES`` (the ``proven`` policy) against whatever SimpleJWT comes
first on ``PYTHONPATH`` (the test builds one from a release sdist), sends one request with
``SJP_TOKEN`` and prints one JSON line: the status, the cause chain of the last exception, the
system-check messages (what ``manage.py check`` prints) and ``status()``.
"""

from __future__ import annotations

import json
import os

import django

django.setup()

import rest_framework_simplejwt  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

import simplejwt_patches  # noqa: E402
from tests.helpers import chain  # noqa: E402
from tests.project.views import LAST_EXCEPTION  # noqa: E402

call_command("migrate", verbosity=0, run_syncdb=True)
from django.contrib.auth import get_user_model  # noqa: E402

get_user_model().objects.create(username=os.environ["SJP_SUBJECT"])
client = APIClient(raise_request_exception=False)
client.credentials(HTTP_AUTHORIZATION=f"Bearer {os.environ['SJP_TOKEN']}")
code = client.get("/api/whoami").status_code
causes = []
if LAST_EXCEPTION:
    causes = [
        {"type": type(e).__name__, "code": getattr(e, "code", None) if type(e).__name__ == "HTTPError" else None}
        for e in chain(LAST_EXCEPTION[0])
    ]
# A token view's first request imports SimpleJWT's serializers (the lazy targets: proven from source
# by apply(), checked against the imported code now); the status below is after it.
import rest_framework_simplejwt.serializers  # noqa: E402

status = simplejwt_patches.status()
print(
    json.dumps(
        {
            "status": code,
            "causes": causes,
            "checks": [{"id": m.id, "msg": m.msg} for m in checks.run_checks()],
            "simplejwt_file": rest_framework_simplejwt.__file__,
            "simplejwt": status.simplejwt,
            "patch_set_reason": status.patch_set_reason,
            "fixers": [{k: getattr(f, k) for k in ("id", "state", "reason", "selected_by")} for f in status.fixers],
        }
    )
)
