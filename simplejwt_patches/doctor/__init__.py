"""``simplejwt_doctor``: why is *this* token rejected? One command, the project's real settings.

The JWKS is fetched exactly as authentication fetches it (same headers, timeout, TLS, proxy and
redirect policy, via :func:`simplejwt_patches.transport.http_get`); a token is decoded without
verification, then every check authentication runs is replayed in order, each with a concrete fix,
and finally the project's own SimpleJWT authentication classes (``DEFAULT_AUTHENTICATION_CLASSES``,
in order, or ``--auth-class``) give the verdict the API would give, through ``authenticate()`` on a
real DRF ``Request``. The JWKS is fetched once per run (the verdict reuses the probe's key set);
the token is verified with ``SIMPLE_JWT['ALGORITHM']`` only, and any exception becomes a ✗ line.
Nothing here prints or returns the token or its signature.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..conf import SCHEMA, Options, get_options
from ..diagnostics import describe, fingerprint, redact, safe_url, segment_json
from ..failures import CATEGORIES, JWKSFailure, classify, failure_from
from ..keys import MAX_KEYS, usable_signing_keys
from ..providers import GENERIC, Provider, discovery_urls, recognise, token_type_fix
from ..transport import cache_lifetime, http_get, parse_key_set
from ..version import __version__
from ..versions import distribution_version

__all__ = [
    "Check",
    "JWKSProbe",
    "Report",
    "captured_logs",
    "configured_auth_classes",
    "diagnose",
    "discovery_document",
    "discovery_issuer",
    "integer_user_id_field",
    "issuers",
    "looks_users_up",
    "probe_jwks",
    "render_text",
    "shown_claims",
    "strip_bearer",
    "user_lookup_problem",
]


@dataclass
class Check:
    """One ✓/✗ line; ``ok=None`` is informational (not checked)."""

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None


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


def _next_step(probe: JWKSProbe) -> str:
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
        provider = recognise(probe.url, _api_settings().ISSUER)
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


@dataclass
class Report:
    """Everything the doctor found; ``ok`` decides the exit code."""

    versions: dict[str, str | None]
    patches: dict[str, Any]
    jwks_options: dict[str, Any]
    jwks: JWKSProbe | None
    token: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    ok: bool = False
    auth_classes: list[str] = field(default_factory=list)  # the SimpleJWT classes that judge, in order
    findings: list[dict[str, str]] = field(default_factory=list)  # system-check warnings worth repeating
    log: list[str] = field(default_factory=list)  # WARNING+ records of simplejwt_patches during the run

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object (strict JSON: non-finite numbers and odd types become strings)."""
        jwks = None
        if self.jwks is not None:
            jwks = {
                f.name: getattr(self.jwks, f.name) for f in fields(self.jwks) if f.name not in ("payload", "failure")
            }
        return {
            "ok": self.ok,
            "versions": self.versions,
            "patches": self.patches,
            "jwks_options": _jsonable(self.jwks_options),
            "jwks": _jsonable(jwks),
            "auth_classes": self.auth_classes,
            "findings": self.findings,
            "token": _jsonable(self.token),
            "checks": [_jsonable(asdict(c)) for c in self.checks],
            "verdict": _jsonable(self.verdict),
            "log": self.log,
        }


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as strict JSON data: NaN/inf and unknown types as strings, nesting bounded."""
    if depth > 20:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def _short(value: Any, limit: int = 120) -> str:
    """``repr`` of a value from a token, bounded (tokens are attacker-controlled)."""
    try:
        text = repr(_jsonable(value))
    except Exception:  # noqa: BLE001 - e.g. a str too large to convert an int
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(value: Any) -> float | None:
    """A claim as seconds, when it is a finite number (``bool`` is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return number if math.isfinite(number) else None


def configured_auth_classes() -> list[type]:
    """SimpleJWT's authentication classes among DRF's ``DEFAULT_AUTHENTICATION_CLASSES``, in order.

    SimpleJWT's are the subclasses of ``JWTAuthentication`` (``JWTStatelessUserAuthentication``
    included). Read through DRF's own ``api_settings``, which imports them as requests do.
    """
    from rest_framework.settings import api_settings as drf_settings
    from rest_framework_simplejwt.authentication import JWTAuthentication

    classes: list[Any] = list(drf_settings.DEFAULT_AUTHENTICATION_CLASSES)
    return [c for c in classes if isinstance(c, type) and issubclass(c, JWTAuthentication)]


def looks_users_up(auth_class: type) -> bool:
    """Whether ``auth_class`` uses upstream ``JWTAuthentication.get_user`` (a database lookup)."""
    from rest_framework_simplejwt.authentication import JWTAuthentication

    # JWTStatelessUserAuthentication (JWTTokenUserAuthentication before 5.2) defines its own get_user.
    for klass in auth_class.__mro__:  # the first class defining get_user decides
        if klass is JWTAuthentication:
            return True
        if "get_user" in vars(klass):
            return False
    return False


def integer_user_id_field(simple_jwt: Any) -> str | None:
    """The user model's ``USER_ID_FIELD`` description when it is an integer field, else ``None``."""
    from django.contrib.auth import get_user_model
    from django.db import models

    try:
        model = get_user_model()
        field = model._meta.get_field(str(simple_jwt.USER_ID_FIELD))
    except Exception:  # noqa: BLE001 - no user model or no such field: another problem
        return None
    if isinstance(field, (models.IntegerField, models.AutoField)):
        return f"{type(field).__name__} {model._meta.label}.{field.name}"
    return None


def user_lookup_problem(simple_jwt: Any, classes: list[type]) -> str | None:
    """Why every IdP token would fail the user lookup, or ``None`` (system check W040, doctor).

    ``JWK_URL`` set (an external IdP), ``USER_ID_CLAIM = "sub"`` (an opaque id, a UUID for Keycloak),
    an integer ``USER_ID_FIELD``, and a class among ``classes`` that looks users up in the database.
    """
    if not getattr(simple_jwt, "JWK_URL", None) or simple_jwt.USER_ID_CLAIM != "sub":
        return None
    provider = recognise(simple_jwt.JWK_URL, getattr(simple_jwt, "ISSUER", None))
    if provider.sub_is_integer:  # django-oauth-toolkit: sub = str(user.pk)
        return None
    field = integer_user_id_field(simple_jwt)
    lookups = [c for c in classes if looks_users_up(c)]
    if field is None or not lookups:
        return None
    names = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in lookups)
    looked_up = f"USER_ID_CLAIM 'sub' is looked up in USER_ID_FIELD {simple_jwt.USER_ID_FIELD!r} ({field}) by {names}"
    return provider.sub_lookup_problem(looked_up)


