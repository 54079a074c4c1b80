"""One cold request inside a network and mount namespace of its own (tests/test_deadline_netns.py).

Run as ``unshare --net --mount -- python -m tests.project.netns_request <dir>``. Inside the new
namespaces it brings up ``lo`` (the only interface: nothing can leave), makes 127.0.0.2-4 port 443
unreachable the way an overloaded host is (a listener whose accept queue is full: the kernel drops
every further SYN, so a connect hangs until its timeout), bind-mounts ``<dir>/resolv.conf`` and
``<dir>/hosts`` over ``/etc`` (a resolver on 127.0.0.1:53, names mapped to those addresses),
and binds that resolver's UDP port without ever answering. Then one request goes through DRF's
real request path with the project's settings (``SJP_*``, see tests/project/settings.py).

Prints one JSON line: HTTP status, seconds taken, the failure kind, the ``jwks_fetch_failed``
signal's url/reason/kind and the WARNING lines logged.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from typing import Any

#: Addresses ``/etc/hosts`` maps ``multi.test`` to (tests/test_deadline_netns.py), all unreachable.
UNREACHABLE = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def _unreachable(host: str) -> list[socket.socket]:
    """A listener on ``host``:443 with a full accept queue (kept open): further connects hang."""
    listener = socket.socket()
    listener.bind((host, 443))
    listener.listen(0)
    held = [listener]
    for _ in range(2):  # listen(0) queues one connection; the second fills it
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect((host, 443))
        except BlockingIOError:
            pass
        held.append(client)
    return held


def _setup(directory: str) -> list[socket.socket]:
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["mount", "--bind", os.path.join(directory, "resolv.conf"), "/etc/resolv.conf"],
        ["mount", "--bind", os.path.join(directory, "hosts"), "/etc/hosts"],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=10)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the resolver: receives, never answers
    silent.bind(("127.0.0.1", 53))
    held = [silent]
    for host in UNREACHABLE:
        held += _unreachable(host)
    time.sleep(0.1)  # let the filling handshakes settle
    return held


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main(directory: str) -> dict[str, Any]:
    held = _setup(directory)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from simplejwt_patches.failures import find_failure
    from simplejwt_patches.signals import jwks_fetch_failed
    from tests.project import views

    lines = _Lines()
    logging.getLogger("simplejwt_patches").addHandler(lines)
    signals: list[dict[str, Any]] = []

    def failed(sender: Any, **kwargs: Any) -> None:
        signals.append({k: kwargs.get(k) for k in ("url", "reason", "kind")})

    jwks_fetch_failed.connect(failed, weak=False)
    call_command("migrate", verbosity=0, run_syncdb=True)
    get_user_model().objects.create(username=os.environ["SJP_SUBJECT"])
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {os.environ['SJP_TOKEN']}")
    started = time.monotonic()
    response = client.get("/api/whoami")
    elapsed = time.monotonic() - started
    failure = find_failure(views.LAST_EXCEPTION[0]) if views.LAST_EXCEPTION else None
    for sock in held:
        sock.close()
    return {
        "status": response.status_code,
        "elapsed": elapsed,
        "kind": failure.kind if failure else None,
        "signals": signals,
        "log": lines.lines,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
