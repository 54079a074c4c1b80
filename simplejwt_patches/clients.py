"""Which ``PyJWKClient`` instances are ours: SimpleJWT's, and no other.

Scope: only ``PyJWKClient`` instances owned by a SimpleJWT ``TokenBackend`` are *managed*. They
are discovered when a backend first uses its client (the ``backend.verifying-key.jwks-errors``
fixer) and, at ``apply()``, on ``state.token_backend`` if another app already imported it. Every
other ``PyJWKClient`` in the process keeps vanilla PyJWT behaviour, and urllib itself is never
patched. :func:`managed_only` is the one answer to "is this client ours" for every wrapper.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import safe_url
from .keysource import KeySource

__all__ = [
    "ClientState",
    "adopt",
    "adopt_existing_clients",
    "managed_client_count",
    "managed_only",
    "release_all_clients",
    "state_of",
]

logger = logging.getLogger("simplejwt_patches.jwks")


@dataclass
class ClientState:
    """Our bookkeeping for one managed client: its resilient key source."""

    client_ref: Callable[[], Any]
    source: KeySource | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key_source(self) -> KeySource:
        """The client's :class:`~simplejwt_patches.keysource.KeySource` (created on first use)."""
        if self.source is None:
            with self.lock:
                if self.source is None:
                    self.source = KeySource(self.client_ref)
        return self.source


_clients: weakref.WeakKeyDictionary[Any, ClientState] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def _pyjwk_client_class() -> type | None:
    try:
        from jwt import PyJWKClient
    except ImportError:
        return None
    return PyJWKClient


#: The client ``state_of`` answered last and its state: every warm request asks twice for the same one.
_last: tuple[Callable[[], Any], ClientState] | None = None


def state_of(client: Any) -> ClientState | None:
    """Our state for ``client`` when it is managed, else ``None``."""
    global _last
    last = _last
    if last is not None and client is not None and last[0]() is client:
        return last[1]
    try:
        state = _clients.get(client)
    except TypeError:  # not weak-referenceable: never managed
        return None
    if state is not None:
        _last = (state.client_ref, state)
    return state


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def managed_only(
    func: Callable[[Callable[..., Any], ClientState, Any, tuple[Any, ...], dict[str, Any]], Any],
) -> Wrapper:
    """Decorate a wrapt wrapper so it runs only for managed clients (others get the original)."""

    @functools.wraps(func)
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        state = state_of(instance)
        if state is None:
            return wrapped(*args, **kwargs)
        return func(wrapped, state, instance, args, kwargs)

    return wrapper


def adopt(client: Any) -> ClientState | None:
    """Manage ``client`` if it is a real ``PyJWKClient`` (mocks and other objects are left alone)."""
    state = state_of(client)
    if state is not None:
        return state
    cls = _pyjwk_client_class()
    if cls is None or not isinstance(client, cls):
        return None
    with _clients_lock:
        state = _clients.get(client)
        if state is None:
            state = ClientState(weakref.ref(client))
            _clients[client] = state
            logger.debug("managing SimpleJWT's JWKS client for %s", safe_url(str(getattr(client, "uri", ""))))
    return state


def adopt_existing_clients() -> None:
    """Manage the client of ``state.token_backend`` when another app imported it before us."""
    state_module = sys.modules.get("rest_framework_simplejwt.state")
    backend = getattr(state_module, "token_backend", None) if state_module else None
    client = getattr(backend, "jwks_client", None)
    if client is not None:
        adopt(client)


def release_all_clients() -> None:
    """Stop managing every client (their key sources are dropped with them)."""
    global _last
    with _clients_lock:
        _clients.clear()
        _last = None


def managed_client_count() -> int:
    """How many live clients are managed."""
    return len(_clients)