def _api_settings() -> Any:
    # The object JWTAuthentication itself reads (SimpleJWT rebinds only its settings module's
    # global on setting_changed; in a running project both are the same object).
    from rest_framework_simplejwt import authentication

    return getattr(authentication, "api_settings")  # noqa: B009 - not re-exported for type checkers


def _leeway_seconds(leeway: Any) -> float:
    if leeway is None:
        return 0.0
    if hasattr(leeway, "total_seconds"):
        return float(leeway.total_seconds())
    return float(leeway)


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _decode(raw: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """Header and claims, unverified; or why the token is no JWT."""
    parts = raw.split(".")
    if len(parts) != 3:
        return f"{len(parts)} segment(s), a JWT has 3"
    try:
        header, claims = segment_json(parts[0]), segment_json(parts[1])
    except Exception as exc:  # noqa: BLE001 - bad base64, bad JSON, deep nesting, anything
        return describe(exc)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return "header and claims must be JSON objects"
    return header, claims


def shown_claims(claims: dict[str, Any], s: Any, all_claims: bool) -> dict[str, Any]:
    """The claims the doctor prints: by default only those it checks (no personal data)."""
    if all_claims:
        return dict(claims)
    names = ["iss", "aud", "exp", "nbf", "iat", s.TOKEN_TYPE_CLAIM, s.JTI_CLAIM]
    shown = {n: claims[n] for n in names if isinstance(n, str) and n in claims}
    user_claim = s.USER_ID_CLAIM
    if isinstance(user_claim, str) and user_claim in claims:
        from ..patches.user_lookup import user_id_facts

        shown[user_claim] = f"<present: {user_id_facts(claims[user_claim])}>"
    return shown


def _token_checks(raw: str, probe: JWKSProbe | None, report: Report, classes: list[type], all_claims: bool) -> None:
    s = _api_settings()
    checks = report.checks
    decoded = _decode(raw)
    if isinstance(decoded, str):
        checks.append(
            Check(
                "decode",
                False,
                f"not a JWT ({decoded})",
                "Pass the raw access token (three base64url "
                "segments separated by dots), without the 'Bearer ' prefix or quotes.",
            )
        )
        return
    header, claims = decoded
    report.token = {
        "header": header,
        "claims": shown_claims(claims, s, all_claims),
        "claims_shown": "all" if all_claims else "checked",
        "fingerprint": fingerprint(raw),
    }
    kid = header.get("kid")
    checks.append(Check("decode", True, f"header and claims decoded (unverified), kid={_short(kid)}"))
    for check in (_check_algorithm, _check_kid_and_signature, _check_times, _check_claims, _check_user):
        try:
            check(raw, header, claims, probe, s, checks, classes)
        except Exception as exc:  # noqa: BLE001 - a hostile token is a finding, never a traceback
            name = check.__name__.removeprefix("_check_").replace("_", " ")
            checks.append(
                Check(
                    name,
                    False,
                    f"cannot be checked: {describe(exc)[:200]}",
                    "The token carries values SimpleJWT cannot use; get a token from the identity provider.",
                )
            )


def _check_algorithm(
    raw: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    probe: Any,
    s: Any,
    checks: list[Check],
    classes: list[type],
) -> None:
    alg = header.get("alg")
    if isinstance(alg, str) and alg == s.ALGORITHM:
        checks.append(Check("algorithm", True, f"alg {alg} matches SIMPLE_JWT['ALGORITHM']"))
        return
    fix = f"Set SIMPLE_JWT['ALGORITHM'] = {alg!r} (the algorithm the identity provider signs with)."
    if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS") or len(alg) > 10:
        fix = (
            f"Never accept {_short(alg, 40)}: the identity provider signs with an asymmetric algorithm "
            "(e.g. RS256); this token is forged or not an access token."
        )
    checks.append(
        Check("algorithm", False, f"token alg {_short(alg, 40)} but SIMPLE_JWT['ALGORITHM'] is {s.ALGORITHM!r}", fix)
    )


def _check_kid_and_signature(
    raw: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    probe: JWKSProbe | None,
    s: Any,
    checks: list[Check],
    classes: list[type],
) -> None:
    kid = header.get("kid")
    if probe is None:
        checks.append(Check("kid", None, "JWK_URL is not set: the static VERIFYING_KEY is used"))
        return
    if not probe.ok and probe.problem != "no_key_for_algorithm":
        answer = f"HTTP {probe.status}" if probe.status is not None else "no response"
        checks.append(
            Check(
                "kid",
                False,
                f"cannot be looked up: the JWKS failed ({probe.problem}, {answer}; see the JWKS line above)",
                _next_step(probe),
            )
        )
        return
    kids = [k.get("kid") for k in probe.keys if k.get("use") in ("sig", None)]
    keys = (probe.payload or {}).get("keys")
    match = None
    if isinstance(kid, str):
        match = next(
            (k for k in (keys if isinstance(keys, list) else []) if isinstance(k, dict) and k.get("kid") == kid), None
        )
    if match is None:
        checks.append(
            Check(
                "kid",
                False,
                f"kid {_short(kid)} is not in the JWKS at {probe.url} (signing kids: {_short(kids, 300)})",
                "Either the identity provider rotated its keys and removed the one this token was signed with "
                f"(get a fresh token), or the token comes from {_provider(s, claims).other_issuer} "
                f"(token iss={_short(claims.get('iss'))}, JWK_URL={probe.url}): if this API trusts that issuer, "
                "point JWK_URL at its key set.",
            )
        )
        return
    checks.append(
        Check(
            "kid", True, f"kid {_short(kid)} found in the JWKS ({_short(match.get('alg'))}/{_short(match.get('use'))})"
        )
    )
    import jwt
    from jwt.api_jwk import PyJWK

    try:
        key_obj = PyJWK(match).key
    except Exception as exc:  # noqa: BLE001
        checks.append(
            Check(
                "signature",
                False,
                f"the JWK for kid {_short(kid)} cannot be loaded: {describe(exc)}",
                "Check that 'cryptography' is installed and the key type is supported.",
            )
        )
        return
    try:  # SIMPLE_JWT['ALGORITHM'] only: never the algorithm the token names
        jwt.decode(
            raw,
            key_obj,
            algorithms=[s.ALGORITHM],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except Exception as exc:  # noqa: BLE001 - PyJWT, cryptography or a hostile header: all findings
        fix = "The token was altered, or signed by a different key published under the same kid."
        if isinstance(exc, jwt.InvalidAlgorithmError):
            fix = "See the algorithm line: the token names another algorithm than SIMPLE_JWT['ALGORITHM']."
        checks.append(
            Check(
                "signature",
                False,
                f"signature does not verify with kid {_short(kid)} with {s.ALGORITHM} ({describe(exc)[:200]})",
                fix,
            )
        )
        return
    checks.append(Check("signature", True, f"signature verifies with kid {_short(kid)}"))


def _check_times(
    raw: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    probe: Any,
    s: Any,
    checks: list[Check],
    classes: list[type],
) -> None:
    now = time.time()
    leeway = _leeway_seconds(s.LEEWAY)
    exp = _finite(claims.get("exp"))
    if "exp" in claims and exp is None:
        checks.append(
            Check(
                "expiry",
                False,
                f"exp is {_short(claims.get('exp'), 40)}, not a finite number",
                "exp must be seconds since the epoch; this token did not come from a working IdP.",
            )
        )
    elif exp is None:
        checks.append(Check("expiry", False, "no numeric exp claim", "SimpleJWT requires an exp claim."))
    elif now > exp + leeway:
        late = now - exp
        checks.append(
            Check(
                "expiry",
                False,
                f"expired {late:.0f} s ago (LEEWAY {leeway:g} s)",
                "Get a fresh token. If it was just issued, this server's clock is about "
                f"{late:.0f} s ahead of the identity provider's: fix NTP, or raise SIMPLE_JWT['LEEWAY'].",
            )
        )
    else:
        checks.append(Check("expiry", True, f"expires in {exp - now:.0f} s (LEEWAY {leeway:g} s)"))
    for claim in ("nbf", "iat"):
        if claim not in claims:
            continue
        value = _finite(claims.get(claim))
        if value is None:
            checks.append(
                Check(
                    "clock",
                    False,
                    f"{claim} is {_short(claims.get(claim), 40)}, not a finite number",
                    f"{claim} must be seconds since the epoch.",
                )
            )
        elif value > now + leeway + (0 if claim == "nbf" else 60):
            checks.append(
                Check(
                    "clock",
                    False,
                    f"{claim} is {value - now:.0f} s in the future",
                    "This server's clock is behind the identity provider's: fix NTP, or raise SIMPLE_JWT['LEEWAY'].",
                )
            )


def _check_claims(
    raw: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    probe: Any,
    s: Any,
    checks: list[Check],
    classes: list[type],
) -> None:
    iss = claims.get("iss")
    if not s.ISSUER:
        checks.append(Check("issuer", None, f"not checked (SIMPLE_JWT['ISSUER'] is unset; token iss={_short(iss)})"))
    elif isinstance(iss, str) and iss in issuers(s.ISSUER):
        checks.append(Check("issuer", True, f"iss matches ISSUER {s.ISSUER!r}"))
    else:
        checks.append(
            Check(
                "issuer",
                False,
                f"token iss {_short(iss)} != SIMPLE_JWT['ISSUER'] {s.ISSUER!r}",
                _provider(s, claims).issuer_fix(),
            )
        )

    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    wanted = s.AUDIENCE if isinstance(s.AUDIENCE, (list, tuple, set)) else [s.AUDIENCE]
    if s.AUDIENCE is None:
        checks.append(
            Check("audience", None, f"not checked (SIMPLE_JWT['AUDIENCE'] is unset; token aud={_short(aud)})")
        )
    elif any(isinstance(a, str) and a in auds for a in wanted):
        checks.append(Check("audience", True, f"aud {_short(aud)} contains AUDIENCE {s.AUDIENCE!r}"))
    else:
        checks.append(
            Check(
                "audience",
                False,
                f"token aud {_short(aud)} does not contain SIMPLE_JWT['AUDIENCE'] {s.AUDIENCE!r}",
                _provider(s, claims).audience_fix(s.AUDIENCE),
            )
        )
    checks.append(_check_authorized_party(claims, _provider(s, claims)))

    claim = s.TOKEN_TYPE_CLAIM
    accepted = [getattr(c, "token_type", None) for c in s.AUTH_TOKEN_CLASSES]
    value = claims.get(claim) if isinstance(claim, str) else None
    if claim is None:
        checks.append(Check("token type", None, "not checked (TOKEN_TYPE_CLAIM is None)"))
    elif isinstance(value, str) and value in accepted:
        checks.append(Check("token type", True, f"{claim}={value!r} accepted by AUTH_TOKEN_CLASSES"))
    else:
        fix = token_type_fix(claims, _short(value))
        detail = f"{claim!r} claim is missing" if claim not in claims else f"{claim}={_short(value)}"
        checks.append(Check("token type", False, f"{detail}; AUTH_TOKEN_CLASSES accept {accepted}", fix))

    if s.USER_ID_CLAIM in claims:
        checks.append(Check("user id claim", True, f"{s.USER_ID_CLAIM!r} present"))
    else:
        checks.append(
            Check(
                "user id claim",
                False,
                f"USER_ID_CLAIM {s.USER_ID_CLAIM!r} is not in the token",
                _provider(s, claims).user_claim_fix(),
            )
        )

    if s.JTI_CLAIM is None:
        checks.append(Check("jti", None, "not checked (JTI_CLAIM is None)"))
    elif s.JTI_CLAIM in claims:
        checks.append(Check("jti", True, f"{s.JTI_CLAIM!r} present"))
    else:
        checks.append(
            Check(
                "jti",
                False,
                f"JTI_CLAIM {s.JTI_CLAIM!r} is not in the token",
                "Set SIMPLE_JWT['JTI_CLAIM'] to the claim your IdP uses, or None.",
            )
        )


# -- trust: the provider at hand and the authorized party --------------------------------------


def _provider(s: Any, claims: dict[str, Any] | None = None) -> Provider:
    """The provider the configuration (and, unverified, the token) points at: its advice wording."""
    try:
        return recognise(s.JWK_URL, s.ISSUER, claims=claims)
    except Exception:  # noqa: BLE001 - hostile settings or claims: generic wording
        return GENERIC


def _check_authorized_party(claims: dict[str, Any], provider: Provider) -> Check:
    """``AUTHORIZED_PARTIES``: whether the client the token was issued to is listed (fixer-enforced)."""
    from ..patcher import status as patch_status
    from ..patches.authorized_party import unauthorized_party

    options = get_options()
    parties, claim = options.authorized_parties, options.party_claim
    value = claims.get(claim)
    shown = _short(value) if claim in claims else "missing"
    if parties is None:
        unset = f"not checked (SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES'] is unset; {claim}={shown})"
        return Check("authorized party", None, unset)
    state = next((f.state for f in patch_status().fixers if f.id == "backend.decode.authorized-party"), "not applied")
    enforced = "" if state == "applied" else f" (NOT enforced: fixer backend.decode.authorized-party is {state})"
    if unauthorized_party(claims, parties, claim) is None:  # the fixer's own rule
        return Check("authorized party", True, f"{claim} {shown} is in AUTHORIZED_PARTIES{enforced}")
    listed = f"SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES'] {_short(sorted(parties), 200)}"
    what = f"token {claim} {shown} is not in {listed}" if claim in claims else f"token has no {claim!r} ({listed})"
    return Check("authorized party", False, what + enforced, provider.party_fix(claim))


def _drop_user_lookup_finding(report: Report) -> None:
    """With a token, W040 is judged from the token itself: its user id could be looked up."""
    if any(c.name == "user lookup" and c.ok for c in report.checks):
        report.findings[:] = [f for f in report.findings if f["id"] != "simplejwt_patches.W040"]


def _verdict_user(user: Any) -> dict[str, Any]:
    """How the verdict names the user: the username, or for a stateless ``TokenUser`` its id."""
    try:
        from rest_framework_simplejwt.models import TokenUser
    except Exception:  # noqa: BLE001 - very old releases
        TokenUser = ()  # type: ignore[assignment,misc]
    if isinstance(user, TokenUser):
        try:
            user_id = str(user.id)[:200]
        except Exception:  # noqa: BLE001 - the claim is missing or unusable
            user_id = "<missing>"
        return {"user": f"TokenUser id {user_id!r}", "user_id": user_id}
    return {"user": _username(user)}


def _check_user(
    raw: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    probe: Any,
    s: Any,
    checks: list[Check],
    classes: list[type],
) -> None:
    """Whether the judging class can look this token's user id up (an integer field and a UUID cannot)."""
    from django.contrib.auth import get_user_model

    from ..patches.user_lookup import USER_LOOKUP_FIXES, user_id_facts

    judge = classes[0] if classes else None
    claim = s.USER_ID_CLAIM
    if judge is None or not looks_users_up(judge) or not isinstance(claim, str) or claim not in claims:
        return
    model = get_user_model()
    name = str(s.USER_ID_FIELD)
    try:
        model_field: Any = model._meta.get_field(name)
    except Exception:  # noqa: BLE001
        checks.append(
            Check(
                "user lookup",
                False,
                f"USER_ID_FIELD {name!r} is not a field of {model._meta.label}",
                "Set SIMPLE_JWT['USER_ID_FIELD'] to a field of the user model.",
            )
        )
        return
    value = claims[claim]
    try:
        model_field.get_prep_value(model_field.to_python(value))
    except Exception as exc:  # noqa: BLE001 - what the ORM would raise inside get_user
        checks.append(
            Check(
                "user lookup",
                False,
                f"{claim!r} is {user_id_facts(value)}, which USER_ID_FIELD {name!r} ({type(model_field).__name__}) of "
                f"{model._meta.label} cannot look up ({type(exc).__name__}); {_dotted(judge)} looks users up in the "
                "database",
                USER_LOOKUP_FIXES[0].upper() + USER_LOOKUP_FIXES[1:] + ".",
            )
        )
        return
    checks.append(
        Check(
            "user lookup",
            True,
            f"{claim!r} can be looked up in USER_ID_FIELD {name!r} ({type(model_field).__name__}) by {_dotted(judge)}",
        )
    )


def _verdict(raw: str, classes: list[type]) -> dict[str, Any]:
    """What the API would answer: ``authenticate()`` of each class on a real DRF ``Request``.

    The classes are tried in order as DRF's ``Request._authenticate`` does (the first that returns a
    user or raises decides); exceptions map as DRF's ``APIView.handle_exception`` maps them
    (``APIException`` -> its status, a 401 becoming 403 when the first class sends no
    ``WWW-Authenticate``; anything else -> 500).
    """
    from rest_framework import exceptions as drf_exceptions
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from ..diagnostics import causes
    from ..failures import TOKEN_REASONS
    from ..patches.user_lookup import UserLookupError

    s = _api_settings()
    types = s.AUTH_HEADER_TYPES
    prefix = types[0] if isinstance(types, (list, tuple)) and types else str(types)
    header = f"{prefix} {raw}".encode("utf-8", "replace").decode("latin-1")  # what a WSGI server would hand over
    authenticators = [cls() for cls in classes]
    meta: dict[str, Any] = {str(s.AUTH_HEADER_NAME): header}
    request = Request(APIRequestFactory().get("/", **meta), authenticators=authenticators)
    judge: type | None = None
    try:
        for auth in authenticators:
            judge = type(auth)
            result = auth.authenticate(request)
            if result is not None:
                user, validated = result
                return {
                    "accepted": True,
                    "status": 200,
                    "auth_class": _dotted(judge),
                    **_verdict_user(user),
                    "token_class": type(validated).__name__,
                }
    except drf_exceptions.APIException as exc:
        status = exc.status_code
        if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            status = 401 if authenticators[0].authenticate_header(request) else 403
        if any(isinstance(e, UserLookupError) for e in causes(exc)):
            code, reason = "user_lookup", TOKEN_REASONS["user_lookup"]
        else:
            code, reason = classify(exc.__cause__ or exc)
        return {
            "accepted": False,
            "status": status,
            "auth_class": _dotted(judge) if judge else None,
            "detail": _jsonable(json.loads(json.dumps(exc.detail, default=str))),
            "reason_code": code,
            "reason": redact(reason, raw),
        }
    except Exception as exc:  # noqa: BLE001 - DRF answers anything else with 500
        return {
            "accepted": False,
            "status": 500,
            "auth_class": _dotted(judge) if judge else None,
            "detail": redact(describe(exc)[:300], raw),
            "reason_code": "error",
            "reason": redact(describe(exc)[:300], raw),
        }
    return {
        "accepted": False,
        "status": 401,
        "auth_class": None,
        "detail": f"no SimpleJWT class took the token (AUTH_HEADER_TYPES {types!r})",
        "reason_code": "not_authenticated",
        "reason": "no authentication class accepted the Authorization header",
    }


def _username(user: Any) -> str:
    try:
        return str(user.get_username())
    except Exception:  # noqa: BLE001 - a stateless TokenUser without the claim
        return f"<{type(user).__name__}>"


def _judges(auth_class: type | None, report: Report) -> list[type]:
    """The classes that judge: ``--auth-class``, else SimpleJWT's in DEFAULT_AUTHENTICATION_CLASSES."""
    from rest_framework_simplejwt.authentication import JWTAuthentication

    if auth_class is not None:
        classes = [auth_class]
    else:
        try:
            classes = configured_auth_classes()
        except Exception as exc:  # noqa: BLE001 - DRF cannot import one of them
            report.findings.append(
                {
                    "id": "auth-classes",
                    "level": "error",
                    "message": "REST_FRAMEWORK["
                    f"'DEFAULT_AUTHENTICATION_CLASSES'] cannot be imported: {describe(exc)[:300]}",
                    "hint": "Fix the dotted path; the doctor judges with JWTAuthentication.",
                }
            )
            classes = []
        if not classes:
            report.findings.append(
                {
                    "id": "auth-classes",
                    "level": "warning",
                    "message": "no SimpleJWT class in "
                    "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']: judged with JWTAuthentication",
                    "hint": "Views that set authentication_classes: pass --auth-class dotted.path.",
                }
            )
            classes = [JWTAuthentication]
    report.auth_classes = [_dotted(c) for c in classes]
    return classes


def _findings(report: Report, classes: list[type]) -> None:
    """System-check warnings the operator should see next to the verdict (W020, W040)."""
    from ..conf import jwk_url_problems
    from ..patches.user_lookup import USER_LOOKUP_FIXES

    s = _api_settings()
    if s.JWK_URL:
        for problem in jwk_url_problems(s.JWK_URL):
            report.findings.append(
                {
                    "id": f"simplejwt_patches.{problem.id}",
                    "level": "warning" if problem.id[0] == "W" else "error",
                    "message": problem.msg,
                    "hint": problem.hint or "",
                }
            )
    problem_text = user_lookup_problem(s, classes)
    if problem_text:
        report.findings.append(
            {
                "id": "simplejwt_patches.W040",
                "level": "warning",
                "message": problem_text,
                "hint": USER_LOOKUP_FIXES[0].upper() + USER_LOOKUP_FIXES[1:] + ".",
            }
        )


def _prime(probe: JWKSProbe, url: str) -> None:
    """Hand the probe's key set (or its failure) to SimpleJWT's managed client: one JWKS fetch per run."""
    import sys

    import jwt

    from ..clients import adopt

    error: BaseException | None = None
    if probe.failure is not None and probe.failure.category.reason_code == "jwks_unavailable":
        error = jwt.PyJWKClientError(f'Fail to fetch data from the url, err: "{probe.failure.detail}"')
        error.__cause__ = probe.failure
    elif not probe.ok or probe.payload is None:
        return
    backends = [
        getattr(sys.modules.get(m), "token_backend", None)
        for m in ("rest_framework_simplejwt.state", "rest_framework_simplejwt.tokens")
    ]
    for backend in {id(b): b for b in backends if b is not None}.values():
        client = getattr(backend, "jwks_client", None)
        if client is None or str(getattr(client, "uri", "")) != url:
            continue
        state = adopt(client)
        if state is None:
            continue
        if error is not None:
            state.key_source().prime_failure(error)
        elif probe.payload is not None:
            state.key_source().prime(probe.payload, probe.cache_lifetime or 300.0, storable=bool(probe.shared))


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:600])
        except Exception:  # noqa: BLE001 - an unformattable record
            self.lines.append(f"{record.levelname} {record.name}: <unformattable>")


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Keep ``simplejwt_patches`` log records out of the report's stream; WARNING+ are summarised."""
    logger = logging.getLogger("simplejwt_patches")
    handler = _Captured()
    saved = (logger.handlers[:], logger.propagate)
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        yield handler.lines
    finally:
        logger.handlers[:], logger.propagate = saved


