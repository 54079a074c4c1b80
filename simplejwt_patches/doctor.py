"""``simplejwt_doctor``: why is *this* token rejected? One command, the project's real settings.

The JWKS is fetched exactly as authentication fetches it (same headers, timeout, TLS, proxy and
redirect policy, via :func:`simplejwt_patches.transport.http_get`); a token is decoded without
verification, then every check authentication runs is replayed in order, each with a concrete fix,
and finally the real ``JWTAuthentication`` gives the verdict the API would give. Nothing here
prints or returns the token or its signature.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .conf import SCHEMA, Options, get_options
from .diagnostics import describe, fingerprint, redact, safe_url, segment_json
from .failures import CATEGORIES, JWKSFailure, classify, failure_from
from .keys import MAX_KEYS, usable_signing_keys
from .transport import cache_lifetime, http_get, parse_key_set
from .version import __version__
from .versions import distribution_version

__all__ = [
    "Check",
    "JWKSProbe",
    "Report",
    "configured_auth_classes",
    "diagnose",
    "discovery_issuer",
    "integer_user_id_field",
    "issuers",
    "looks_users_up",
    "probe_jwks",
    "render_text",
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
    """The concrete next step for a failed probe, from the failure's category."""
    if probe.problem in CATEGORIES:
        return CATEGORIES[probe.problem].next_step
    return (
        f"Set SIMPLE_JWT['ALGORITHM'] to the algorithm of the identity provider's signing key, or add a "
        f"{probe.algorithm} signing key to the realm."
    )


def _kty_for(algorithm: str) -> str | None:
    return {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}.get(algorithm[:2])


def _discovery_candidates(jwk_url: str, issuer: Any) -> list[str]:
    parts = urlsplit(jwk_url)
    path = parts.path
    out = []
    for suffix in ("/protocol/openid-connect/certs", "/.well-known/jwks.json"):
        if path.endswith(suffix):
            out.append(
                urlunsplit(
                    (parts.scheme, parts.netloc, path[: -len(suffix)] + "/.well-known/openid-configuration", "", "")
                )
            )
    if path.endswith("/discovery/v2.0/keys"):  # Entra ID
        base = path[: -len("/discovery/v2.0/keys")]
        out.append(urlunsplit((parts.scheme, parts.netloc, base + "/v2.0/.well-known/openid-configuration", "", "")))
    for one in issuers(issuer):
        out.append(one.rstrip("/") + "/.well-known/openid-configuration")
    return list(dict.fromkeys(out))


def discovery_issuer(jwk_url: str, issuer: Any, options: Options | None = None) -> tuple[str, str] | None:
    """``(discovery URL, issuer)`` of an OpenID discovery document next to the JWKS, if one answers."""
    options = options or get_options()
    for url in _discovery_candidates(jwk_url, issuer):
        try:
            doc = parse_key_set(http_get(url, options).body)
        except Exception:  # noqa: BLE001 - no discovery document there
            continue
        if isinstance(doc.get("issuer"), str):
            return safe_url(url), doc["issuer"]
    return None


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

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        jwks = None
        if self.jwks is not None:
            jwks = {k: v for k, v in asdict(self.jwks).items() if k != "payload"}
        return {
            "ok": self.ok,
            "versions": self.versions,
            "patches": self.patches,
            "jwks_options": self.jwks_options,
            "jwks": jwks,
            "token": self.token,
            "checks": [asdict(c) for c in self.checks],
            "verdict": self.verdict,
        }


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
    from rest_framework_simplejwt.authentication import JWTAuthentication, JWTStatelessUserAuthentication

    if issubclass(auth_class, JWTStatelessUserAuthentication):
        return False
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
    field = integer_user_id_field(simple_jwt)
    lookups = [c for c in classes if looks_users_up(c)]
    if field is None or not lookups:
        return None
    names = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in lookups)
    return (
        f"USER_ID_CLAIM 'sub' is looked up in USER_ID_FIELD {simple_jwt.USER_ID_FIELD!r} ({field}) by {names}: an "
        "identity provider's sub (Keycloak: a UUID) is no integer, so no token can find its user"
    )


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


