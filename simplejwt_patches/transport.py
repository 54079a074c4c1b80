"""How a managed client's key set is fetched: one HTTP GET, its failures, its cache lifetime.

For a managed client (:mod:`simplejwt_patches.clients`) the key set is fetched by :func:`fetch` with
the configured headers
(User-Agent first: urllib's ``Python-urllib/3.x`` is what WAFs in front of Keycloak reject),
timeout, TLS context, proxy, redirect policy and size cap, on every PyJWT from 2.0 on, and every
failure is raised as PyJWT's own exception class *from* the urllib/ssl/json error that caused it.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import math
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .conf import Options, get_options, jwk_url_problems, proxy_problem
from .deadline import Deadline, NotSent, idp_failed_in_request, note_idp_failure, time_left, too_little_to_fetch
from .diagnostics import describe, safe_url
from .failures import JWKSFailure, JWKSResponseTooLarge, failure_from
from .issuer_tags import issuer_of
from .keys import check_depth, log_dropped, usable_signing_keys
from .versions import pyjwt_caps

__all__ = [
    "Deadline",
    "JWKSResponseTooLarge",
    "RawResponse",
    "cache_lifetime",
    "errors",
    "fetch",
    "fetch_payload",
    "http_get",
    "parse_key_set",
]

logger = logging.getLogger("simplejwt_patches.jwks")


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


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follow redirects (``JWKS_FOLLOW_REDIRECTS = True``), but never from https to http, and never
    with a credential to another origin.

    A redirect to another origin (scheme, host or port) keeps only the harmless headers (an
    allow-list: User-Agent, Accept, Accept-Encoding ... minus ``JWKS_SECRET_HEADERS``); every other
    ``JWKS_HEADERS`` value (``Authorization``, API keys) stays with the configured origin.
    """

    def __init__(self, options: Options) -> None:
        super().__init__()
        self._options = options

    def redirect_request(  # type: ignore[override]
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if req.full_url.lower().startswith("https:") and not newurl.lower().startswith("https:"):
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect from https to {safe_url(newurl)} refused (TLS downgrade)", headers, fp
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            for name in list(new.headers):
                if self._options.is_secret(name):
                    del new.headers[name]
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "JWKS redirect to another origin (%s): only harmless headers follow it: %s",
                    safe_url(new.full_url),
                    sorted(new.headers),
                )
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; unusable URLs have no origin in common."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        return "", url, -1


