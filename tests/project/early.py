"""An app whose ready() imports upstream modules before (or after) simplejwt_patches runs.

``SJP_EARLY_IMPORTS`` (comma-separated, default ``rest_framework_simplejwt.state``) says which; when
``state`` is among them its ``token_backend.jwks_client`` is recorded, so the probe can check that
the client created before the shim was adopted.
"""

import importlib
import os

from django.apps import AppConfig

CLIENT_BEFORE_PATCHES: list[object] = []


class EarlyConfig(AppConfig):
    name = "tests.project.early"
    label = "sjp_early"

    def ready(self) -> None:
        modules = os.environ.get("SJP_EARLY_IMPORTS", "rest_framework_simplejwt.state").split(",")
        for name in modules:
            module = importlib.import_module(name)
            if name == "rest_framework_simplejwt.state":
                CLIENT_BEFORE_PATCHES.append(module.token_backend.jwks_client)
