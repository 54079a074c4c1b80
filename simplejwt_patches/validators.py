"""The rules of single settings: the validators :class:`simplejwt_patches.conf.Options` declares.

Each validator takes the raw value and a ``report`` callback (see :mod:`simplejwt_patches.schema`,
which holds the generic ones: numbers, booleans, choices, string lists) and returns the value to
use, or raises :class:`~simplejwt_patches.schema.Invalid`. Also the header rules (which values are
masked, which http.client can send), the proxy rule, and the rules for SimpleJWT's own
``JWK_URL`` (checks E030/E031/W020). Imported by :mod:`simplejwt_patches.conf`, which re-exports the
public names; never imports it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .diagnostics import safe_url
from .issuer_settings import IssuerOptions, issuer_label, validate_issuers
from .schema import SETTING, Invalid, Problem, Report, _shown, string_list
from .version import __version__
from .versions import pyjwt_caps

__all__ = [
    "HARMLESS_HEADERS",
    "MASK",
    "MAX_HEADER_VALUE",
    "MAX_PARTIES",
    "authorized_parties",
    "ca_bundle",
    "default_user_agent",
    "disable",
    "expose_error_detail",
    "has_userinfo",
    "header_problem",
    "headers",
    "is_secret",
    "issuers",
    "jwk_url_problems",
    "mask_headers",
    "party_claim",
    "proxy",
    "proxy_problem",
    "render_issuers",
    "secret_headers",
    "shared_cache",
    "ssl_context",
]

MASK = "***"
#: Request headers whose values are shown in logs, ``status()`` and the doctor. Every other
#: header a user configures may carry a credential (API keys, tokens, cookies), so it is masked.
HARMLESS_HEADERS = frozenset(
    {"user-agent", "accept", "accept-language", "accept-encoding", "cache-control", "pragma", "x-request-id"}
)


def default_user_agent() -> str:
    """``simplejwt-patches/<version> PyJWT/<version>``: never urllib's ``Python-urllib/3.x``."""
    pyjwt = pyjwt_caps().version
    return f"simplejwt-patches/{__version__} PyJWT/{pyjwt or 'unknown'}"


def mask_headers(headers: Mapping[str, str], secret: frozenset[str] = frozenset()) -> dict[str, str]:
    """Copy of ``headers`` with every value masked unless the header is harmless (names are kept)."""
    return {k: (MASK if is_secret(k, secret) else v) for k, v in headers.items()}


def is_secret(name: str, extra: frozenset[str]) -> bool:
    """Whether the value of header ``name`` is masked: it is not harmless, or listed in ``extra``."""
    lowered = name.lower()
    return lowered in extra or lowered not in HARMLESS_HEADERS


# -- validators of single settings (the attributes of conf.Options name them) --------------------


#: RFC 9110 ``tchar``: what a header name may consist of.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: Longest header value sent (servers answer 431 well below this; a key set request needs no more).
MAX_HEADER_VALUE = 8192


def header_problem(name: str, value: str, *, secret: bool) -> str | None:
    """Why http.client cannot send ``name: value`` (or a server would refuse it); ``None`` if it can.

    Names: 1-256 RFC 9110 token characters (no space, ``:``, CR/LF, non-ASCII). Values: Latin-1
    encodable, no CR, LF, NUL or other control characters but TAB, at most :data:`MAX_HEADER_VALUE`
    characters. The value itself is never quoted; for a harmless header the offending character is.
    """
    if not name or len(name) > 256 or not set(name) <= _TOKEN_CHARS:
        return (
            "its name is not a valid HTTP header name (1 to 256 of the characters A-Z a-z 0-9 !#$%&'*+-.^_`|~; no "
            "space, ':', CR/LF or non-ASCII)"
        )
    if len(value) > MAX_HEADER_VALUE:
        return f"its value is longer than {MAX_HEADER_VALUE} characters"
    for position, char in enumerate(value):
        code = ord(char)
        if code > 0xFF or (code < 0x20 and char != "\t") or code == 0x7F:
            what = "CR/LF (header injection)" if char in "\r\n" else (
                "a character outside Latin-1, which http.client cannot send" if code > 0xFF else "a control character"
            )  # fmt: skip
            shown = "" if secret else f" U+{code:04X}"
            return f"its value contains {what}{shown} at position {position}"
    return None