def diagnose(token: str | None = None, *, auth_class: type | None = None, all_claims: bool = False) -> Report:
    """Run every check against the project's real settings; ``token`` may be ``None``.

    ``auth_class`` judges instead of the SimpleJWT classes of ``DEFAULT_AUTHENTICATION_CLASSES``.
    """
    from ..patcher import status as patch_status

    with captured_logs() as log:
        options = get_options()
        st = patch_status()
        s = _api_settings()
        jwk_url = s.JWK_URL if isinstance(s.JWK_URL, str) and s.JWK_URL else None
        report = Report(
            versions={
                "django": _v("Django"),
                "djangorestframework": _v("djangorestframework"),
                "djangorestframework-simplejwt": _v("djangorestframework-simplejwt"),
                "pyjwt": _v("PyJWT"),
                "simplejwt-patches": __version__,
            },
            patches={
                "applied": st.applied,
                "patch_set": st.patch_set,
                "reason": st.patch_set_reason,
                "fixers": {
                    f.id: f"{f.state}: {f.reason}" + (f" [{f.selected_by}]" if f.selected_by else "") for f in st.fixers
                },
            },
            jwks_options=st.options,
            jwks=probe_jwks(jwk_url, s.ALGORITHM, options) if jwk_url else None,
        )
        classes = _judges(auth_class, report)
        _findings(report, classes)
        if token is None:
            report.ok = report.jwks is None or report.jwks.ok
        else:
            raw = strip_bearer(token)
            if report.jwks is not None and jwk_url:
                _prime(report.jwks, jwk_url)
            _token_checks(raw, report.jwks, report, classes, all_claims)
            _drop_user_lookup_finding(report)
            report.verdict = _verdict(raw, classes)
            report.ok = bool(report.verdict.get("accepted"))
    report.log = [redact(line, strip_bearer(token)) if token else line for line in log]
    return report


