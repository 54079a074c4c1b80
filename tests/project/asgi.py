"""ASGI entry point of the test project (uvicorn in tests/test_servers.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")
application = get_asgi_application()
