"""One authenticated request in a fresh Django process, for ``make demo`` (tests/demo.py).

Prints the response and, for a 401, the exception chain DRF saw. simplejwt_patches' log lines go
to stderr (WARNING and up), exactly as a project's own LOGGING would show them.
"""

from __future__ import annotations

import logging
import os
import sys

import django

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter("    log: %(levelname)s %(name)s: %(message)s"))
logging.getLogger("simplejwt_patches").addHandler(handler)
logging.getLogger("simplejwt_patches").setLevel(logging.WARNING)
logging.getLogger("simplejwt_patches").propagate = False

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from simplejwt_patches.diagnostics import causes  # noqa: E402
from tests.project import views  # noqa: E402

call_command("migrate", verbosity=0, run_syncdb=True)
get_user_model().objects.create(username=os.environ["SJP_SUBJECT"])
client = APIClient(raise_request_exception=False)
client.credentials(HTTP_AUTHORIZATION=f"Bearer {os.environ['SJP_TOKEN']}")
response = client.get("/api/whoami")
enabled = "simplejwt_patches" in settings.INSTALLED_APPS
if os.environ.get("SJP_SHOW_ORIGIN"):  # tests/test_wheel.py: which simplejwt_patches this process imported
    import simplejwt_patches

    print(f"    simplejwt_patches imported from: {simplejwt_patches.__file__}")
    print(f"    patch set: {simplejwt_patches.status().patch_set_reason}")
print(f"    simplejwt_patches in INSTALLED_APPS: {enabled}")
print(f"    GET /api/whoami -> HTTP {response.status_code} {response.content.decode()}")
if views.LAST_EXCEPTION:
    chain = " -> ".join(
        f"{type(e).__name__}({getattr(e, 'code', '')})"
        if hasattr(e, "code") and isinstance(e.code, int)
        else type(e).__name__
        for e in causes(views.LAST_EXCEPTION[0])
    )
    print(f"    exception chain: {chain}")