def headers(value: Any, report: Report) -> dict[str, str]:
    merged: dict[str, str] = {
        "User-Agent": default_user_agent(),
        "Accept": "application/jwk-set+json, application/json",
    }
    if not isinstance(value, Mapping):
        raise Invalid(f"must be a dict of header name to value, got {type(value).__name__}.")
    lower = {k.lower(): k for k in merged}
    for name, val in value.items():
        if not isinstance(name, str) or not isinstance(val, str):
            shown = _header_name(name) if isinstance(name, str) else type(name).__name__
            report(f"header names and values must be strings; {shown!r} is not sent.")
            continue
        why = header_problem(name, val, secret=name.lower() not in HARMLESS_HEADERS)
        if why:
            # Never echo the value: it may be a secret.
            report(
                f"header {_header_name(name)!r}: {why}; it is not sent.",
                "Header names are ASCII tokens; values must be Latin-1 without CR/LF: write non-Latin-1 text "
                "percent- or base64-encoded, as the receiving server expects it.",
            )
            continue
        merged.pop(lower.get(name.lower(), name), None)
        merged[name] = val
    return merged


def _header_name(name: str) -> str:
    """A header name as a message may show it: short, without CR/LF or other control characters."""
    return "".join(c if c.isprintable() else "?" for c in name.strip()[:60])


def secret_headers(value: Any, report: Report) -> frozenset[str]:
    return frozenset(v.lower() for v in string_list(value, report))


def ca_bundle(value: Any, report: Report) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise Invalid(f"must be a path to a PEM file, got {type(value).__name__}.")
    path = os.fspath(value)
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise Invalid(
            f"cannot load CA bundle {path!r}: {exc.__class__.__name__}: {exc}.",
            "Point it at a readable PEM file with the identity provider's CA certificate(s).",
        ) from exc
    return str(path)


def ssl_context(value: Any, report: Report) -> ssl.SSLContext | None:
    if value is None or isinstance(value, ssl.SSLContext):
        return value
    if not isinstance(value, str):
        raise Invalid(f"must be an ssl.SSLContext or a dotted path to a factory, got {type(value).__name__}.")
    from django.utils.module_loading import import_string

    try:
        ctx = import_string(value)()
    except Exception as exc:
        raise Invalid(f"calling {value!r} failed: {exc.__class__.__name__}: {exc}.") from exc
    if not isinstance(ctx, ssl.SSLContext):
        raise Invalid(f"{value!r} returned {type(ctx).__name__}, not ssl.SSLContext.")
    return ctx


def proxy(value: Any, report: Report) -> str | None:
    if value is None or value == "":
        return value  # type: ignore[no-any-return]
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
        raise Invalid("must be None (use the environment's proxy settings), '' (no proxy) or an http://host:port URL.")
    why = proxy_problem(value)
    if why:
        raise Invalid(f"{why}; it is not used.", _PROXY_HINT)
    return value


_PROXY_HINT = (
    "Use an http://host:port proxy on a network you trust (credentials in it go to the proxy as Basic auth, as "
    "with any plain-http proxy), or '' to connect directly."
)


def proxy_problem(proxy: str) -> str | None:
    """Why ``proxy`` is refused: urllib speaks plain HTTP to every proxy, whatever its scheme says."""
    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 - raises ValueError for an unusable port
    except ValueError:
        return "is not a usable proxy URL (bad host or port)"
    if parts.scheme.lower() == "https":
        return (
            "an https:// proxy is refused: urllib sends the CONNECT request (and the Proxy-Authorization made from "
            "credentials in the URL) to the proxy in clear text, never over TLS"
        )
    return None


def expose_error_detail(value: Any, report: Report) -> bool:
    if value is None:  # follow DEBUG: on in development, off in production
        from django.conf import settings

        return bool(getattr(settings, "DEBUG", False))
    if not isinstance(value, bool):
        raise Invalid(f"must be True, False or None (follow DEBUG), got {value!r}.")
    return value


def shared_cache(value: Any, report: Report) -> str | None:
    if value is None:
        return None
    from django.conf import settings

    aliases = list(getattr(settings, "CACHES", {}) or {"default": {}})
    if not isinstance(value, str) or value not in aliases:
        raise Invalid(f"must be None or the alias of a cache in settings.CACHES ({aliases}), got {value!r}.")
    return value


def disable(value: Any, report: Report) -> frozenset[str]:
    # Ids are checked against the whole fixer registry by the system checks (simplejwt_patches.E016):
    # the registry is not needed to read settings, so settings can be read at any time.
    return frozenset(string_list(value, report))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_PARTIES = 1000


