"""``JWKS_TIMEOUT`` as one deadline for a whole fetch: name resolution, every address, TLS, headers, body.

A socket timeout bounds each blocking call, not the fetch: a resolver that does not answer, a host
name with several unreachable addresses (``socket.create_connection`` gives each the full timeout)
or an IdP that drips one byte at a time could each hold a fetch, and every request waiting for it,
for many times ``JWKS_TIMEOUT``. :class:`Deadline` bounds them all together:

* the host name is resolved in a worker thread that the fetch abandons when the deadline passes
  (``getaddrinfo`` cannot be interrupted; the thread ends when the resolver gives up, and at most
  :data:`MAX_PENDING` resolutions are ever in flight, one per host and port);
* each address gets an equal share of the time left (the last one all of it), never more;
* every socket the fetch opens is registered, and a timer shuts them down at the deadline, which
  ends a blocked connect, TLS handshake or read; the fetch then raises ``TimeoutError``.

The stated bound: a fetch returns or fails within ``JWKS_TIMEOUT`` + :data:`MARGIN`.

A request that makes more than one fetch (a realm of ``ISSUERS`` found by discovery: its discovery
document, then its key set) runs inside :func:`request_deadline`: one ``JWKS_TIMEOUT`` started
before the first fetch. Every fetch of that request (:func:`~simplejwt_patches.transport.http_get`)
and every wait for a fetch in flight gets only what is left of it (:func:`time_left`), so the
request, not each fetch, returns or fails within ``JWKS_TIMEOUT`` + :data:`MARGIN`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from contextvars import ContextVar
from typing import Any

from .refetch import elapsed

__all__ = [
    "MARGIN",
    "MAX_PENDING",
    "MIN_FETCH",
    "Deadline",
    "NotSent",
    "fetch_time_left",
    "request_deadline",
    "resolve",
    "time_left",
]

#: Seconds a fetch may overrun ``JWKS_TIMEOUT`` (thread hand-offs and the timer firing; measured < 20 ms).
MARGIN = 0.25
#: Name resolutions in flight at once (each an abandoned thread until the resolver gives up).
MAX_PENDING = 16

#: Seconds a fetch needs left of the request's deadline to be sent, and a demand refetch to spend the
#: budget (a quarter of ``JWKS_TIMEOUT`` when that is shorter): less, and the IdP is not asked (NotSent)
#: and the budget is kept for a request that can use it.
MIN_FETCH = 0.1

AddrInfo = tuple[Any, Any, int, str, Any]


class NotSent(TimeoutError):
    """A fetch not sent: too little was left of the request's deadline. It proves the IdP down only when
    an earlier fetch of the same request failed at the IdP (``after_idp_failure``: a discovery document
    that hung); otherwise the time went elsewhere (a slow shared cache), and the shared cache's last good
    set or document must not be served on its account (:func:`unsent_without_idp_failure`)."""

    def __init__(self, message: str, *, after_idp_failure: bool = False) -> None:
        super().__init__(message)
        self.after_idp_failure = after_idp_failure


def unsent_without_idp_failure(exc: BaseException) -> bool:
    """Whether ``exc``'s chain holds a :class:`NotSent` of a request no IdP fetch of which had failed."""
    from .diagnostics import causes

    return any(isinstance(err, NotSent) and not err.after_idp_failure for err in causes(exc))


def fetch_time_left(timeout: float, deadline: float) -> bool:
    """Whether a fetch ending at ``deadline`` (:func:`~simplejwt_patches.refetch.elapsed` clock) still has
    :data:`MIN_FETCH` (or a quarter of ``timeout``) to run in."""
    return not too_little_to_fetch(deadline - elapsed(), timeout)


def too_little_to_fetch(left: float, timeout: float) -> bool:
    """Whether ``left`` seconds are less than a fetch needs: :data:`MIN_FETCH`, or a quarter of ``timeout``."""
    return left < min(MIN_FETCH, timeout / 4)


