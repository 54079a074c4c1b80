"""SimpleJWT's JWKS clients: which ones we manage, and how their key sets are fetched.

Scope: only ``PyJWKClient`` instances owned by a SimpleJWT ``TokenBackend`` are *managed*.
They are discovered when a backend first uses its client (the
``backend.verifying-key.jwks-errors`` fixer) and, at ``apply()``, on ``state.token_backend`` if
another app already imported it. Every other ``PyJWKClient`` in the process keeps vanilla PyJWT
behaviour, and urllib itself is never patched.

For a managed client the key set is fetched by :func:`fetch_payload` with the configured headers
(User-Agent first: urllib's ``Python-urllib/3.x`` is what WAFs in front of Keycloak reject),
timeout, TLS context, proxy, redirect policy and size cap, on every PyJWT from 2.0 on, and every
failure is raised as PyJWT's own exception class *from* the urllib/ssl/json error that caused it.
"""

from __future__ import annotations

import http.client
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from typing import Any

from .conf import Options, get_options
from .diagnostics import describe, safe_url
from .versions import pyjwt_caps

__all__ = [
    "ClientState",
    "JWKSResponseTooLarge",
    "RawResponse",
    "adopt",
    "adopt_existing_clients",
    "cache_lifetime",
    "errors",
    "fetch",
    "fetch_payload",
    "http_get",
    "managed_client_count",
    "parse_key_set",
    "release_all_clients",
    "state_of",
]

logger = logging.getLogger("simplejwt_patches.jwks")


class JWKSResponseTooLarge(ValueError):
    """The JWKS response exceeded ``JWKS_MAX_BYTES`` (a key set is a few KiB)."""


@dataclass
class ClientState:
    """Our bookkeeping for one managed client: its resilient key source."""

    client_ref: Any
    source: Any = None  # simplejwt_patches.keysource.KeySource, created lazily
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key_source(self) -> Any:
        """The client's :class:`~simplejwt_patches.keysource.KeySource`."""
        if self.source is None:
            from .keysource import KeySource

            with self.lock:
                if self.source is None:
                    self.source = KeySource(self)
        return self.source


_clients: weakref.WeakKeyDictionary[Any, ClientState] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def _pyjwk_client_class() -> type | None:
    try:
        from jwt import PyJWKClient
    except ImportError:
        return None
    return PyJWKClient


def state_of(client: Any) -> ClientState | None:
    """Our state for ``client`` when it is managed, else ``None``."""
    try:
        return _clients.get(client)
    except TypeError:  # not weak-referenceable: never managed
        return None


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
    with _clients_lock:
        _clients.clear()


