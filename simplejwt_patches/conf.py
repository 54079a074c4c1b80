"""``SIMPLE_JWT_PATCHES``: the settings schema, validation and the effective options.

Each setting is declared exactly once, as a :class:`~simplejwt_patches.schema.Setting` attribute
of :class:`Options`: key, default, validator, system check id, whether its value is secret, and
a one-line doc. Everything else is derived from those declarations (:data:`SCHEMA`): the
validated values, ``status()``, the doctor's output, the system checks and the README's settings
and system-check tables (a test fails when the README differs).

Settings are validated once per value of ``settings.SIMPLE_JWT_PATCHES`` and re-read when
Django's ``setting_changed`` signal names it (``override_settings`` in tests). Every problem
becomes a :class:`~simplejwt_patches.schema.Problem` that :mod:`simplejwt_patches.checks` reports
with the setting's check id; at runtime an invalid value falls back to its default (WSGI
servers never run system checks, so the shim must still behave) and is logged once at ERROR.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from .deadline import MARGIN
from .diagnostics import safe_url
from .issuer_settings import IssuerOptions, validate_issuers
from .schema import (
    Invalid,
    Problem,
    Report,
    Setting,
    _shown,
    boolean,
    choice,
    integer,
    seconds,
    string_list,
)
from .version import __version__
from .versions import pyjwt_caps

__all__ = [
    "HARMLESS_HEADERS",
    "SCHEMA",
    "SETTING",
    "Options",
    "Problem",
    "build_options",
    "get_options",
    "has_userinfo",
    "header_problem",
    "jwk_url_problems",
    "mask_headers",
    "proxy_problem",
    "reset_options",
    "settings_markdown",
]

logger = logging.getLogger("simplejwt_patches.conf")

SETTING = "SIMPLE_JWT_PATCHES"
MASK = "***"
#: Request headers whose values are shown in logs, ``status()`` and the doctor. Every other
#: header a user configures may carry a credential (API keys, tokens, cookies), so it is masked.
HARMLESS_HEADERS = frozenset(
    {"user-agent", "accept", "accept-language", "accept-encoding", "cache-control", "pragma", "x-request-id"}
)

UnknownVersionPolicy = Literal["proven", "warn", "error", "latest"]


def default_user_agent() -> str:
    """``simplejwt-patches/<version> PyJWT/<version>``: never urllib's ``Python-urllib/3.x``."""
    pyjwt = pyjwt_caps().version
    return f"simplejwt-patches/{__version__} PyJWT/{pyjwt or 'unknown'}"


def mask_headers(headers: Mapping[str, str], secret: frozenset[str] = frozenset()) -> dict[str, str]:
    """Copy of ``headers`` with every value masked unless the header is harmless (names are kept)."""
    return {k: (MASK if _is_secret(k, secret) else v) for k, v in headers.items()}


def _is_secret(name: str, extra: frozenset[str]) -> bool:
    lowered = name.lower()
    return lowered in extra or lowered not in HARMLESS_HEADERS


# -- validators of single settings -------------------------------------------------------------


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


def _headers(value: Any, report: Report) -> dict[str, str]:
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


def _render_headers(value: dict[str, str], options: Options) -> dict[str, str]:
    return options.masked_headers()


def _secret_headers(value: Any, report: Report) -> frozenset[str]:
    return frozenset(v.lower() for v in string_list(value, report))


def _ca_bundle(value: Any, report: Report) -> str | None:
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


def _ssl_context(value: Any, report: Report) -> ssl.SSLContext | None:
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


def _render_ssl_context(value: ssl.SSLContext | None, options: Options) -> str | None:
    if value is not None:
        return "custom"
    return "from JWKS_CA_BUNDLE" if options.ca_bundle else None


def _proxy(value: Any, report: Report) -> str | None:
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


def _render_proxy(value: str | None, options: Options) -> str | None:
    return safe_url(value) if value else value


def _expose_error_detail(value: Any, report: Report) -> bool:
    if value is None:  # follow DEBUG: on in development, off in production
        from django.conf import settings

        return bool(getattr(settings, "DEBUG", False))
    if not isinstance(value, bool):
        raise Invalid(f"must be True, False or None (follow DEBUG), got {value!r}.")
    return value


def _shared_cache(value: Any, report: Report) -> str | None:
    if value is None:
        return None
    from django.conf import settings

    aliases = list(getattr(settings, "CACHES", {}) or {"default": {}})
    if not isinstance(value, str) or value not in aliases:
        raise Invalid(f"must be None or the alias of a cache in settings.CACHES ({aliases}), got {value!r}.")
    return value


def _disable(value: Any, report: Report) -> frozenset[str]:
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


def _authorized_parties(value: Any, report: Report) -> frozenset[str] | None:
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


