"""Test configuration: a real Keycloak-shaped IdP on 127.0.0.1, Django configured for it, and a
log-leak detector that fails any test whose log records contain a token or a secret header value.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.idp import FakeKeycloak, Mode

SESSION_IDP: FakeKeycloak | None = None

#: Secret values (header values, API keys) that must never appear in any log record (substring check).
SENSITIVE: set[str] = set()
#: Tokens and their segments (>= 16 chars) that must never appear (membership check of every
#: base64url run in a record, so that a fuzz run registering 10,000 tokens stays linear).
TOKEN_PARTS: set[str] = set()
SECRET_HEADER_VALUE = "Bearer sjp-secret-api-key-7f3a9c"
_RUNS = re.compile(r"[A-Za-z0-9_-]{16,}(?:\.[A-Za-z0-9_-]+){0,2}")


class LeakDetector(logging.Handler):
    """Keeps every record of the run; ``leaks()`` lists records that quote a sensitive string."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[tuple[logging.LogRecord, str]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception as exc:  # noqa: BLE001 - a broken record is itself worth failing on
            text = f"<unformattable record: {exc!r}>"
        self.records.append((record, text))

    def leaks(self, since: int = 0) -> list[str]:
        found = []
        for _, text in self.records[since:]:
            for secret in SENSITIVE:
                if secret and secret in text:
                    found.append(f"{secret[:12]}... in: {text[:300]}")
            for run in _RUNS.findall(text):
                for part in (run, *run.split(".")):
                    if part in TOKEN_PARTS:
                        found.append(f"{part[:12]}... in: {text[:300]}")
        return found


DETECTOR = LeakDetector()


def register_sensitive_token(token: str) -> str:
    """Mark a token (and each of its segments) as never loggable."""
    TOKEN_PARTS.add(token)
    TOKEN_PARTS.update(part for part in token.split(".") if len(part) >= 16)
    return token


def pytest_configure(config: pytest.Config) -> None:
    global SESSION_IDP
    import django
    from django.conf import settings

    from tests.project.settings import scenario_settings

    SESSION_IDP = FakeKeycloak(realm="acme").start()
    SENSITIVE.add(SECRET_HEADER_VALUE)
    logging.getLogger().addHandler(DETECTOR)
    conf = scenario_settings(SESSION_IDP.jwks_url, SESSION_IDP.issuer)
    conf["LOGGING"]["loggers"]["simplejwt_patches"] = {"level": "DEBUG"}
    conf["SIMPLE_JWT_PATCHES"] = {**conf["SIMPLE_JWT_PATCHES"], "JWKS_TIMEOUT": 2}
    settings.configure(**conf)
    django.setup()
    # apply() (in ready()) leaves SimpleJWT's serializers to a post-import hook; a project imports them
    # with its URLconf, at its first request. Import them now, so every test starts from the same state
    # whichever runs first (the import orders themselves: tests/test_lazy_targets.py, in fresh processes).
    import rest_framework_simplejwt.serializers  # noqa: F401


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION_IDP is not None:
        SESSION_IDP.stop()


@pytest.fixture(autouse=True)
def _no_secret_in_logs() -> Iterator[None]:
    """Every test: no log record emitted during it may contain a token or a secret header value."""
    start = len(DETECTOR.records)
    yield
    leaks = DETECTOR.leaks(start)
    assert not leaks, "sensitive data logged:\n" + "\n".join(leaks)


@pytest.fixture
def idp() -> Iterator[FakeKeycloak]:
    """The session IdP, reset to healthy; every token it mints is registered as sensitive."""
    assert SESSION_IDP is not None
    SESSION_IDP.reset()
    SESSION_IDP.hang_seconds = 2.0
    original = SESSION_IDP.mint

    def mint(*args: Any, **kwargs: Any) -> str:
        return register_sensitive_token(original(*args, **kwargs))

    SESSION_IDP.mint = mint  # type: ignore[method-assign]
    try:
        yield SESSION_IDP
    finally:
        del SESSION_IDP.mint
        SESSION_IDP.reset()


@pytest.fixture(autouse=True)
def _patched() -> Iterator[None]:
    """Every test starts with the shim applied (tests that revert it get it back)."""
    import simplejwt_patches

    simplejwt_patches.apply()
    yield
    simplejwt_patches.apply()


@pytest.fixture
def fresh_backend(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Replace ``state.token_backend`` by a new TokenBackend built from the current settings.

    Returns a function so a test can rebuild after ``override_settings`` (e.g. another JWK_URL).
    Each test gets an empty key-set cache; no HTTP is mocked.
    """
    from rest_framework_simplejwt import settings as sj_settings
    from rest_framework_simplejwt import state
    from rest_framework_simplejwt.backends import TokenBackend

    def build(**overrides: Any) -> Any:
        api_settings = sj_settings.api_settings  # rebound by SimpleJWT on setting_changed
        conf = {
            "algorithm": api_settings.ALGORITHM,
            "signing_key": api_settings.SIGNING_KEY,
            "verifying_key": api_settings.VERIFYING_KEY,
            "audience": api_settings.AUDIENCE,
            "issuer": api_settings.ISSUER,
            "jwk_url": api_settings.JWK_URL,
            "leeway": 0,
            **overrides,
        }
        backend = TokenBackend(**conf)
        monkeypatch.setattr(state, "token_backend", backend)
        return backend

    build()
    return build


@pytest.fixture
def alice(db: Any, idp: FakeKeycloak) -> Any:
    """The Django user Keycloak's ``sub`` maps to (USER_ID_FIELD = username)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create(username=idp.subject)


@pytest.fixture
def api(alice: Any, fresh_backend: Any) -> Any:
    """``api(token) -> response``: GET /api/whoami through DRF's real request path."""
    from rest_framework.test import APIClient

    from tests.project import views

    def call(token: str | None) -> Any:
        client = APIClient(raise_request_exception=False)
        views.LAST_EXCEPTION.clear()
        if token is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.get("/api/whoami")

    return call


def last_exception() -> BaseException:
    """The exception DRF handled during the last ``api()`` call."""
    from tests.project import views

    assert views.LAST_EXCEPTION, "DRF handled no exception"
    return views.LAST_EXCEPTION[0]


__all__ = ["DETECTOR", "SECRET_HEADER_VALUE", "Mode", "last_exception", "register_sensitive_token"]


@contextlib.contextmanager
def spawn_redis() -> Iterator[tuple[Any, str]]:
    """A real redis-server of our own on a free 127.0.0.1 port: ``(process, url)``; stopped on exit."""
    import shutil
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: run `make test` (it apt-installs it) or apt-get install redis-server"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="sjp-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # bounded: up to ~5 s
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start")
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a test may have paused it
            proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (Debian's package; `make test` installs it)."""
    with spawn_redis() as (_, url):
        yield url


@pytest.fixture
def redis(redis_server: str) -> str:
    """The Redis URL, flushed; skipped where Django has no built-in RedisCache (< 4.0)."""
    import django

    if django.VERSION < (4, 0):
        pytest.skip(
            "Django < 4.0 has no built-in RedisCache (the shared cache needs a raw Redis client there: django-redis)"
        )
    import redis as redis_lib

    redis_lib.Redis.from_url(redis_server).flushall()
    from simplejwt_patches.shared_cache import SharedCache

    SharedCache._down.clear()
    return redis_server


@pytest.fixture
def closed_redis() -> str:
    import socket

    import django

    if django.VERSION < (4, 0):
        pytest.skip("Django < 4.0 has no built-in RedisCache")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