def _token_checks(raw: str, probe: JWKSProbe | None, report: Report) -> list[Check]:
    s = _api_settings()
    checks: list[Check] = []
    parts = raw.split(".")
    try:
        header, claims = segment_json(parts[0]), segment_json(parts[1])
        if len(parts) != 3 or not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("not three segments of JSON objects")
    except Exception as exc:  # noqa: BLE001
        checks.append(
            Check("decode", False, f"not a JWT ({describe(exc)})", "Pass the raw access token (three base64url "
                  "segments separated by dots), without the 'Bearer ' prefix or quotes.")
        )  # fmt: skip
        return checks
    report.token = {"header": header, "claims": claims, "fingerprint": fingerprint(raw)}
    checks.append(Check("decode", True, f"header and claims decoded (unverified), kid={header.get('kid')}"))

    alg = header.get("alg")
    if alg == s.ALGORITHM:
        checks.append(Check("algorithm", True, f"alg {alg} matches SIMPLE_JWT['ALGORITHM']"))
    else:
        checks.append(
            Check(
                "algorithm",
                False,
                f"token alg {alg!r} but SIMPLE_JWT['ALGORITHM'] is {s.ALGORITHM!r}",
                f"Set SIMPLE_JWT['ALGORITHM'] = {alg!r} (the algorithm the identity provider signs with).",
            )
        )

    kid = header.get("kid")
    key_obj = None
    if probe is None:
        checks.append(Check("kid", None, "JWK_URL is not set: the static VERIFYING_KEY is used"))
    elif not probe.ok and probe.problem != "no_key_for_algorithm":
        checks.append(Check("kid", False, f"the JWKS could not be used: {probe.error}", _next_step(probe)))
    else:
        kids = [k.get("kid") for k in probe.keys if k.get("use") in ("sig", None)]
        match = next(
            (k for k in (probe.payload or {}).get("keys", []) if isinstance(k, dict) and k.get("kid") == kid), None
        )
        if match is None:
            checks.append(Check(
                "kid", False, f"kid {kid!r} is not in the JWKS at {probe.url} (signing kids: {kids})",
                "Either the identity provider rotated its keys and removed the one this token was signed with "
                f"(get a fresh token), or the token comes from another realm/IdP (token iss={claims.get('iss')!r}, "
                f"JWK_URL={probe.url}): point JWK_URL at the realm that issued it.",
            ))  # fmt: skip
        else:
            checks.append(Check("kid", True, f"kid {kid!r} found in the JWKS ({match.get('alg')}/{match.get('use')})"))
            try:
                from jwt.api_jwk import PyJWK

                key_obj = PyJWK(match).key
            except Exception as exc:  # noqa: BLE001
                checks.append(
                    Check(
                        "signature",
                        False,
                        f"the JWK for kid {kid!r} cannot be loaded: {describe(exc)}",
                        "Check that 'cryptography' is installed and the key type is supported.",
                    )
                )

    if key_obj is not None:
        import jwt

        try:
            jwt.decode(raw, key_obj, algorithms=[alg or s.ALGORITHM], options={
                "verify_exp": False, "verify_aud": False, "verify_iss": False, "verify_iat": False, "verify_nbf": False,
            })  # fmt: skip
            checks.append(Check("signature", True, f"signature verifies with kid {kid!r}"))
        except jwt.InvalidTokenError as exc:
            checks.append(
                Check(
                    "signature",
                    False,
                    f"signature does not verify with kid {kid!r} ({describe(exc)})",
                    "The token was altered, or signed by a different key published under the same kid.",
                )
            )

    now = time.time()
    leeway = _leeway_seconds(s.LEEWAY)
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        checks.append(Check("expiry", False, "no numeric exp claim", "SimpleJWT requires an exp claim."))
    elif now > exp + leeway:
        late = int(now - exp)
        checks.append(Check(
            "expiry", False, f"expired {late} s ago (LEEWAY {leeway:g} s)",
            "Get a fresh token. If it was just issued, this server's clock is about "
            f"{late} s ahead of the identity provider's: fix NTP, or raise SIMPLE_JWT['LEEWAY'].",
        ))  # fmt: skip
    else:
        checks.append(Check("expiry", True, f"expires in {int(exp - now)} s (LEEWAY {leeway:g} s)"))
    for claim in ("nbf", "iat"):
        value = claims.get(claim)
        if isinstance(value, (int, float)) and value > now + leeway + (0 if claim == "nbf" else 60):
            checks.append(Check(
                "clock", False, f"{claim} is {int(value - now)} s in the future",
                "This server's clock is behind the identity provider's: fix NTP, or raise SIMPLE_JWT['LEEWAY'].",
            ))  # fmt: skip

    iss = claims.get("iss")
    if not s.ISSUER:
        checks.append(Check("issuer", None, f"not checked (SIMPLE_JWT['ISSUER'] is unset; token iss={iss!r})"))
    elif iss in issuers(s.ISSUER):
        checks.append(Check("issuer", True, f"iss matches ISSUER {s.ISSUER!r}"))
    else:
        checks.append(Check(
            "issuer", False, f"token iss {iss!r} != SIMPLE_JWT['ISSUER'] {s.ISSUER!r}",
            "Keycloak writes the URL it was reached by (its frontend URL / KC_HOSTNAME) into iss: set "
            f"SIMPLE_JWT['ISSUER'] = {iss!r}, or configure Keycloak's hostname so both agree.",
        ))  # fmt: skip

    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    wanted = s.AUDIENCE if isinstance(s.AUDIENCE, (list, tuple, set)) else [s.AUDIENCE]
    if s.AUDIENCE is None:
        checks.append(Check("audience", None, f"not checked (SIMPLE_JWT['AUDIENCE'] is unset; token aud={aud!r})"))
    elif any(a in auds for a in wanted):
        checks.append(Check("audience", True, f"aud {aud!r} contains AUDIENCE {s.AUDIENCE!r}"))
    else:
        checks.append(Check(
            "audience", False, f"token aud {aud!r} does not contain SIMPLE_JWT['AUDIENCE'] {s.AUDIENCE!r}",
            "Keycloak's default audience is 'account': add an Audience mapper for your API's client in Keycloak, "
            f"or set SIMPLE_JWT['AUDIENCE'] to one of {auds!r}.",
        ))  # fmt: skip

    claim = s.TOKEN_TYPE_CLAIM
    classes = list(s.AUTH_TOKEN_CLASSES)
    accepted = [getattr(c, "token_type", None) for c in classes]
    if claim is None:
        checks.append(Check("token type", None, "not checked (TOKEN_TYPE_CLAIM is None)"))
    elif claims.get(claim) in accepted:
        checks.append(Check("token type", True, f"{claim}={claims.get(claim)!r} accepted by AUTH_TOKEN_CLASSES"))
    else:
        fix = f"Add a token class with token_type = {claims.get(claim)!r} to AUTH_TOKEN_CLASSES."
        if claims.get("typ") == "Bearer":
            fix = ("Keycloak sends typ: 'Bearer' where SimpleJWT expects token_type: 'access': set "
                   "SIMPLE_JWT['TOKEN_TYPE_CLAIM'] = 'typ' and SIMPLE_JWT['AUTH_TOKEN_CLASSES'] = "
                   "('simplejwt_patches.tokens.BearerAccessToken',).")  # fmt: skip
        detail = f"{claim!r} claim is missing" if claim not in claims else f"{claim}={claims.get(claim)!r}"
        checks.append(Check("token type", False, f"{detail}; AUTH_TOKEN_CLASSES accept {accepted}", fix))

    if s.USER_ID_CLAIM in claims:
        checks.append(Check("user id claim", True, f"{s.USER_ID_CLAIM!r} present"))
    else:
        checks.append(Check(
            "user id claim", False, f"USER_ID_CLAIM {s.USER_ID_CLAIM!r} is not in the token",
            "Keycloak >= 25 'lightweight' access tokens can omit sub: add the 'basic' client scope (sub mapper) to "
            "the client, or set SIMPLE_JWT['USER_ID_CLAIM'] to a claim the token carries (e.g. 'preferred_username').",
        ))  # fmt: skip

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
    return checks


