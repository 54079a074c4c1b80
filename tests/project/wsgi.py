"""WSGI entry point of the test project (gunicorn in tests/test_servers.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")
application = get_wsgi_application()