def strip_bearer(token: str) -> str:
    """The raw token: surrounding white space and a ``Bearer`` prefix (any case) removed."""
    return re.sub(r"^[Bb][Ee][Aa][Rr][Ee][Rr]\s+", "", token.strip()).strip()


def _v(dist: str) -> str | None:
    v = distribution_version(dist)
    return str(v) if v else None


def _dump(value: Any, limit: int = 2000) -> str:
    text = json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_text(report: Report) -> str:
    """Human-readable report with ✓/✗ lines and fixes."""
    out = ["simplejwt_doctor"]
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    p = report.patches
    out.append(f"patch set: {p['patch_set'] or 'none'} ({p['reason']}); applied={p['applied']}")
    for fid, state in p["fixers"].items():
        out.append(f"  - {fid}: {state}")
    o = report.jwks_options
    out.append(
        "JWKS client options (SIMPLE_JWT_PATCHES): "
        + ", ".join(f"{s.key}={o[s.attr]!r}" for s in SCHEMA if s.attr in o)
    )
    if report.auth_classes:
        out.append("judged by: " + ", ".join(report.auth_classes))
    for finding in report.findings:
        mark = "✗" if finding["level"] == "error" else "!"
        out.append(f"{mark} {finding['id']}: {finding['message']}")
        if finding.get("hint"):
            out.append(f"    fix: {finding['hint']}")
    j = report.jwks
    if j is None:
        out.append("JWKS: SIMPLE_JWT['JWK_URL'] is not set")
    else:
        mark = "✓" if j.ok else "✗"
        ms = f"{j.elapsed_ms:.0f} ms" if j.elapsed_ms is not None else "-"
        answer = f"HTTP {j.status}" if j.status is not None else "no response"
        out.append(f"{mark} JWKS {j.url}: {answer}, {ms}, {j.content_type or '-'}, {j.size or 0} bytes")
        if j.keys:
            out.append("  keys: " + _dump([f"{k['kid']} ({k['kty']} {k['alg']}/{k['use']})" for k in j.keys], 1000))
        if j.cache_lifetime is not None:
            out.append(
                f"  cache policy: Cache-Control {j.cache_control or '(none)'!r} -> cached {j.cache_lifetime:g} s"
                + (", shared" if o.get("shared_cache") and j.shared else "")
            )
        if j.ok:
            out.append(f"  a signing key matches ALGORITHM {j.algorithm}")
        else:
            out.append(f"  problem: {j.problem}: {j.error}")
            if j.redirect_to:
                out.append(f"  redirect to: {j.redirect_to}")
            out.append(f"  fix: {_next_step(j)}")
    if report.token is not None:
        out.append("token header: " + _dump(report.token["header"]))
        which = "all" if report.token["claims_shown"] == "all" else "only those checked; --all-claims for all"
        out.append(f"token claims (unverified, {which}): " + _dump(report.token["claims"]))
    for c in report.checks:
        mark = {True: "✓", False: "✗", None: "·"}[c.ok]
        out.append(f"{mark} {c.name}: {c.detail}")
        if c.ok is False and c.fix:
            out.append(f"    fix: {c.fix}")
    if report.verdict is not None:
        v = report.verdict
        by = f"; judged by {v['auth_class']}" if v.get("auth_class") else ""
        if v["accepted"]:
            who = v["user"] if "user_id" in v else f"user {v['user']!r}"
            out.append(f"✓ verdict: the API would answer 200 ({who}, token class {v['token_class']}{by})")
        else:
            judged = f" (judged by {v['auth_class']})" if v.get("auth_class") else ""
            out.append(f"✗ verdict: the API would answer {v['status']}: {v['reason_code']}: {v['reason']}{judged}")
            out.append(f"    body: {_dump(v['detail'], 1000)}")
    if report.log:
        out.append(f"log during the run (simplejwt_patches, WARNING and above, {len(report.log)}):")
        out.extend(f"  {line}" for line in report.log[:20])
    out.append("result: " + ("OK" if report.ok else "FAILED"))
    return "\n".join(out)