def _client_id_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"client ids must be strings; {_shown(value)} is a {type(value).__name__}"
    if not value.strip() or len(value) > 1024 or _CONTROL.search(value):
        return f"client id {_shown(value)} is blank, longer than 1024 characters or contains control characters"
    return None


def authorized_parties(value: Any, report: Report) -> frozenset[str] | None:
    """``None``, or a non-empty sequence of client ids; anything else rejects every token (fail closed)."""
    if value is None:
        return None
    hint = (
        "List the client ids whose tokens this API accepts (the token's azp), e.g. ('acme-web',), or None to "
        "not check the authorized party. Until then every token is rejected."
    )
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        report(f"must be None or a list of client ids, got {_shown(value)}; every token is rejected.", hint)
        return frozenset()
    try:
        items = list(value)
    except Exception as exc:  # noqa: BLE001 - a hostile sequence
        report(f"cannot be read ({type(exc).__name__}); every token is rejected.", hint)
        return frozenset()
    problem = next((p for p in map(_client_id_problem, items[:MAX_PARTIES]) if p), None)
    if not items or len(items) > MAX_PARTIES or problem:
        what = problem or ("is empty" if not items else f"lists more than {MAX_PARTIES} client ids")
        report(f"{what}; every token is rejected.", hint)
        return frozenset()
    return frozenset(items)


def party_claim(value: Any, report: Report) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100 or _CONTROL.search(value):
        raise Invalid(f"must be the name of a claim (a short string), got {_shown(value)}; 'azp' is used.")
    return value


# -- SIMPLE_JWT['JWK_URL'] ---------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def jwk_url_problems(jwk_url: object) -> list[Problem]:
    """``JWK_URL`` must be a URL urllib can send, without credentials, and https except on loopback."""
    if not jwk_url:
        return []
    if not isinstance(jwk_url, str):
        return [Problem("E030", "JWK_URL", f"SIMPLE_JWT['JWK_URL'] must be a string, got {type(jwk_url).__name__}.")]
    try:
        parts = urlsplit(jwk_url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for an unusable port
    except ValueError:
        return [Problem("E030", "JWK_URL", "SIMPLE_JWT['JWK_URL'] is not a valid URL (bad host or port).")]
    if has_userinfo(jwk_url):
        return [
            Problem(
                "E031",
                "JWK_URL",
                f"SIMPLE_JWT['JWK_URL'] carries credentials ('user:password@' before the host, {safe_url(jwk_url)}): "
                "urllib does not send them as authentication and they would reach logs and signals; the key set "
                "is not fetched.",
                "Remove 'user:password@' from JWK_URL. If the endpoint needs credentials, send them as a header: "
                f"{SETTING}['JWKS_HEADERS'] = {{'Authorization': 'Basic <base64 of user:password>'}} (masked in "
                "every output).",
            )
        ]
    outside_host = parts.scheme + parts.path + parts.query + parts.fragment
    bad = next((c for c in jwk_url if not c.isprintable() or c.isspace()), None)
    bad = bad or next((c for c in outside_host if not c.isascii()), None)
    if bad is not None:
        return [
            Problem(
                "E030",
                "JWK_URL",
                f"SIMPLE_JWT['JWK_URL'] contains U+{ord(bad):04X}, which urllib cannot send ({safe_url(jwk_url)}).",
                "Percent-encode spaces, control and non-ASCII characters in the path (e.g. %20).",
            )
        ]
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return []
    return [
        Problem(
            "W020",
            "JWK_URL",
            f"SIMPLE_JWT['JWK_URL'] uses {parts.scheme or 'no'} scheme ({safe_url(jwk_url)}): signing keys fetched "
            "without TLS can be replaced in transit.",
            "Use the identity provider's https:// JWKS URL.",
        )
    ]


def has_userinfo(url: str) -> bool:
    """Whether ``url`` has ``user[:password]@`` before its host (never sent as authentication here)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def issuers(value: Any, report: Report) -> dict[str, IssuerOptions] | None:
    """``ISSUERS``: each entry validated on its own (a bad one is left out: fail closed)."""
    return validate_issuers(value, report, authorized_parties)


def render_issuers(value: dict[str, IssuerOptions] | None, options: Any) -> dict[str, Any] | None:
    return None if value is None else {issuer_label(issuer): entry.shown() for issuer, entry in value.items()}
