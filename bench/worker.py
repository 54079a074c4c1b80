"""One process of the fleet benchmark (bench/run.py): validate tokens until a deadline.

Settings come from tests/project/settings.py through SJP_* environment variables (JWK_URL,
INSTALLED_APPS, SIMPLE_JWT_PATCHES, Redis cache). Prints ``ready`` once Django is set up, then
reads the wall-clock start time from stdin, so that all processes hit the cold cache together
however long each took to start. Prints one JSON line: validations, failures.
"""

from __future__ import annotations

import json
import os
import sys
import time

import django

django.setup()

from rest_framework_simplejwt.authentication import JWTAuthentication  # noqa: E402

duration = float(sys.argv[1])
token = os.environ["SJP_TOKEN"].encode()
auth = JWTAuthentication()
if os.environ.get("SJP_VANILLA_LIFESPAN"):
    from django.apps import apps

    if not apps.is_installed("simplejwt_patches"):  # give vanilla the same lifespan (harness only)
        from rest_framework_simplejwt import state

        cache = getattr(state.token_backend.jwks_client, "jwk_set_cache", None)
        if cache is not None:
            cache.lifespan = float(os.environ["SJP_VANILLA_LIFESPAN"])
print("ready", flush=True)
start_at = float(sys.stdin.readline())
time.sleep(max(0.0, start_at - time.time()))
ok = failed = 0
deadline = start_at + duration
while time.time() < deadline:
    try:
        auth.get_validated_token(token)
        ok += 1
    except Exception:  # noqa: BLE001 - counted
        failed += 1
    time.sleep(0.005)
print(json.dumps({"ok": ok, "failed": failed}))
