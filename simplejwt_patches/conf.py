"""``SIMPLE_JWT_PATCHES``: defaults, validation and the effective options.

Settings are validated once per value of ``settings.SIMPLE_JWT_PATCHES`` and re-read when Django's
``setting_changed`` signal names it (``override_settings`` in tests). Every problem becomes a
:class:`Problem` that :mod:`simplejwt_patches.checks` reports with a stable id; at runtime an
invalid key falls back to its default (WSGI servers never run system checks, so the shim must
still behave) and the problem is logged once at ERROR.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from . import __version__
from .versions import pyjwt_caps

__all__ = [
    "BUILTIN_SECRET_HEADERS",
    "DEFAULTS",
    "Options",
    "Problem",
    "get_options",
    "mask_headers",
    "reset_options",
]

logger = logging.getLogger("simplejwt_patches.conf")

SETTING = "SIMPLE_JWT_PATCHES"
BUILTIN_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
MASK = "***"

DEFAULTS: dict[str, Any] = {
    "JWKS_HEADERS": {},
    "JWKS_SECRET_HEADERS": (),
    "JWKS_TIMEOUT": 5.0,
    "JWKS_CA_BUNDLE": None,
    "JWKS_SSL_CONTEXT": None,
    "JWKS_PROXY": None,
    "JWKS_CACHE_LIFESPAN": 300.0,
    "JWKS_FOLLOW_REDIRECTS": False,
    "JWKS_MAX_BYTES": 256 * 1024,
    "UNKNOWN_VERSION": "warn",
    "DISABLE": (),
    "EXPOSE_ERROR_DETAIL": None,
    "JWKS_REFETCH_COOLDOWN": 30.0,
    "JWKS_STALE_IF_ERROR": 3600.0,
    "JWKS_REFRESH_AHEAD": 30.0,
    "JWKS_CACHE_MIN": 60.0,
    "JWKS_CACHE_MAX": 86400.0,
    "JWKS_SHARED_CACHE": None,
    "JWKS_FAILURE_STATUS": 401,
}

UnknownVersionPolicy = Literal["warn", "error", "latest"]


@dataclass(frozen=True)
class Problem:
    """A settings problem; ``id`` is the system check id suffix (e.g. ``E011``)."""

    id: str
    key: str
    msg: str
    hint: str | None = None


def default_user_agent() -> str:
    """``simplejwt-patches/<version> PyJWT/<version>``: never urllib's ``Python-urllib/3.x``."""
    pyjwt = pyjwt_caps().version
    return f"simplejwt-patches/{__version__} PyJWT/{pyjwt or 'unknown'}"


@dataclass(frozen=True)
class Options:
    """Effective, validated options (invalid keys already replaced by their defaults)."""

    headers: Mapping[str, str]
    secret_headers: frozenset[str]
    timeout: float
    ca_bundle: str | None
    ssl_context: ssl.SSLContext | None
    proxy: str | None
    cache_lifespan: float
    follow_redirects: bool
    max_bytes: int
    unknown_version: UnknownVersionPolicy
    disable: frozenset[str]
    expose_error_detail: bool = False
    refetch_cooldown: float = 30.0
    stale_if_error: float = 3600.0
    refresh_ahead: float = 30.0
    cache_min: float = 60.0
    cache_max: float = 86400.0
    shared_cache: str | None = None
    failure_status: int = 401
    problems: tuple[Problem, ...] = field(default=())

    def is_secret(self, header: str) -> bool:
        """Whether a header's value must never be printed or logged."""
        return header.lower() in self.secret_headers

    def masked_headers(self) -> dict[str, str]:
        """Headers as they are sent, secret values replaced by ``***``."""
        return mask_headers(self.headers, self.secret_headers)


def mask_headers(headers: Mapping[str, str], secret: frozenset[str]) -> dict[str, str]:
    """Copy of ``headers`` whose secret values are masked (names are kept)."""
    return {k: (MASK if k.lower() in secret else v) for k, v in headers.items()}


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
    """``JWK_URL`` must be https, except on loopback (a plain-http JWKS can be spoofed)."""
    if not jwk_url:
        return []
    if not isinstance(jwk_url, str):
        return [Problem("E030", "JWK_URL", f"SIMPLE_JWT['JWK_URL'] must be a string, got {type(jwk_url).__name__}.")]
    parts = urlsplit(jwk_url)
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return []
    return [
        Problem(
            "W020",
            "JWK_URL",
            f"SIMPLE_JWT['JWK_URL'] uses {parts.scheme or 'no'} scheme ({parts.scheme}://{parts.hostname}"
            "...): signing keys fetched without TLS can be replaced in transit.",
            "Use the identity provider's https:// JWKS URL.",
        )
    ]


