"""The JWKS and discovery probe: what ``JWK_URL`` answers, fetched exactly as authentication fetches it.

Used by the doctor and by ``check --deploy`` (:func:`simplejwt_patches.checks.check_jwks_live`):
same headers, timeout, TLS, proxy and redirect policy (:func:`simplejwt_patches.transport.http_get`),
"usable" decided by the one rule of :mod:`simplejwt_patches.keys`. Nothing here raises: every
failure becomes a finding. Imports neither the doctor's report nor its token checks.
"""

from __future__ import annotations

import time
import urllib.error
from dataclasses import dataclass, field
from typing import Any

from ..conf import Options, get_options
from ..diagnostics import safe_url
from ..failures import CATEGORIES, JWKSFailure, failure_from
from ..keys import MAX_KEYS, usable_signing_keys
from ..providers import GENERIC, discovery_urls, recognise
from ..transport import cache_lifetime, http_get, parse_key_set
from .stack import api_settings

__all__ = ["JWKSProbe", "discovery_document", "discovery_issuer", "issuers", "next_step", "probe_jwks"]


@dataclass
class JWKSProbe:
    """What a JWKS fetch returned, as authentication would see it."""

    url: str
    ok: bool
    problem: str | None = None  # a failures.CATEGORIES kind, or no_key_for_algorithm
    status: int | None = None
    elapsed_ms: float | None = None
    redirect_to: str | None = None
    tls_error: str | None = None
    error: str | None = None
    content_type: str | None = None
    size: int | None = None
    cache_control: str | None = None
    cache_lifetime: float | None = None  # what the key source would cache this response for
    shared: bool | None = None  # whether it may go into JWKS_SHARED_CACHE
    keys: list[dict[str, Any]] = field(default_factory=list)
    usable_kids: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # unusable entries and why (encryption keys left out)
    algorithm: str | None = None
    matches_algorithm: bool = False
    payload: dict[str, Any] | None = field(default=None, repr=False)
    failure: JWKSFailure | None = field(default=None, repr=False, compare=False)  # chained to the error


def probe_jwks(url: str, algorithm: str | None, options: Options | None = None) -> JWKSProbe:
    """Fetch ``url`` like SimpleJWT's managed client and describe the result (never raises).

    ``problem`` is a :data:`~simplejwt_patches.failures.CATEGORIES` kind, or
    ``no_key_for_algorithm``; "usable" is decided by the one rule of :mod:`simplejwt_patches.keys`.
    """
    options = options or get_options()
    probe = JWKSProbe(url=safe_url(url), ok=False, algorithm=algorithm if isinstance(algorithm, str) else None)
    started = time.perf_counter()
    try:
        raw = http_get(url, options)
        probe.status, probe.elapsed_ms = raw.status, raw.elapsed_ms
        probe.content_type, probe.size = raw.content_type, len(raw.body)
        probe.cache_control = raw.cache_control or None
        probe.cache_lifetime, probe.shared = cache_lifetime(raw.cache_control, options)
        payload = parse_key_set(raw.body)
        probe.payload = payload
        keys = payload.get("keys")
        probe.keys = [
            {k: _plain(key.get(k)) for k in ("kid", "kty", "alg", "use")}
            for key in (keys[:MAX_KEYS] if isinstance(keys, list) else []) if isinstance(key, dict)
        ]  # fmt: skip
        usable, dropped = usable_signing_keys(payload)
        probe.dropped = [f"#{d.index} (kid {d.kid or '-'}): {d.why}" for d in dropped if not d.expected]
        if not usable:
            raise JWKSFailure("no_usable_key", "; ".join(probe.dropped[:5]) or "the key set is empty")
    except Exception as exc:  # noqa: BLE001 - every failure is a finding, never a traceback
        if probe.elapsed_ms is None:
            probe.elapsed_ms = (time.perf_counter() - started) * 1000
        failure = exc if isinstance(exc, JWKSFailure) else failure_from(exc, probe.status)
        if failure is not exc and failure.__cause__ is None:
            failure.__cause__ = exc
        probe.failure = failure
        probe.problem, probe.error = failure.kind, failure.detail
        probe.status = failure.status or probe.status
        if isinstance(exc, urllib.error.HTTPError) and 300 <= exc.code < 400 and exc.headers:
            probe.redirect_to = safe_url(str(exc.headers.get("Location", "")))
        if failure.kind == "tls":
            probe.tls_error = failure.detail
        return probe
    probe.usable_kids = sorted(usable)
    signing = [probe_key for probe_key in probe.keys if probe_key.get("kid") in usable]
    probe.matches_algorithm = probe.algorithm is None or any(
        k.get("alg") == probe.algorithm or (k.get("alg") is None and _kty_for(probe.algorithm) == k.get("kty"))
        for k in signing
    )
    if not probe.matches_algorithm:
        probe.problem = "no_key_for_algorithm"
        probe.error = f"no signing key for {probe.algorithm} (keys: {[k.get('alg') for k in signing]})"
        return probe
    probe.ok = True
    return probe


def _plain(value: Any) -> Any:
    """A JWK field as it may be shown: short strings as they are, anything else by its type."""
    if value is None or (isinstance(value, str) and len(value) <= 100):
        return value
    return f"<{type(value).__name__}>"


def issuers(setting: Any) -> list[str]:
    """``SIMPLE_JWT['ISSUER']`` as a list: PyJWT >= 2.9 accepts a string or a sequence of them."""
    if isinstance(setting, str):
        return [setting]
    if isinstance(setting, (list, tuple, set, frozenset)):
        return [i for i in setting if isinstance(i, str)]
    return []


def next_step(probe: JWKSProbe) -> str:
    """The concrete next step for a failed probe, from the failure's category.

    With ``JWKS_PROXY`` set, connection-level failures happen between this host and the proxy:
    the step says so first (the proxy shown without credentials).
    """
    if probe.problem in CATEGORIES:
        step = CATEGORIES[probe.problem].next_step
        proxy = get_options().proxy
        if proxy and probe.problem in ("refused", "dns", "dropped", "timeout"):
            step = (
                f"SIMPLE_JWT_PATCHES['JWKS_PROXY'] is set ({safe_url(str(proxy))}): the connection goes to the proxy "
                "first; check that it runs, is reachable from this host and may reach the JWK_URL's host. " + step
            )
        return step
    try:
        provider = recognise(probe.url, api_settings().ISSUER)
    except Exception:  # noqa: BLE001 - hostile settings: generic wording
        provider = GENERIC
    return provider.algorithm_fix(probe.algorithm)


def _kty_for(algorithm: str) -> str | None:
    return {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}.get(algorithm[:2])


def discovery_document(
    jwk_url: str, issuer: Any, options: Options | None = None
) -> tuple[str, str, dict[str, Any]] | None:
    """``(discovery URL, issuer, document)`` of an OpenID discovery document next to the JWKS, if one answers."""
    options = options or get_options()
    for url in discovery_urls(jwk_url, issuers(issuer)):
        try:
            doc = parse_key_set(http_get(url, options).body)
        except Exception:  # noqa: BLE001 - no discovery document there
            continue
        if isinstance(doc.get("issuer"), str):
            return safe_url(url), doc["issuer"], doc
    return None


def discovery_issuer(jwk_url: str, issuer: Any, options: Options | None = None) -> tuple[str, str] | None:
    """``(discovery URL, issuer)`` of an OpenID discovery document next to the JWKS, if one answers."""
    found = discovery_document(jwk_url, issuer, options)
    return None if found is None else (found[0], found[1])