def _verdict(raw: str) -> dict[str, Any]:
    """What the API would answer, from the real ``JWTAuthentication``."""
    from rest_framework import exceptions as drf_exceptions
    from rest_framework_simplejwt.authentication import JWTAuthentication

    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw.encode())
        user = auth.get_user(validated)
    except drf_exceptions.APIException as exc:
        code, reason = classify(exc.__cause__ or exc)
        return {
            "accepted": False,
            "status": exc.status_code,
            "detail": json.loads(json.dumps(exc.detail, default=str)),
            "reason_code": code,
            "reason": redact(reason, raw),
        }
    except Exception as exc:  # noqa: BLE001 - e.g. no database: still a finding
        return {
            "accepted": False,
            "status": 500,
            "detail": describe(exc),
            "reason_code": "error",
            "reason": describe(exc),
        }
    return {
        "accepted": True,
        "status": 200,
        "user": str(getattr(user, "get_username", lambda: user)()),
        "token_class": type(validated).__name__,
    }


def diagnose(token: str | None = None) -> Report:
    """Run every check against the project's real settings; ``token`` may be ``None``."""
    from .patcher import status as patch_status

    options = get_options()
    st = patch_status()
    s = _api_settings()
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
            "fixers": {f.id: f"{f.state}: {f.reason}" for f in st.fixers},
        },
        jwks_options=st.options,
        jwks=probe_jwks(s.JWK_URL, s.ALGORITHM, options) if s.JWK_URL else None,
    )
    if token is None:
        report.ok = report.jwks is None or report.jwks.ok
        return report
    raw = strip_bearer(token)
    report.checks = _token_checks(raw, report.jwks, report)
    report.verdict = _verdict(raw)
    report.ok = bool(report.verdict.get("accepted"))
    return report


