"""Real application servers for tests/project: gunicorn (WSGI) and uvicorn (ASGI) on a loopback port.

Used by tests/test_servers.py and tests/test_oidc.py. Every wait is bounded; requests are real HTTP
from the test process (urllib); the server's stderr (every worker's log records) goes to a file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: name -> how to serve: (server, worker class, workers, --preload)
SERVERS: dict[str, tuple[str, str, int, bool]] = {
    "gunicorn-sync": ("gunicorn", "sync", 3, False),
    "gunicorn-sync-preload": ("gunicorn", "sync", 3, True),
    "gunicorn-gthread": ("gunicorn", "gthread", 2, False),
    "gunicorn-gthread-preload": ("gunicorn", "gthread", 2, True),
    "uvicorn-asgi": ("uvicorn", "asgi", 2, False),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_env(db: Path, jwk_url: str, issuer: str | None, **extra: str) -> dict[str, str]:
    """Environment of a tests/project process (see tests/project/settings.py for the variables)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SJP_") and k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.project.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "SJP_DB": str(db),
            "SJP_JWK_URL": jwk_url,
            "SJP_ISSUER": issuer or "",
            "SJP_LOG": "WARNING",
        }
    )
    env.update(extra)
    return env


_SETUP_DB = """
import sys
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
call_command("migrate", verbosity=0)
for name in sys.argv[1:]:
    get_user_model().objects.get_or_create(username=name)
"""


def migrate(env: dict[str, str], *usernames: str, cwd: Path = ROOT) -> None:
    """Create the sqlite database (``SJP_DB``) and the users, before the server starts."""
    done = subprocess.run(
        [sys.executable, "-c", _SETUP_DB, *usernames],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@dataclass
class Served:
    """A running server process and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def get(self, path: str, token: str | None = None, timeout: float = 15.0) -> tuple[int, Any]:
        """One real HTTP GET; (status, parsed JSON body or text). Raises if not answered within ``timeout``."""
        request = urllib.request.Request(self.base_url + path)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> float:
        """SIGTERM; returns how long the server took to exit (fails if longer than ``timeout``)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(f"{self.name} did not exit within {timeout} s of SIGTERM") from None
        return time.monotonic() - start


def serve(
    name: str,
    env: dict[str, str],
    log: Path,
    ready_timeout: float = 60.0,
    spec: tuple[str, str, int, bool] | None = None,
    threads: int = 2,
    cwd: Path = ROOT,
) -> Served:
    """Start ``SERVERS[name]`` (or ``spec``) on a free loopback port; wait (bounded) until it answers HTTP.
    ``threads``: per gthread worker; ``cwd``: the tree whose tests/project and simplejwt_patches it serves."""
    server, kind, workers, preload = spec or SERVERS[name]
    port = free_port()
    if server == "gunicorn":
        cmd = [
            sys.executable, "-m", "gunicorn", "tests.project.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", kind,
            "--graceful-timeout", "5", "--timeout", "30", "--log-level", "warning",
        ]  # fmt: skip
        if kind == "gthread":
            cmd += ["--threads", str(threads)]
        if preload:
            cmd.append("--preload")
    else:
        cmd = [
            sys.executable, "-m", "uvicorn", "tests.project.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--lifespan", "off", "--log-level", "warning", "--timeout-graceful-shutdown", "5",
        ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    served = Served(name, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:  # bounded readiness poll: any HTTP answer will do
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{served.log_text()[-3000:]}")
        try:
            served.get("/api/pid", timeout=2)
            return served
        except OSError:
            time.sleep(0.1)
    served.stop()
    raise AssertionError(f"{name} not answering after {ready_timeout} s:\n{served.log_text()[-3000:]}")