class _Resolution:
    """One ``getaddrinfo`` in a worker thread; every fetch resolving the same host and port waits for it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.done = threading.Event()
        self.result: list[AddrInfo] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
        except UnicodeError as exc:  # a label IDNA cannot encode: the name cannot resolve (not a bad key set)
            self.error = socket.gaierror(socket.EAI_NONAME, f"host name {self.host[:100]!r} is not valid IDNA ({exc})")
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting fetch
            self.error = exc
        finally:
            with _pending_lock:
                if _pending.get((self.host, self.port)) is self:
                    del _pending[(self.host, self.port)]
            self.done.set()


_pending: dict[tuple[str, int], _Resolution] = {}
_pending_lock = threading.Lock()


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(host: str, port: int, seconds: float) -> list[AddrInfo]:
    """``getaddrinfo(host, port)`` for TCP, waiting at most ``seconds``; ``TimeoutError`` past them."""
    if _is_address(host):  # a literal address needs no resolver
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    with _pending_lock:
        job = _pending.get((host, port))
        if job is None:
            if len(_pending) >= MAX_PENDING:
                raise TimeoutError(f"{MAX_PENDING} name resolutions are already pending: the resolver does not answer")
            job = _pending[(host, port)] = _Resolution(host, port)
            threading.Thread(target=job.run, name="simplejwt_patches-resolve", daemon=True).start()
    if not job.done.wait(max(0.0, seconds)):
        raise TimeoutError(f"resolving {host[:100]!r} took longer than the JWKS_TIMEOUT deadline")
    if job.error is not None:
        error = job.error
        try:
            copy = type(error)(*error.args)  # each fetch raises its own exception (own traceback and cause)
        except Exception:  # noqa: BLE001 - an exception class with another signature
            raise error from None
        raise copy
    return list(job.result)


#: The request deadline of this context: (its end on the real monotonic clock, the thread it belongs to,
#: ``[whether a fetch of this request failed at the IdP]``, shared with the deadlines nested in it).
_REQUEST: ContextVar[tuple[float, int, list[bool]] | None] = ContextVar(
    "simplejwt_patches_request_deadline", default=None
)


class request_deadline:  # used like a function: ``with request_deadline(seconds):``
    """One deadline for every fetch and wait of the request in this thread (the earliest one wins)."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._token: Any = None

    def __enter__(self) -> None:
        ends, thread = elapsed() + self._seconds, threading.get_ident()
        outer = _REQUEST.get()
        if outer is None or outer[1] != thread or outer[0] > ends:
            failed = outer[2] if outer is not None and outer[1] == thread else [False]
            self._token = _REQUEST.set((ends, thread, failed))

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _REQUEST.reset(self._token)
            self._token = None


def note_idp_failure() -> None:
    """Record that a fetch of this thread's request failed at the IdP (an error answer, a timeout)."""
    current = _REQUEST.get()
    if current is not None and current[1] == threading.get_ident():
        current[2][0] = True


def idp_failed_in_request() -> bool:
    """Whether a fetch of this thread's request failed at the IdP (:func:`note_idp_failure`)."""
    current = _REQUEST.get()
    return current is not None and current[1] == threading.get_ident() and current[2][0]


def time_left() -> float | None:
    """Seconds left of this thread's request deadline (never negative); ``None`` outside one.

    A thread that inherited the context (a background refresh) is not bound by the request that
    started it: the deadline belongs to the thread that set it.
    """
    current = _REQUEST.get()
    if current is None or current[1] != threading.get_ident():
        return None
    return max(0.0, current[0] - elapsed())


class Deadline:
    """The deadline of one fetch (see the module docstring); a context manager around the request.

    ``shown`` is the ``JWKS_TIMEOUT`` messages name when ``seconds`` is what a request deadline left of it.
    """

    def __init__(self, seconds: float, shown: float | None = None) -> None:
        self.seconds = shown if shown is not None else seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._handles: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.close()

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.ends - time.monotonic())

    def passed(self) -> TimeoutError:
        """The error a fetch raises when the deadline has passed."""
        return TimeoutError(f"JWKS_TIMEOUT deadline of {self.seconds:g} s passed")

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            handles = list(self._handles)
        for handle in handles:
            try:
                handle.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _register(self, sock: socket.socket) -> socket.socket:
        """Keep a duplicate of ``sock``: TLS detaches the original object, the shutdown must still reach it."""
        handle = sock.dup()
        with self._lock:
            self._handles.append(handle)
            expired = self.expired
        if expired:
            self._expire()
        return handle

    def _forget(self, handle: socket.socket) -> None:
        with self._lock:
            if handle in self._handles:
                self._handles.remove(handle)
        handle.close()

    def create_connection(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None, *args: Any, **kwargs: Any
    ) -> socket.socket:
        """``socket.create_connection`` within the deadline: bounded resolution, a share of the time per address."""
        host, port = address
        if self.remaining() <= 0:
            raise self.passed()
        infos = resolve(host, port, self.remaining())
        cap = float(timeout) if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else None
        error: OSError | None = None
        for index, (family, kind, proto, _, sockaddr) in enumerate(infos):
            remaining = self.remaining()
            if remaining <= 0:
                break
            budget = remaining / (len(infos) - index)
            sock = socket.socket(family, kind, proto)
            handle = self._register(sock)
            try:
                sock.settimeout(min(budget, cap) if cap else budget)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                error = exc
                self._forget(handle)
                sock.close()
                continue
            sock.settimeout(max(self.remaining(), 0.001))  # reads: the timer ends them at the deadline
            return sock
        if self.remaining() <= 0:
            raise TimeoutError(
                f"JWKS_TIMEOUT deadline of {self.seconds:g} s passed while connecting to {host[:100]!r} "
                f"({len(infos)} address{'es' if len(infos) != 1 else ''})"
            ) from error
        if error is not None:
            raise error
        raise OSError(f"getaddrinfo returned no address for {host[:100]!r}")
