"""Safe descriptions of exceptions and tokens for logs.

Nothing here ever returns a token, a signature or a secret header value: tokens are reduced to
their unverified ``kid``/``alg``/``iss``/``aud``/``exp``/``jti`` and a SHA-256 prefix, and any
text that might quote the token is redacted before it is logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "causes",
    "describe",
    "fingerprint",
    "promote_context",
    "redact",
    "redact_json",
    "root_cause",
    "safe_url",
    "segment_json",
    "token_segments",
]

REDACTED = "[redacted]"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception below it, following ``__cause__`` (then ``__context__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nxt = current.__cause__
        if nxt is None and not current.__suppress_context__:
            nxt = current.__context__
        current = nxt


def root_cause(exc: BaseException) -> BaseException:
    """The deepest exception of the chain."""
    return list(causes(exc))[-1]


def promote_context(exc: BaseException) -> BaseException:
    """Turn implicit ``__context__`` links into explicit ``__cause__`` links along the chain.

    Upstream code that does ``except X: raise Y(...)`` (no ``from``) leaves the real cause only in
    ``__context__``; DRF and most error trackers follow ``__cause__``. Returns ``exc``.
    """
    for current in causes(exc):
        if current.__cause__ is None and current.__context__ is not None and not current.__suppress_context__:
            current.__cause__ = current.__context__
    return exc


def describe(exc: BaseException) -> str:
    """A short, human reason: ``HTTP 403 Forbidden``, ``connection refused``, ``timed out`` ..."""
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError) and isinstance(exc.reason, BaseException):
        return describe(exc.reason)
    if isinstance(exc, URLError):
        return str(exc.reason)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        text = str(exc)
        return f"timed out ({text})" if "JWKS_TIMEOUT" in text else "timed out"  # the deadline says what it cut
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg} at position {exc.pos})"
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def safe_url(url: str) -> str:
    """``url`` as every output shows it: the one place URLs are made safe to show.

    User-info, query and fragment are dropped (any of them may carry credentials), and so is all that
    stands before the URL's last ``@`` (a password with an unencoded ``/``, ``?`` or ``#``); an IPv6 host
    keeps its brackets (``http://[::1]:8080/...``); control, space and non-ASCII characters are
    percent-encoded (a URL can never break a log line); an unusable port is named, not raised;
    the result is at most ~300 characters.
    """
    text = str(url)
    if "@" in text:
        # User-info with an unencoded '/', '?' or '#' ends the authority early ('user:pw#@host'), and
        # without '//' there is no authority at all: whatever stands before the URL's last '@' may be
        # a password, so it is never shown. Only a leading scheme (mistyped ones too: 'htps://',
        # 'https//', 'https:/') is kept; a '//' inside the credentials or after the '@' is no scheme.
        prefix = _SCHEME_LIKE.match(text)
        start = prefix.end() if prefix else 0
        text = text[:start] + text[text.rindex("@") + 1 :]
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:
        return REDACTED
    try:
        port: int | str | None = parts.port
    except ValueError:
        port = "<invalid-port>"
    host = quote(host, safe=_HOST_SAFE, errors="replace")
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    scheme = quote(parts.scheme, safe="+-.", errors="replace")
    path = parts.path
    path = quote(path, safe=_PATH_SAFE, errors="replace")
    shown = urlunsplit((scheme, host, path, "", ""))
    return shown if len(shown) <= _MAX_URL else shown[: _MAX_URL - 3] + "..."


_HOST_SAFE = ":.-_~%!$&'()*+,;="
_SCHEME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,8}(?::/+|/+)")
_PATH_SAFE = "/:@.-_~%!$&'()*+,;=[]"
_MAX_URL = 300


def token_segments(raw: str | bytes | None) -> list[str]:
    """The raw token and its dot-separated parts (long enough to be recognisable)."""
    if raw is None:
        return []
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    return [text] + [part for part in text.split(".") if len(part) >= 8]


def redact(text: str, raw_token: str | bytes | None) -> str:
    """``text`` with the token and each of its segments replaced by ``[redacted]``."""
    for segment in sorted(token_segments(raw_token), key=len, reverse=True):
        if segment:
            text = text.replace(segment, REDACTED)
    return text


def redact_json(value: Any, raw_token: str | bytes | None, *, keys: bool = False, depth: int = 0) -> Any:
    """JSON data with :func:`redact` applied to every string value (and to keys when ``keys``).

    Redacting the serialised text instead could cut through the structure itself (a token segment
    such as ``", "ok": `` would make the output invalid JSON); fixed keys stay intact unless asked.
    """
    if depth > 64:  # bounded: the doctor's report is at most ~25 levels deep
        return REDACTED
    if isinstance(value, str):
        return redact(value, raw_token)
    if isinstance(value, list):
        return [redact_json(v, raw_token, keys=keys, depth=depth + 1) for v in value]
    if isinstance(value, dict):
        return {
            (redact(k, raw_token) if keys and isinstance(k, str) else k): redact_json(
                v, raw_token, keys=keys, depth=depth + 1
            )
            for k, v in value.items()
        }
    return value


def segment_json(segment: str) -> Any:
    """The JSON value of one base64url JWT segment (header or claims), unverified."""
    from jwt.utils import base64url_decode

    return json.loads(base64url_decode(segment.encode("ascii")))


def fingerprint(raw: str | bytes | None) -> dict[str, Any]:
    """Unverified, non-secret facts about a token, for logs.

    ``sha256`` is the first 12 hex digits of the token's SHA-256: enough to correlate log lines,
    useless to replay the token.
    """
    if raw is None:
        return {}
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    info: dict[str, Any] = {"sha256": hashlib.sha256(text.encode("latin-1", "replace")).hexdigest()[:12]}
    parts = text.split(".")
    try:
        header = segment_json(parts[0])
        if isinstance(header, dict):
            info.update({k: header.get(k) for k in ("kid", "alg", "typ") if k in header})
    except Exception:  # noqa: BLE001 - a malformed token is described, not raised
        info["header"] = "unreadable"
    try:
        claims = segment_json(parts[1])
        if isinstance(claims, dict):
            info.update({k: claims.get(k) for k in ("iss", "aud", "exp", "jti") if k in claims})
    except Exception:  # noqa: BLE001
        info["claims"] = "unreadable"
    return {k: _short(v) for k, v in info.items()}


def _short(value: Any) -> Any:
    """A claim or header value as a log line may show it: bounded, whatever the token carries."""
    if isinstance(value, str):
        return value[:200] + "..." if len(value) > 200 else value
    if value is None or isinstance(value, (bool, int, float)):
        return value if not isinstance(value, int) or abs(value) < 10**30 else f"<int of {len(str(value))} digits>"
    if isinstance(value, list) and len(value) <= 5 and all(isinstance(v, str) and len(v) <= 100 for v in value):
        return value  # e.g. an aud list
    return f"<{type(value).__name__}>"