def _party_claim(value: Any, report: Report) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100 or _CONTROL.search(value):
        raise Invalid(f"must be the name of a claim (a short string), got {_shown(value)}; 'azp' is used.")
    return value


def _issuers(value: Any, report: Report) -> dict[str, IssuerOptions] | None:
    return validate_issuers(value, report, _authorized_parties)


def _render_issuers(value: dict[str, IssuerOptions] | None, options: Any) -> dict[str, Any] | None:
    return None if value is None else {issuer: entry.shown() for issuer, entry in value.items()}


class Options:
    """Effective, validated options; the class body is the settings schema (:data:`SCHEMA`)."""

    __slots__ = ("_values", "problems")
    _values: dict[str, Any]
    problems: tuple[Problem, ...]

    headers = Setting(
        "JWKS_HEADERS", {}, _headers, "E012", secret=True, render=_render_headers,
        doc="headers merged over the defaults `User-Agent: simplejwt-patches/<v> PyJWT/<v>` and `Accept: "
        "application/jwk-set+json, application/json` (case-insensitive override); values are masked in logs, "
        "`status()` and the doctor unless the header is harmless (User-Agent, Accept, ...); a name or value "
        "http.client cannot send (CR/LF, NUL, non-Latin-1, not a token name) is refused and not sent; a redirect "
        "to another origin keeps only the harmless ones",
    )  # fmt: skip
    secret_headers = Setting(
        "JWKS_SECRET_HEADERS", (), _secret_headers, "E011", render=lambda v, o: sorted(v),
        doc="header names whose values are masked even where they look harmless (every header outside "
        "User-Agent, Accept, Accept-Language, Accept-Encoding, Cache-Control, Pragma, X-Request-Id is masked anyway)",
    )  # fmt: skip
    timeout = Setting(
        "JWKS_TIMEOUT", 5.0, seconds(maximum=300), "E011",
        doc="seconds for the whole JWKS request - name resolution, every address, TLS, headers and body share "
        f"this one deadline (+ {MARGIN:g} s margin) - (PyJWT: 30 per socket operation, or none before 2.7); it "
        "runs on the request path",
    )  # fmt: skip
    ca_bundle = Setting(
        "JWKS_CA_BUNDLE", None, _ca_bundle, "E013", doc="path to a PEM file of CAs to trust for the JWKS URL"
    )
    ssl_context = Setting(
        "JWKS_SSL_CONTEXT", None, _ssl_context, "E014", render=_render_ssl_context,
        doc="an `ssl.SSLContext`, or the dotted path to a zero-argument factory returning one",
    )  # fmt: skip
    proxy = Setting(
        "JWKS_PROXY", None, _proxy, "E011", secret=True, render=_render_proxy,
        doc='`None`: the environment\'s proxy settings (urllib\'s behaviour); `""`: no proxy; `"http://host:port"`: '
        "this proxy (credentials in it are never shown); an `https://` proxy is refused, here or in the "
        "environment (urllib would send the CONNECT in clear text)",
    )  # fmt: skip
    cache_lifespan = Setting(
        "JWKS_CACHE_LIFESPAN", 300.0, seconds(maximum=86400 * 30), "E011",
        doc="seconds a fetched key set is trusted (PyJWT's default; tune to your rotation policy)",
    )  # fmt: skip
    follow_redirects = Setting(
        "JWKS_FOLLOW_REDIRECTS", False, boolean, "E011",
        doc="a JWKS URL that redirects is a misconfiguration or an attack; PyJWT 2.14+ refuses them too; when "
        "allowed, https is never downgraded to http",
    )  # fmt: skip
    max_bytes = Setting(
        "JWKS_MAX_BYTES", 256 * 1024, integer(minimum=1, maximum=64 * 1024 * 1024), "E011",
        doc="a Keycloak key set is ~3 KiB (2 keys with certificates) and large multi-tenant sets stay below "
        "100 KiB; 256 KiB - 5x Nimbus' 50 KiB cap - leaves headroom for many `x5c` chains while bounding memory "
        "and parse time of a hostile or broken response",
    )  # fmt: skip
    unknown_version = Setting[UnknownVersionPolicy](
        "UNKNOWN_VERSION", "proven", choice("proven", "warn", "error", "latest"), "E015",
        doc='unpinned SimpleJWT: `"proven"` applies each fixer whose SimpleJWT code is identical (normalised '
        "fingerprint) to a pinned release it applies to, and skips one whose code changed (W031); "
        '`"warn"` skips patching (W001), `"error"` refuses to start (E001), `"latest"` applies the newest patch '
        "set (W002)",
    )  # fmt: skip
    disable = Setting(
        "DISABLE", (), _disable, "E016",
        doc="patch ids to skip (see the compatibility table); an unknown id, or one another applied patch "
        "requires (E019), is an error",
    )  # fmt: skip
    expose_error_detail = Setting(
        "EXPOSE_ERROR_DETAIL", None, _expose_error_detail, "E011",
        doc="add each failure's short reason, from a fixed vocabulary (e.g. `\"the identity provider's key set "
        "endpoint answered HTTP 403\"`), as `reason` to the 401 body's `messages`; `None` follows `DEBUG`",
    )  # fmt: skip
    refetch_cooldown = Setting(
        "JWKS_REFETCH_COOLDOWN", 30.0, seconds(zero=True, maximum=86400), "E011",
        doc="demand refetches (an unknown kid, or a cached kid whose signature fails) happen at most once per "
        "this many seconds (per fleet with `JWKS_SHARED_CACHE`); cold, expiry and background refreshes do not "
        "count, so a rotated key is picked up on its first token. Also the retry interval after any failed "
        "fetch. 30 s is Nimbus' and PyJWT 2.14's window",
    )  # fmt: skip
    stale_if_error = Setting(
        "JWKS_STALE_IF_ERROR", 3600.0, seconds(zero=True, maximum=86400 * 7), "E011",
        doc="seconds past expiry during which the last good key set keeps serving while refreshes fail (WARNING "
        "once per cooldown); then fail closed; `0` fails closed at expiry",
    )  # fmt: skip
    refresh_ahead = Setting(
        "JWKS_REFRESH_AHEAD", 30.0, seconds(zero=True, maximum=86400), "E011",
        doc="refresh in the background this many seconds before expiry (at most half the lifetime); `0` "
        "disables. Expired sets are refreshed in the background anyway (stale-while-revalidate)",
    )  # fmt: skip
    cache_min = Setting(
        "JWKS_CACHE_MIN", 60.0, seconds(maximum=86400 * 30), "E011",
        doc="lower bound for the IdP's `Cache-Control: max-age` (`no-store` uses it and is never shared); must "
        "not exceed `JWKS_CACHE_MAX`",
    )  # fmt: skip
    cache_max = Setting(
        "JWKS_CACHE_MAX", 86400.0, seconds(maximum=86400 * 30), "E011",
        doc="upper bound for the IdP's `Cache-Control: max-age`; without `max-age` (Keycloak sends `no-cache`) "
        "`JWKS_CACHE_LIFESPAN` applies",
    )  # fmt: skip
    shared_cache = Setting(
        "JWKS_SHARED_CACHE", None, _shared_cache, "E018",
        doc="a Django cache alias (e.g. Redis): the key set is shared by every process of every host, one fetch "
        "per lifespan for the fleet; a broken cache falls back to per-process fetching (logged once). Django's "
        "`RedisCache`, django-redis or `LocMemCache`: backends that unpickle what they read are refused (E050)",
    )  # fmt: skip
    failure_status = Setting(
        "JWKS_FAILURE_STATUS", 401, choice(401, 503), "E011",
        doc="`503` answers JWKS outages with `503 Service Unavailable` + `Retry-After` so clients retry instead "
        "of logging users out; token problems stay 401 (the API and SimpleJWT's `TokenVerifyView`, `TokenRefreshView`, "
        "`TokenRefreshSlidingView`)",
    )  # fmt: skip

    authorized_parties = Setting(
        "AUTHORIZED_PARTIES", None, _authorized_parties, "E052", render=lambda v, o: None if v is None else sorted(v),
        doc="client ids whose tokens this API accepts: a token whose `AUTHORIZED_PARTY_CLAIM` (`azp`, the client it "
        "was issued to) is missing or not listed is a 401 `bad_authorized_party`, on every release (fixer "
        "`backend.decode.authorized-party`). Keycloak puts `aud: account` on every client's tokens; Entra ID v2 ID "
        "tokens carry the API's own `aud` but no `azp`. `None`: not checked (W050 says when that accepts other "
        "clients' tokens); an invalid value rejects every token",
    )  # fmt: skip
    party_claim = Setting(
        "AUTHORIZED_PARTY_CLAIM", "azp", _party_claim, "E052",
        doc="the claim `AUTHORIZED_PARTIES` reads: `azp` (OpenID Connect: Keycloak, Auth0, Entra ID v2, Google); "
        "`client_id` for RFC 9068 access tokens (e.g. node oidc-provider), `cid` for Okta",
    )  # fmt: skip
    issuers = Setting(
        "ISSUERS", None, _issuers, "E060", render=_render_issuers,
        doc="trusted issuers, each the exact `iss` of its tokens mapped to its options (each optional): `JWK_URL` "
        "(default: the discovery document's `jwks_uri`), `DISCOVERY_URL` (default: issuer + "
        "`/.well-known/openid-configuration`; its `issuer` must equal the key exactly), `AUDIENCE`, "
        "`AUTHORIZED_PARTIES` (default: the global ones). A token whose unverified `iss` is not listed is a 401 "
        "`bad_issuer` before any request; each issuer has its own key source. `SIMPLE_JWT['ISSUER']` with its "
        "`JWK_URL` or `VERIFYING_KEY` is one more entry. An invalid entry is left out (fail closed)",
    )  # fmt: skip

    def __init__(self, values: Mapping[str, Any], problems: tuple[Problem, ...] = ()) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "problems", problems)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Options are read-only")

    def value(self, key: str) -> Any:
        """The effective value of the setting ``key``."""
        return self._values[key]

    def is_secret(self, header: str) -> bool:
        """Whether a header's value must never be printed or logged."""
        return _is_secret(header, self.secret_headers)

    def masked_headers(self) -> dict[str, str]:
        """Headers as they are sent, every value that may be a credential replaced by ``***``."""
        return mask_headers(self.headers, self.secret_headers)

    def shown(self) -> dict[str, Any]:
        """Every setting as it may be shown (``status()``, the doctor): secrets masked."""
        return {s.attr: s.show(self) for s in SCHEMA}


