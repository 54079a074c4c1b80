"""A loopback TCP relay in front of a real server (a redis-server) whose replies can be held back.

What a slow or hostile shared cache looks like to the package: every reply arrives :attr:`SlowRelay.delay`
seconds late (at most 1 s), or only the replies to commands that contain :attr:`SlowRelay.only` (``b"NX"``:
taking the refresh lock); the server itself stays a real redis-server. Loopback only; each connection's
relay threads end when either side closes.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

__all__ = ["SlowRelay"]

#: Chunks relayed per connection at most (a bounded loop; a test exchanges a few dozen).
MAX_CHUNKS = 100_000


class SlowRelay:
    """``SlowRelay(url)``: listens on 127.0.0.1, relays to ``url``'s host and port; :meth:`url` is its own."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname == "127.0.0.1" and parts.port, upstream_url
        self._upstream, self._path = (parts.hostname, parts.port), parts.path
        self.delay = 0.0
        self.only: bytes | None = None  # delay only the replies to commands containing these bytes
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="slow-relay", daemon=True).start()

    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}{self._path}"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for sock in list(self._sockets):
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # the accept timeout, or closed
                continue
            server = socket.create_connection(self._upstream, timeout=5)
            self._sockets += [client, server]
            slow: list[bool] = []  # this connection's pending replies to hold back (one command at a time)
            threading.Thread(target=self._pipe, args=(client, server, False, slow), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True, slow), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, replies: bool, slow: list[bool]) -> None:
        try:
            for _ in range(MAX_CHUNKS):
                data = source.recv(65536)
                if not data:
                    break
                if not replies:
                    slow[:] = [self.only is None or self.only in data]
                elif self.delay and slow[:1] == [True]:
                    time.sleep(min(self.delay, 1.0))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