def strip_bearer(token: str) -> str:
    """The raw token: surrounding white space and a ``Bearer`` prefix (any case) removed."""
    return re.sub(r"^[Bb][Ee][Aa][Rr][Ee][Rr]\s+", "", token.strip()).strip()


def _v(dist: str) -> str | None:
    v = distribution_version(dist)
    return str(v) if v else None


def render_text(report: Report) -> str:
    """Human-readable report with ✓/✗ lines and fixes."""
    out = ["simplejwt_doctor"]
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    p = report.patches
    out.append(f"patch set: {p['patch_set'] or 'none'} ({p['reason']}); applied={p['applied']}")
    for fid, state in p["fixers"].items():
        out.append(f"  - {fid}: {state}")
    o = report.jwks_options
    out.append("JWKS client options (SIMPLE_JWT_PATCHES): " + ", ".join(
        f"{s.key}={o[s.attr]!r}" for s in SCHEMA if s.attr in o
    ))  # fmt: skip
    j = report.jwks
    if j is None:
        out.append("JWKS: SIMPLE_JWT['JWK_URL'] is not set")
    else:
        mark = "✓" if j.ok else "✗"
        ms = f"{j.elapsed_ms:.0f} ms" if j.elapsed_ms is not None else "-"
        answer = f"HTTP {j.status}" if j.status is not None else "no response"
        out.append(f"{mark} JWKS {j.url}: {answer}, {ms}, {j.content_type or '-'}, {j.size or 0} bytes")
        if j.keys:
            out.append("  keys: " + ", ".join(f"{k['kid']} ({k['kty']} {k['alg']}/{k['use']})" for k in j.keys))
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
        out.append("token header: " + json.dumps(report.token["header"], sort_keys=True))
        out.append("token claims (unverified): " + json.dumps(report.token["claims"], sort_keys=True, default=str))
    for c in report.checks:
        mark = {True: "✓", False: "✗", None: "·"}[c.ok]
        out.append(f"{mark} {c.name}: {c.detail}")
        if c.ok is False and c.fix:
            out.append(f"    fix: {c.fix}")
    if report.verdict is not None:
        v = report.verdict
        if v["accepted"]:
            out.append(f"✓ verdict: the API would answer 200 (user {v['user']!r}, token class {v['token_class']})")
        else:
            out.append(f"✗ verdict: the API would answer {v['status']}: {v['reason_code']}: {v['reason']}")
            out.append(f"    body: {json.dumps(v['detail'], default=str)}")
    out.append("result: " + ("OK" if report.ok else "FAILED"))
    return "\n".join(out)