#: Every setting, in declaration order.
SCHEMA: tuple[Setting[Any], ...] = tuple(v for v in vars(Options).values() if isinstance(v, Setting))
_BY_KEY = {s.key: s for s in SCHEMA}


def _cross_checks(values: dict[str, Any], problems: list[Problem]) -> None:
    """Rules that involve two settings (reported under the first one's check id)."""
    if values["JWKS_CA_BUNDLE"] and values["JWKS_SSL_CONTEXT"] is not None:
        problems.append(
            Problem(
                "E017", "JWKS_SSL_CONTEXT",
                f"{SETTING}['JWKS_CA_BUNDLE'] and {SETTING}['JWKS_SSL_CONTEXT'] are both set; set one (the context "
                "wins).",
            )
        )  # fmt: skip
    if values["JWKS_SSL_CONTEXT"] is None and values["JWKS_CA_BUNDLE"]:
        values["JWKS_SSL_CONTEXT"] = ssl.create_default_context(cafile=values["JWKS_CA_BUNDLE"])
    low, high = values["JWKS_CACHE_MIN"], values["JWKS_CACHE_MAX"]
    if low > high:
        setting = _BY_KEY["JWKS_CACHE_MIN"]
        problems.append(
            Problem(setting.check, setting.key, f"{SETTING}['JWKS_CACHE_MIN'] must not exceed JWKS_CACHE_MAX "
                    f"({low!r} > {high!r}); both fall back to their defaults.")
        )  # fmt: skip
        values["JWKS_CACHE_MIN"] = setting.fallback()
        values["JWKS_CACHE_MAX"] = _BY_KEY["JWKS_CACHE_MAX"].fallback()


