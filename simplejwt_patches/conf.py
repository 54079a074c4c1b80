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

The validators of single settings (and the rules for ``JWK_URL``) live in
:mod:`simplejwt_patches.validators`; their public names are importable from here too.
"""

from __future__ import annotations

import difflib
import logging
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Literal

from . import validators as valid
from .deadline import MARGIN
from .diagnostics import safe_url
from .schema import Problem, Setting, boolean, choice, integer, seconds
from .validators import (
    HARMLESS_HEADERS,
    has_userinfo,
    header_problem,
    is_secret,
    jwk_url_problems,
    mask_headers,
    proxy_problem,
)

__all__ = [
    "HARMLESS_HEADERS",
    "SCHEMA",
    "SETTING",
    "Options",
    "Problem",
    "TrustSettings",
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

UnknownVersionPolicy = Literal["proven", "warn", "error", "latest"]


def _render_headers(value: dict[str, str], options: Options) -> dict[str, str]:
    return options.masked_headers()


def _render_ssl_context(value: ssl.SSLContext | None, options: Options) -> str | None:
    if value is not None:
        return "custom"
    return "from JWKS_CA_BUNDLE" if options.ca_bundle else None


def _render_proxy(value: str | None, options: Options) -> str | None:
    return safe_url(value) if value else value


class TrustSettings:
    """The settings that scope trust: which clients' and which issuers' tokens this API accepts.

    Part of the schema (:class:`Options` inherits them; :data:`SCHEMA` lists them after its own).
    """

    __slots__ = ()

    authorized_parties = Setting(
        "AUTHORIZED_PARTIES", None, valid.authorized_parties, "E052",
        render=lambda v, o: None if v is None else sorted(v),
        doc="client ids whose tokens this API accepts: a token whose `AUTHORIZED_PARTY_CLAIM` (`azp`, the client it "
        "was issued to) is missing or not listed is a 401 `bad_authorized_party`, on every release (fixer "
        "`backend.decode.authorized-party`). Keycloak puts `aud: account` on every client's tokens; Entra ID v2 ID "
        "tokens carry the API's own `aud` but no `azp`. `None`: not checked (W050 says when that accepts other "
        "clients' tokens); an invalid value rejects every token",
    )  # fmt: skip
    party_claim = Setting(
        "AUTHORIZED_PARTY_CLAIM", "azp", valid.party_claim, "E052",
        doc="the claim `AUTHORIZED_PARTIES` reads: `azp` (OpenID Connect: Keycloak, Auth0, Entra ID v2, Google); "
        "`client_id` for RFC 9068 access tokens (e.g. node oidc-provider), `cid` for Okta",
    )  # fmt: skip
    issuers = Setting(
        "ISSUERS", None, valid.issuers, "E060", render=valid.render_issuers,
        doc="trusted issuers, each the exact `iss` of its tokens mapped to its options (each optional): `JWK_URL` "
        "(default: the discovery document's `jwks_uri`), `DISCOVERY_URL` (default: issuer + "
        "`/.well-known/openid-configuration`; its `issuer` must equal the key exactly), `AUDIENCE`, "
        "`AUTHORIZED_PARTIES` (default: the global ones). A token whose unverified `iss` is not listed is a 401 "
        "`bad_issuer` before any request; each issuer has its own key source. `SIMPLE_JWT['ISSUER']` with its "
        "`JWK_URL` or `VERIFYING_KEY` is one more entry. An invalid entry is left out (fail closed)",
    )  # fmt: skip


class Options(TrustSettings):
    """Effective, validated options; the class body is the settings schema (:data:`SCHEMA`)."""

    __slots__ = ("_values", "problems")
    _values: dict[str, Any]
    problems: tuple[Problem, ...]

    headers = Setting(
        "JWKS_HEADERS", {}, valid.headers, "E012", secret=True, render=_render_headers,
        doc="headers merged over the defaults `User-Agent: simplejwt-patches/<v> PyJWT/<v>` and `Accept: "
        "application/jwk-set+json, application/json` (case-insensitive override); values are masked in logs, "
        "`status()` and the doctor unless the header is harmless (User-Agent, Accept, ...); a name or value "
        "http.client cannot send (CR/LF, NUL, non-Latin-1, not a token name) is refused and not sent; a redirect "
        "to another origin keeps only the harmless ones",
    )  # fmt: skip
    secret_headers = Setting(
        "JWKS_SECRET_HEADERS", (), valid.secret_headers, "E011", render=lambda v, o: sorted(v),
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
        "JWKS_CA_BUNDLE", None, valid.ca_bundle, "E013", doc="path to a PEM file of CAs to trust for the JWKS URL"
    )
    ssl_context = Setting(
        "JWKS_SSL_CONTEXT", None, valid.ssl_context, "E014", render=_render_ssl_context,
        doc="an `ssl.SSLContext`, or the dotted path to a zero-argument factory returning one",
    )  # fmt: skip
    proxy = Setting(
        "JWKS_PROXY", None, valid.proxy, "E011", secret=True, render=_render_proxy,
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
        "DISABLE", (), valid.disable, "E016",
        doc="patch ids to skip (see the compatibility table); an unknown id, or one another applied patch "
        "requires (E019), is an error",
    )  # fmt: skip
    expose_error_detail = Setting(
        "EXPOSE_ERROR_DETAIL", None, valid.expose_error_detail, "E011",
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
        "JWKS_SHARED_CACHE", None, valid.shared_cache, "E018",
        doc="a Django cache alias (e.g. Redis): the key set is shared by every process of every host, one fetch "
        "per lifespan for the fleet; a broken cache falls back to per-process fetching (logged once). Django's "
        "`RedisCache`, django-redis or `LocMemCache`: backends that unpickle what they read are refused (E050); a "
        "Redis client without `socket_timeout` and `socket_connect_timeout` below `JWKS_TIMEOUT` is W051",
    )  # fmt: skip
    failure_status = Setting(
        "JWKS_FAILURE_STATUS", 401, choice(401, 503), "E011",
        doc="`503` answers JWKS outages with `503 Service Unavailable` + `Retry-After` so clients retry instead "
        "of logging users out; token problems stay 401 (the API and SimpleJWT's `TokenVerifyView`, `TokenRefreshView`, "
        "`TokenRefreshSlidingView`)",
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
        return is_secret(header, self.secret_headers)

    def masked_headers(self) -> dict[str, str]:
        """Headers as they are sent, every value that may be a credential replaced by ``***``."""
        return mask_headers(self.headers, self.secret_headers)

    def shown(self) -> dict[str, Any]:
        """Every setting as it may be shown (``status()``, the doctor): secrets masked."""
        return {s.attr: s.show(self) for s in SCHEMA}


#: Every setting, in declaration order.
SCHEMA: tuple[Setting[Any], ...] = tuple(
    v for cls in Options.__mro__ for v in vars(cls).values() if isinstance(v, Setting)
)
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