def _connection_class(base: type[http.client.HTTPConnection], deadline: Deadline) -> Any:
    def build(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        connection = base(*args, **kwargs)
        connection._create_connection = deadline.create_connection  # type: ignore[attr-defined]
        return connection

    return build


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connection_class(http.client.HTTPConnection, self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline, context: ssl.SSLContext | None) -> None:
        super().__init__(context=context)
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        kwargs: dict[str, Any] = {"context": self._context}  # type: ignore[attr-defined]
        if sys.version_info < (3, 12):
            kwargs["check_hostname"] = self._check_hostname  # type: ignore[attr-defined]
        return self.do_open(_connection_class(http.client.HTTPSConnection, self._deadline), req, **kwargs)


@functools.lru_cache(maxsize=1)
def _default_context() -> ssl.SSLContext:
    """urllib's default TLS context, built once (loading the system CAs takes ~20 ms)."""
    return ssl.create_default_context()


def _opener(options: Options, deadline: Deadline) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [
        _HTTPHandler(deadline),
        _HTTPSHandler(deadline, options.ssl_context or _default_context()),
    ]
    if options.proxy is not None:
        proxies = {} if options.proxy == "" else {"http": options.proxy, "https": options.proxy}
        handlers.append(urllib.request.ProxyHandler(proxies))
    handlers.append(_NoDowngrade(options) if options.follow_redirects else _RefuseRedirects())
    return urllib.request.build_opener(*handlers)


def errors() -> tuple[type[Exception], type[Exception]]:
    """(network error class, content error class) of the installed PyJWT."""
    import jwt

    content = jwt.PyJWKClientError
    network = getattr(jwt, "PyJWKClientConnectionError", content)
    return network, content


def _drop_unusable_keys(payload: dict[str, Any], url: str) -> dict[str, Any]:
    """PyJWT < 2.5 fails the whole set on one key it cannot load (Keycloak's RSA-OAEP key)."""
    usable, dropped = usable_signing_keys(payload)
    log_dropped(dropped, url)
    keep = {id(k._jwk_data) for k in usable.values() if hasattr(k, "_jwk_data")}
    return {**payload, "keys": [e for e in payload["keys"] if id(e) in keep]}


def _summary(payload: Any) -> list[str]:
    keys = payload.get("keys") if isinstance(payload, dict) else None
    if not isinstance(keys, list):
        return []
    return [
        f"{_text(k.get('kid'))}:{_text(k.get('alg'))}/{_text(k.get('use'))}"
        if isinstance(k, dict)
        else "<not an object>"
        for k in keys[:20]
    ]


def _text(value: Any) -> str:
    return value[:60] if isinstance(value, str) else f"<{type(value).__name__}>" if value is not None else "None"


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
    returned as a response with an empty body. Within a
    :func:`~simplejwt_patches.deadline.request_deadline` the fetch gets only what is left of it (a
    realm's key set after its discovery document). Raises ``urllib.error.HTTPError`` for other
    non-2xx (closed, ``.code`` kept), ``URLError`` / ``OSError`` / ``http.client.HTTPException``
    for transport failures, and :class:`JWKSResponseTooLarge` past ``JWKS_MAX_BYTES``.
    """
    refusal = _refusal(url, options)
    if refusal is not None:
        raise refusal
    headers = dict(options.headers)
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    seconds = options.timeout
    left = time_left()  # a request that fetched before (a realm's discovery document) has only what is left
    if left is not None and left < seconds:
        if too_little_to_fetch(left, options.timeout):  # not worth an IdP request
            raise NotSent(
                f"JWKS_TIMEOUT deadline of {options.timeout:g} s passed before {safe_url(url)} was requested "
                "(the request's earlier fetches or waits took it)",
                after_idp_failure=idp_failed_in_request(),
            )
        seconds = left
    deadline = Deadline(seconds, options.timeout)
    try:
        with deadline, _opener(options, deadline).open(request, timeout=seconds) as response:
            status = response.status
            response_headers = response.headers
            body = response.read(options.max_bytes + 1)
            if deadline.expired:
                raise TimeoutError(f"JWKS_TIMEOUT deadline of {options.timeout:g} s passed")
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and (etag or last_modified):
            return RawResponse(
                url, 304, "", b"", (time.perf_counter() - started) * 1000,
                exc.headers.get("Cache-Control", "") if exc.headers else "", etag, last_modified,
            )  # fmt: skip
        note_idp_failure()
        raise
    except (OSError, http.client.HTTPException) as exc:
        note_idp_failure()
        cut = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
        if deadline.expired and not cut:  # a TimeoutError of the deadline's own says what it cut
            raise TimeoutError(f"JWKS_TIMEOUT deadline of {options.timeout:g} s passed") from exc
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


def _refusal(url: str, options: Options) -> JWKSFailure | None:
    """Why ``url`` is not even sent with these options (what the system checks report as errors)."""
    unusable = [p for p in jwk_url_problems(url) if p.id.startswith("E")]  # E030, E031: what check reports
    if unusable:
        return JWKSFailure("config", f"{unusable[0].msg} (simplejwt_patches.{unusable[0].id})")
    if options.proxy is None:  # the environment's proxy settings, as urllib's ProxyHandler() reads them
        try:
            scheme, host = urlsplit(url).scheme.lower(), urlsplit(url).hostname or ""
            proxy = urllib.request.getproxies().get(scheme)
            why = proxy_problem(proxy) if proxy and not urllib.request.proxy_bypass(host) else None
        except (ValueError, OSError):
            why = None
        if why:
            return JWKSFailure(
                "config",
                f"the environment's proxy for {scheme}:// URLs ({scheme.upper()}_PROXY): {why}; the request is not "
                "sent (set SIMPLE_JWT_PATCHES['JWKS_PROXY'] to an http:// proxy, or '' to connect directly)",
            )
    return None


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
            max_age = float(directives["max-age"][:32])
        except ValueError:
            max_age = math.nan
        if not math.isfinite(max_age):  # nan, inf, garbage: an IdP (or a proxy) is confused
            logger.warning(
                "JWKS response has an unusable Cache-Control max-age %r; using JWKS_CACHE_LIFESPAN=%g s",
                directives["max-age"][:32],
                options.cache_lifespan,
            )
            return options.cache_lifespan, True
        return min(max(max_age, options.cache_min), options.cache_max), True
    return options.cache_lifespan, True


def parse_key_set(body: bytes) -> dict[str, Any]:
    """The JSON object of a JWKS body; :class:`JWKSFailure` (malformed) when it is not one.

    Bounded: a body nested deeper than a key set can be (or deep enough to exhaust the parser's
    recursion) is malformed, never a ``RecursionError``.
    """
    try:
        payload = json.loads(body)
    except RecursionError as exc:
        raise JWKSFailure("malformed", "the JSON nests too deeply to parse") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise JWKSFailure("malformed", describe(exc)) from exc
    if not isinstance(payload, dict):
        raise JWKSFailure("malformed", f"expected a JSON object, got {type(payload).__name__}")
    check_depth(payload)
    return payload


def fetch_payload(client: Any, options: Options | None = None, **conditional: str | None) -> dict[str, Any]:
    """Fetch and parse ``client.uri`` with the configured options; raise PyJWT errors with causes.

    Logs every fetch at DEBUG (URL, status, duration, size, kids/algs, headers with secrets
    masked) and every failure at WARNING with the status or reason; sends the ``jwks_fetched`` /
    ``jwks_fetch_failed`` signals. A fetch not sent for want of time (:class:`~.deadline.NotSent`) is
    one WARNING saying so, and no signal: the IdP was asked nothing.
    """
    return fetch(client, options, etag=conditional.get("etag"), last_modified=conditional.get("last_modified"))[0]


def fetch(
    client: Any,
    options: Options | None = None,
    *,
    cached: tuple[dict[str, Any], int] | None = None,
    **conditional: str | None,
) -> tuple[dict[str, Any], RawResponse]:
    """:func:`fetch_payload` returning the :class:`RawResponse` too.

    ``cached`` is ``(payload, size in bytes)`` of the set a conditional request revalidates: on a
    ``304`` it is the payload returned and what ``jwks_fetched`` and the DEBUG line report
    (``payload`` is ``{}`` on a 304 without it).
    """
    from . import signals

    options = options or get_options()
    network_error, content_error = errors()
    url = str(client.uri)
    shown = safe_url(url)
    issuer = issuer_of(client)  # the realm (ISSUERS) this client serves, None for SimpleJWT's own
    realm = f" for issuer {issuer[:200]!r}" if issuer is not None else ""
    started = time.perf_counter()
    status: int | None = None
    try:
        try:
            raw = http_get(url, options, **conditional)
        except urllib.error.HTTPError as exc:
            status = exc.code
            raise
        status = raw.status
        payload = parse_key_set(raw.body) if raw.status != 304 else cached[0] if cached is not None else {}
        if raw.status != 304 and not pyjwt_caps().skips_unusable_keys:
            payload = _drop_unusable_keys(payload, shown)
    except NotSent as exc:  # the IdP was asked nothing: no fetch failed (no jwks_fetch_failed), the request timed out
        failure = JWKSFailure("timeout", str(exc))
        failure.__cause__ = exc
        logger.warning("JWKS fetch not sent: %s%s", exc, realm)  # the message names the URL
        raise network_error(f'Fail to fetch data from the url, err: "{failure.detail}"') from failure
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError, JWKSFailure) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        failure = exc if isinstance(exc, JWKSFailure) else failure_from(exc, status)
        if failure is not exc:
            failure.__cause__ = exc
        if failure.category.reason_code == "jwks_unavailable":
            logger.warning(
                "JWKS fetch from %s failed after %.0f ms: %s%s (headers sent: %s)%s",
                shown,
                elapsed,
                failure.detail,
                _hint(status),
                options.masked_headers(),
                realm,
            )
        else:
            logger.warning(
                "JWKS fetch from %s returned HTTP %s after %.0f ms but an unusable body: %s%s",
                shown,
                status,
                elapsed,
                failure.detail,
                realm,
            )
        signals.send(
            signals.jwks_fetch_failed,
            client,
            url=shown,
            status=status,
            reason=failure.detail,
            kind=failure.kind,
            exception=exc,
            duration_ms=elapsed,
            issuer=issuer,
        )
        if failure.category.reason_code == "jwks_unavailable":
            raise network_error(f'Fail to fetch data from the url, err: "{failure.detail}"') from failure
        raise content_error(f"The JWKS endpoint did not return a JSON key set: {failure.detail}") from failure
    size = cached[1] if raw.status == 304 and cached is not None else len(raw.body)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "JWKS fetched from %s: HTTP %s in %.1f ms, %d bytes, keys=%s, cache=%s, headers sent: %s%s",
            shown,
            status,
            raw.elapsed_ms,
            size,
            _summary(payload),
            "revalidated" if raw.status == 304 else "miss",
            options.masked_headers(),
            realm,
        )
    signals.send(
        signals.jwks_fetched,
        client,
        url=shown,
        status=status,
        duration_ms=raw.elapsed_ms,
        size=size,
        kids=_kids(payload),
        issuer=issuer,
    )
    return payload, raw


def _kids(payload: dict[str, Any]) -> list[str]:
    keys = payload.get("keys")
    if not isinstance(keys, list):
        return []
    return [k["kid"] for k in keys[:100] if isinstance(k, dict) and isinstance(k.get("kid"), str)]


def _hint(status: int | None) -> str:
    if status == 403:
        return (
            " - the identity provider (or a WAF/CDN in front of it) refused the request; check "
            "SIMPLE_JWT_PATCHES['JWKS_HEADERS'] (User-Agent, API keys)"
        )
    return ""