def build_options(raw: object) -> Options:
    """Validate a raw ``SIMPLE_JWT_PATCHES`` value (anything) into :class:`Options`; never raises."""
    problems: list[Problem] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(
            Problem("E010", SETTING, f"{SETTING} must be a dict, got {type(raw).__name__}; defaults are used.")
        )
        raw = {}
    for key in raw:
        if key not in _BY_KEY:
            close = difflib.get_close_matches(str(key), list(_BY_KEY), n=1)
            problems.append(
                Problem(
                    "W010",
                    str(key)[:100],
                    f"{SETTING} has an unknown key {str(key)[:100]!r}; it is ignored.",
                    f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(_BY_KEY)}.",
                )
            )
    values = {s.key: s.validate(raw.get(s.key, s.default), problems, present=s.key in raw) for s in SCHEMA}
    _cross_checks(values, problems)
    return Options(values, tuple(problems))


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


_lock = threading.Lock()
_cached: Options | None = None


def get_options() -> Options:
    """The effective options for the current settings (cached until ``setting_changed``)."""
    global _cached
    options = _cached
    if options is None:
        from django.conf import settings

        with _lock:
            options = _cached
            if options is None:
                options = build_options(getattr(settings, SETTING, None))
                for problem in options.problems:
                    if problem.id.startswith("E"):
                        logger.error("simplejwt_patches.%s %s", problem.id, problem.msg)
                _cached = options
    return options


def reset_options(**_: Any) -> None:
    """Forget the cached options (connected to ``setting_changed`` for ``SIMPLE_JWT_PATCHES``)."""
    global _cached
    with _lock:
        _cached = None


def settings_markdown() -> str:
    """The README's settings table, generated from :data:`SCHEMA`."""
    lines = ["| key | default | check id | secret | meaning |", "|---|---|---|---|---|"]
    for s in SCHEMA:
        secret = "masked" if s.secret else ""
        lines.append(f"| `{s.key}` | `{s.default!r}` | `simplejwt_patches.{s.check}` | {secret} | {s.doc} |")
    return "\n".join(lines)