def managed_client_count() -> int:
    """How many live clients are managed."""
    return len(_clients)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects with an error that names the target (as PyJWT 2.14+ refuses them)."""

    def redirect_request(  # type: ignore[override]
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        raise urllib.error.HTTPError(
            req.full_url,
            code,
            f"redirect to {safe_url(newurl)} refused (SIMPLE_JWT_PATCHES['JWKS_FOLLOW_REDIRECTS'] is False)",
            headers,
            fp,
        )


_opener_cache: tuple[Options, urllib.request.OpenerDirector] | None = None


def _opener(options: Options) -> urllib.request.OpenerDirector:
    global _opener_cache
    cached = _opener_cache
    if cached is not None and cached[0] is options:
        return cached[1]
    handlers: list[urllib.request.BaseHandler] = []
    if options.proxy is not None:
        proxies = {} if options.proxy == "" else {"http": options.proxy, "https": options.proxy}
        handlers.append(urllib.request.ProxyHandler(proxies))
    if options.ssl_context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=options.ssl_context))
    if not options.follow_redirects:
        handlers.append(_RefuseRedirects())
    opener = urllib.request.build_opener(*handlers)
    _opener_cache = (options, opener)
    return opener


def errors() -> tuple[type[Exception], type[Exception]]:
    """(network error class, content error class) of the installed PyJWT."""
    import jwt

    content = jwt.PyJWKClientError
    network = getattr(jwt, "PyJWKClientConnectionError", content)
    return network, content


def _drop_unusable_keys(payload: dict[str, Any], url: str) -> dict[str, Any]:
    """PyJWT < 2.5 fails the whole set on one key it cannot load (Keycloak's RSA-OAEP key)."""
    from jwt.api_jwk import PyJWK  # not re-exported by PyJWT 2.0.x

    keys = payload.get("keys")
    if not isinstance(keys, list):
        return payload
    usable = []
    for key in keys:
        try:
            PyJWK(key)
        except Exception as exc:  # noqa: BLE001 - PyJWT 2.0-2.4 raise several types here
            kid = key.get("kid") if isinstance(key, dict) else None
            alg = key.get("alg") if isinstance(key, dict) else None
            logger.debug(
                "JWKS %s: skipping key kid=%s alg=%s that PyJWT %s cannot load (%s)",
                url,
                kid,
                alg,
                pyjwt_caps().version,
                type(exc).__name__,
            )
            continue
        usable.append(key)
    return {**payload, "keys": usable}


def _summary(payload: dict[str, Any]) -> list[str]:
    keys = payload.get("keys")
    if not isinstance(keys, list):
        return []
    return [f"{k.get('kid')}:{k.get('alg')}/{k.get('use')}" if isinstance(k, dict) else "<not an object>" for k in keys]


@dataclass(frozen=True)
class RawResponse:
    """A JWKS HTTP response as received (body capped at ``JWKS_MAX_BYTES``)."""

    url: str
    status: int
    content_type: str
    body: bytes
    elapsed_ms: float
    cache_control: str = ""
    etag: str | None = None
    last_modified: str | None = None


def http_get(url: str, options: Options, *, etag: str | None = None, last_modified: str | None = None) -> RawResponse:
    """GET ``url`` exactly as SimpleJWT's managed clients do (headers, timeout, TLS, proxy, redirects).

    With ``etag``/``last_modified`` the request is conditional and a ``304 Not Modified`` is
    returned as a response with an empty body. Raises ``urllib.error.HTTPError`` for other
    non-2xx (closed, ``.code`` kept), ``URLError`` / ``OSError`` / ``http.client.HTTPException``
    for transport failures, and :class:`JWKSResponseTooLarge` past ``JWKS_MAX_BYTES``.
    """
    headers = dict(options.headers)
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    try:
        with _opener(options).open(request, timeout=options.timeout) as response:
            status = response.status
            response_headers = response.headers
            body = response.read(options.max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and (etag or last_modified):
            return RawResponse(
                url, 304, "", b"", (time.perf_counter() - started) * 1000,
                exc.headers.get("Cache-Control", "") if exc.headers else "", etag, last_modified,
            )  # fmt: skip
        raise
    if len(body) > options.max_bytes:
        raise JWKSResponseTooLarge(
            f"response larger than JWKS_MAX_BYTES={options.max_bytes} bytes; refusing to parse it"
        )
    return RawResponse(
        url,
        status,
        response_headers.get("Content-Type", ""),
        body,
        (time.perf_counter() - started) * 1000,
        response_headers.get("Cache-Control", ""),
        response_headers.get("ETag"),
        response_headers.get("Last-Modified"),
    )


def cache_lifetime(cache_control: str, options: Options) -> tuple[float, bool]:
    """``(seconds, storable)`` for a response: ``max-age`` within ``[JWKS_CACHE_MIN, JWKS_CACHE_MAX]``,
    ``no-store`` -> ``JWKS_CACHE_MIN`` and not shared, otherwise ``JWKS_CACHE_LIFESPAN``."""
    directives = {}
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name] = value.strip().strip('"')
    if "no-store" in directives:
        return options.cache_min, False
    if "max-age" in directives:
        try:
            max_age = float(directives["max-age"])
        except ValueError:
            return options.cache_lifespan, True
        return min(max(max_age, options.cache_min), options.cache_max), True
    return options.cache_lifespan, True


def parse_key_set(body: bytes) -> dict[str, Any]:
    """The JSON object of a JWKS body (``ValueError`` when it is not one)."""
    payload: dict[str, Any] = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


def fetch_payload(client: Any, options: Options | None = None, **conditional: str | None) -> dict[str, Any]:
    """Fetch and parse ``client.uri`` with the configured options; raise PyJWT errors with causes.

    Logs every fetch at DEBUG (URL, status, duration, size, kids/algs, headers with secrets
    masked) and every failure at WARNING with the status or reason; sends the ``jwks_fetched`` /
    ``jwks_fetch_failed`` signals.
    """
    return fetch(client, options, **conditional)[0]


def fetch(client: Any, options: Options | None = None, **conditional: str | None) -> tuple[dict[str, Any], RawResponse]:
    """:func:`fetch_payload` returning the :class:`RawResponse` too (``payload`` is ``{}`` on a 304)."""
    from . import signals

    options = options or get_options()
    network_error, content_error = errors()
    url = str(client.uri)
    shown = safe_url(url)
    started = time.perf_counter()
    status: int | None = None
    try:
        try:
            raw = http_get(url, options, **conditional)
        except urllib.error.HTTPError as exc:
            status = exc.code
            raise
        status = raw.status
        payload = parse_key_set(raw.body) if raw.status != 304 else {}
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        reason = describe(exc)
        transport = not isinstance(exc, ValueError) or isinstance(exc, JWKSResponseTooLarge)
        if transport:
            logger.warning(
                "JWKS fetch from %s failed after %.0f ms: %s%s (headers sent: %s)",
                shown,
                elapsed,
                reason,
                _hint(status),
                options.masked_headers(),
            )
        else:  # JSONDecodeError, UnicodeDecodeError, not an object
            logger.warning(
                "JWKS fetch from %s returned HTTP %s after %.0f ms but an unusable body: %s",
                shown,
                status,
                elapsed,
                reason,
            )
        signals.send(
            signals.jwks_fetch_failed,
            client,
            url=shown,
            status=status,
            reason=reason,
            exception=exc,
            duration_ms=elapsed,
        )
        if transport:
            raise network_error(f'Fail to fetch data from the url, err: "{reason}"') from exc
        raise content_error(f"The JWKS endpoint did not return a JSON key set: {reason}") from exc
    if raw.status != 304 and not pyjwt_caps().skips_unusable_keys:
        payload = _drop_unusable_keys(payload, shown)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "JWKS fetched from %s: HTTP %s in %.1f ms, %d bytes, keys=%s, cache=miss, headers sent: %s",
            shown,
            status,
            raw.elapsed_ms,
            len(raw.body),
            _summary(payload),
            options.masked_headers(),
        )
    signals.send(
        signals.jwks_fetched,
        client,
        url=shown,
        status=status,
        duration_ms=raw.elapsed_ms,
        size=len(raw.body),
        kids=[k.get("kid") for k in payload.get("keys", []) if isinstance(k, dict)],
    )
    return payload, raw


def _hint(status: int | None) -> str:
    if status == 403:
        return (
            " - the identity provider (or a WAF/CDN in front of it) refused the request; check "
            "SIMPLE_JWT_PATCHES['JWKS_HEADERS'] (User-Agent, API keys)"
        )
    return ""