class _Builder:
    """Validates one raw settings dict; collects problems, falls back to defaults."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[Problem] = []

    def error(self, pid: str, key: str, msg: str, hint: str | None = None) -> None:
        self.problems.append(Problem(pid, key, f"{SETTING}['{key}']: {msg}", hint))

    def get(self, key: str) -> Any:
        return self.raw.get(key, DEFAULTS[key])

    def number(self, key: str, *, integer: bool = False, zero: bool = False) -> Any:
        value = self.get(key)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (value == 0 and not zero):
            what = "a positive integer" if integer else "a positive number of seconds"
            if zero:
                what = "a number of seconds >= 0"
            self.error("E011", key, f"must be {what}, got {value!r}.")
            return DEFAULTS[key]
        return value if integer else float(value)

    def headers(self) -> dict[str, str]:
        value = self.get("JWKS_HEADERS")
        merged: dict[str, str] = {
            "User-Agent": default_user_agent(),
            "Accept": "application/jwk-set+json, application/json",
        }
        if not isinstance(value, Mapping):
            self.error("E011", "JWKS_HEADERS", f"must be a dict of header name to value, got {type(value).__name__}.")
            return merged
        lower = {k.lower(): k for k in merged}
        for name, val in value.items():
            if not isinstance(name, str) or not isinstance(val, str):
                self.error(
                    "E011",
                    "JWKS_HEADERS",
                    f"header names and values must be strings; {name!r} is not usable.",
                )
                continue
            if any(c in name for c in "\r\n:") or not name.strip() or any(c in val for c in "\r\n"):
                # Never echo the value: it may be a secret.
                self.error(
                    "E012",
                    "JWKS_HEADERS",
                    f"header {name!r} contains CR, LF or ':' in its name or CR/LF in its value "
                    "(header injection); it is not sent.",
                )
                continue
            merged.pop(lower.get(name.lower(), name), None)
            merged[name] = val
        return merged

    def secret_headers(self) -> frozenset[str]:
        value = self.get("JWKS_SECRET_HEADERS")
        if (
            isinstance(value, str)
            or not isinstance(value, (list, tuple, set, frozenset))
            or not all(isinstance(v, str) for v in value)
        ):
            self.error("E011", "JWKS_SECRET_HEADERS", f"must be a list of header names, got {value!r}.")
            return BUILTIN_SECRET_HEADERS
        return BUILTIN_SECRET_HEADERS | {v.lower() for v in value}

    def ca_bundle(self) -> str | None:
        value = self.get("JWKS_CA_BUNDLE")
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)):
            self.error("E011", "JWKS_CA_BUNDLE", f"must be a path to a PEM file, got {type(value).__name__}.")
            return None
        path = os.fspath(value)
        try:
            ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.error(
                "E013",
                "JWKS_CA_BUNDLE",
                f"cannot load CA bundle {path!r}: {exc.__class__.__name__}: {exc}.",
                "Point it at a readable PEM file with the identity provider's CA certificate(s).",
            )
            return None
        return str(path)

    def ssl_context(self) -> ssl.SSLContext | None:
        value = self.get("JWKS_SSL_CONTEXT")
        if value is None or isinstance(value, ssl.SSLContext):
            return value
        if not isinstance(value, str):
            self.error(
                "E011",
                "JWKS_SSL_CONTEXT",
                f"must be an ssl.SSLContext or a dotted path to a factory, got {type(value).__name__}.",
            )
            return None
        from django.utils.module_loading import import_string

        try:
            factory = import_string(value)
            ctx = factory()
        except Exception as exc:  # noqa: BLE001 - reported as a check error naming the key
            self.error("E014", "JWKS_SSL_CONTEXT", f"calling {value!r} failed: {exc.__class__.__name__}: {exc}.")
            return None
        if not isinstance(ctx, ssl.SSLContext):
            self.error("E014", "JWKS_SSL_CONTEXT", f"{value!r} returned {type(ctx).__name__}, not ssl.SSLContext.")
            return None
        return ctx

    def proxy(self) -> str | None:
        value = self.get("JWKS_PROXY")
        if value is None:
            return None
        if value == "":
            return ""
        if (
            not isinstance(value, str)
            or urlsplit(value).scheme not in ("http", "https")
            or not urlsplit(value).hostname
        ):
            self.error(
                "E011",
                "JWKS_PROXY",
                "must be None (use the environment's proxy settings), '' (no proxy) or an http(s)://host:port URL.",
            )
            return None
        return value

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            self.error("E011", key, f"must be True or False, got {value!r}.")
            return bool(DEFAULTS[key])
        return value

    def expose_error_detail(self) -> bool:
        value = self.get("EXPOSE_ERROR_DETAIL")
        if value is None:  # follow DEBUG: on in development, off in production
            from django.conf import settings

            return bool(getattr(settings, "DEBUG", False))
        if not isinstance(value, bool):
            self.error("E011", "EXPOSE_ERROR_DETAIL", f"must be True, False or None (follow DEBUG), got {value!r}.")
            return False
        return value

    def cache_bounds(self) -> dict[str, float]:
        low, high = self.number("JWKS_CACHE_MIN"), self.number("JWKS_CACHE_MAX")
        if low > high:
            self.error("E011", "JWKS_CACHE_MIN", f"must not exceed JWKS_CACHE_MAX ({low!r} > {high!r}).")
            low, high = DEFAULTS["JWKS_CACHE_MIN"], DEFAULTS["JWKS_CACHE_MAX"]
        return {"cache_min": low, "cache_max": high}

    def shared_cache(self) -> str | None:
        value = self.get("JWKS_SHARED_CACHE")
        if value is None:
            return None
        from django.conf import settings

        aliases = list(getattr(settings, "CACHES", {}) or {"default": {}})
        if not isinstance(value, str) or value not in aliases:
            self.error(
                "E018",
                "JWKS_SHARED_CACHE",
                f"must be None or the alias of a cache in settings.CACHES ({aliases}), got {value!r}.",
            )
            return None
        return value

    def failure_status(self) -> int:
        value = self.get("JWKS_FAILURE_STATUS")
        if value not in (401, 503) or isinstance(value, bool):
            self.error("E011", "JWKS_FAILURE_STATUS", f"must be 401 or 503, got {value!r}.")
            return 401
        return int(value)

    def unknown_version(self) -> UnknownVersionPolicy:
        value = self.get("UNKNOWN_VERSION")
        if value not in ("warn", "error", "latest"):
            self.error("E015", "UNKNOWN_VERSION", f"must be 'warn', 'error' or 'latest', got {value!r}.")
            return "warn"
        return value  # type: ignore[no-any-return]

    def disable(self) -> frozenset[str]:
        from .registry import REGISTRY

        value = self.get("DISABLE")
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            self.error("E011", "DISABLE", f"must be a list of patch ids, got {value!r}.")
            return frozenset()
        known = set(REGISTRY.ids())
        for pid in value:
            if pid not in known:
                close = difflib.get_close_matches(str(pid), sorted(known), n=1)
                self.error(
                    "E016",
                    "DISABLE",
                    f"unknown patch id {pid!r}.",
                    f"Did you mean {close[0]!r}?" if close else f"Known ids: {', '.join(sorted(known))}.",
                )
        return frozenset(v for v in value if v in known)

    def build(self) -> Options:
        for key in self.raw:
            if key not in DEFAULTS:
                close = difflib.get_close_matches(str(key), list(DEFAULTS), n=1)
                self.problems.append(
                    Problem(
                        "W010",
                        str(key),
                        f"{SETTING} has an unknown key {key!r}; it is ignored.",
                        f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(DEFAULTS)}.",
                    )
                )
        ca_bundle = self.ca_bundle()
        ctx = self.ssl_context()
        if ca_bundle and ctx is not None:
            self.error(
                "E017",
                "JWKS_SSL_CONTEXT",
                "JWKS_CA_BUNDLE and JWKS_SSL_CONTEXT are both set; set one (the context wins).",
            )
        if ctx is None and ca_bundle:
            ctx = ssl.create_default_context(cafile=ca_bundle)
        return Options(
            headers=self.headers(),
            secret_headers=self.secret_headers(),
            timeout=self.number("JWKS_TIMEOUT"),
            ca_bundle=ca_bundle,
            ssl_context=ctx,
            proxy=self.proxy(),
            cache_lifespan=self.number("JWKS_CACHE_LIFESPAN"),
            follow_redirects=self.boolean("JWKS_FOLLOW_REDIRECTS"),
            max_bytes=self.number("JWKS_MAX_BYTES", integer=True),
            unknown_version=self.unknown_version(),
            disable=self.disable(),
            expose_error_detail=self.expose_error_detail(),
            refetch_cooldown=self.number("JWKS_REFETCH_COOLDOWN", zero=True),
            stale_if_error=self.number("JWKS_STALE_IF_ERROR", zero=True),
            refresh_ahead=self.number("JWKS_REFRESH_AHEAD", zero=True),
            **self.cache_bounds(),
            shared_cache=self.shared_cache(),
            failure_status=self.failure_status(),
            problems=tuple(self.problems),
        )


def build_options(raw: object) -> Options:
    """Validate a raw ``SIMPLE_JWT_PATCHES`` value (anything) into :class:`Options`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        options = _Builder({}).build()
        problem = Problem("E010", SETTING, f"{SETTING} must be a dict, got {type(raw).__name__}; defaults are used.")
        return Options(**{**options.__dict__, "problems": (problem, *options.problems)})
    return _Builder(raw).build()


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
