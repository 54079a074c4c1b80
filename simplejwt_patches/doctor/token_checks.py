"""The token checks: every check authentication runs, replayed on one token, each with a concrete fix.

One small function per check, registered in the order they run and print, the way Django's check
framework registers system checks: adding a check is adding one function decorated with
``@token_check("name")``. A check reads a :class:`TokenContext` and yields its ✓/✗/· lines
(:class:`~simplejwt_patches.doctor.report.Check`); one that raises becomes a ✗ line under its name
(a hostile token is a finding, never a traceback) and the next check runs.

The token is decoded without verification; the signature is verified with
``SIMPLE_JWT['ALGORITHM']`` only, never with the algorithm the token names.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..conf import get_options
from ..diagnostics import describe, fingerprint, segment_json
from ..providers import GENERIC, Provider, recognise, token_type_fix
from .probe import JWKSProbe, issuers, next_step
from .report import Check, Report, short
from .stack import api_settings, dotted, looks_users_up

__all__ = [
    "REGISTRY",
    "TokenContext",
    "decode_token",
    "run_token_checks",
    "shown_claims",
    "strip_bearer",
    "token_check",
]


@dataclass
class TokenContext:
    """What every token check reads: the token (decoded, unverified), the probe, the settings, the judges."""

    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]
    probe: JWKSProbe | None
    settings: Any  # SimpleJWT's api_settings, as JWTAuthentication reads them
    classes: list[type]  # the classes that judge, in order
    jwk: dict[str, Any] | None = None  # the JWKS entry the kid check found; the signature check verifies with it

    @cached_property
    def provider(self) -> Provider:
        """The provider the configuration (and, unverified, the token) points at: its advice wording."""
        try:
            return recognise(self.settings.JWK_URL, self.settings.ISSUER, claims=self.claims)
        except Exception:  # noqa: BLE001 - hostile settings or claims: generic wording
            return GENERIC


TokenCheck = Callable[[TokenContext], Iterator[Check]]

#: The registered token checks, ``(name, check)``, in the order they run and print.
REGISTRY: list[tuple[str, TokenCheck]] = []


def token_check(name: str) -> Callable[[TokenCheck], TokenCheck]:
    """Register a token check under ``name`` (the name of its ✗ line should it raise), after the others."""

    def register(check: TokenCheck) -> TokenCheck:
        if any(known == name for known, _ in REGISTRY):
            raise ValueError(f"a token check named {name!r} is already registered")
        REGISTRY.append((name, check))
        return check

    return register


def strip_bearer(token: str) -> str:
    """The raw token: surrounding white space and a ``Bearer`` prefix (any case) removed."""
    return re.sub(r"^[Bb][Ee][Aa][Rr][Ee][Rr]\s+", "", token.strip()).strip()


def decode_token(raw: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
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


def run_token_checks(raw: str, probe: JWKSProbe | None, report: Report, classes: list[type], all_claims: bool) -> None:
    """Decode ``raw`` into ``report.token`` and append every registered check's lines to ``report.checks``."""
    s = api_settings()
    checks = report.checks
    decoded = decode_token(raw)
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
    checks.append(Check("decode", True, f"header and claims decoded (unverified), kid={short(header.get('kid'))}"))
    context = TokenContext(raw, header, claims, probe, s, classes)
    for name, check in REGISTRY:
        try:
            for line in check(context):  # the lines before a raise stay
                checks.append(line)
        except Exception as exc:  # noqa: BLE001 - a hostile token is a finding, never a traceback
            checks.append(
                Check(
                    name,
                    False,
                    f"cannot be checked: {describe(exc)[:200]}",
                    "The token carries values SimpleJWT cannot use; get a token from the identity provider.",
                )
            )


def _finite(value: Any) -> float | None:
    """A claim as seconds, when it is a finite number (``bool`` is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return number if math.isfinite(number) else None


def _leeway_seconds(leeway: Any) -> float:
    if leeway is None:
        return 0.0
    if hasattr(leeway, "total_seconds"):
        return float(leeway.total_seconds())
    return float(leeway)


# -- the checks, in the order they run ---------------------------------------------------------


@token_check("algorithm")
def check_algorithm(ctx: TokenContext) -> Iterator[Check]:
    """The token's ``alg`` is ``SIMPLE_JWT['ALGORITHM']`` (never ``none``, never HMAC with an IdP)."""
    alg, expected = ctx.header.get("alg"), ctx.settings.ALGORITHM
    if isinstance(alg, str) and alg == expected:
        yield Check("algorithm", True, f"alg {alg} matches SIMPLE_JWT['ALGORITHM']")
        return
    fix = f"Set SIMPLE_JWT['ALGORITHM'] = {alg!r} (the algorithm the identity provider signs with)."
    if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS") or len(alg) > 10:
        fix = (
            f"Never accept {short(alg, 40)}: the identity provider signs with an asymmetric algorithm "
            "(e.g. RS256); this token is forged or not an access token."
        )
    yield Check("algorithm", False, f"token alg {short(alg, 40)} but SIMPLE_JWT['ALGORITHM'] is {expected!r}", fix)


@token_check("kid")
def check_kid(ctx: TokenContext) -> Iterator[Check]:
    """The token's ``kid`` is in the key set the probe fetched (found: ``ctx.jwk``)."""
    kid, probe = ctx.header.get("kid"), ctx.probe
    if probe is None:
        yield Check("kid", None, "JWK_URL is not set: the static VERIFYING_KEY is used")
        return
    if not probe.ok and probe.problem != "no_key_for_algorithm":
        answer = f"HTTP {probe.status}" if probe.status is not None else "no response"
        yield Check(
            "kid",
            False,
            f"cannot be looked up: the JWKS failed ({probe.problem}, {answer}; see the JWKS line above)",
            next_step(probe),
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
        yield Check(
            "kid",
            False,
            f"kid {short(kid)} is not in the JWKS at {probe.url} (signing kids: {short(kids, 300)})",
            "Either the identity provider rotated its keys and removed the one this token was signed with "
            f"(get a fresh token), or the token comes from {ctx.provider.other_issuer} "
            f"(token iss={short(ctx.claims.get('iss'))}, JWK_URL={probe.url}): if this API trusts that issuer, "
            "point JWK_URL at its key set.",
        )
        return
    ctx.jwk = match
    found = f"({short(match.get('alg'))}/{short(match.get('use'))})"
    yield Check("kid", True, f"kid {short(kid)} found in the JWKS {found}")


@token_check("signature")
def check_signature(ctx: TokenContext) -> Iterator[Check]:
    """The signature verifies with the key the kid check found, with ``SIMPLE_JWT['ALGORITHM']`` only."""
    if ctx.jwk is None:
        return
    import jwt
    from jwt.api_jwk import PyJWK

    kid, algorithm = ctx.header.get("kid"), ctx.settings.ALGORITHM
    try:
        key_obj = PyJWK(ctx.jwk).key
    except Exception as exc:  # noqa: BLE001
        yield Check(
            "signature",
            False,
            f"the JWK for kid {short(kid)} cannot be loaded: {describe(exc)}",
            "Check that 'cryptography' is installed and the key type is supported.",
        )
        return
    try:  # SIMPLE_JWT['ALGORITHM'] only: never the algorithm the token names
        jwt.decode(
            ctx.raw,
            key_obj,
            algorithms=[algorithm],
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
        yield Check(
            "signature",
            False,
            f"signature does not verify with kid {short(kid)} with {algorithm} ({describe(exc)[:200]})",
            fix,
        )
        return
    yield Check("signature", True, f"signature verifies with kid {short(kid)}")


@token_check("expiry")
def check_expiry(ctx: TokenContext) -> Iterator[Check]:
    """``exp`` is a finite number and not past (``SIMPLE_JWT['LEEWAY']`` allowed)."""
    claims, now = ctx.claims, time.time()
    leeway = _leeway_seconds(ctx.settings.LEEWAY)
    exp = _finite(claims.get("exp"))
    if "exp" in claims and exp is None:
        yield Check(
            "expiry",
            False,
            f"exp is {short(claims.get('exp'), 40)}, not a finite number",
            "exp must be seconds since the epoch; this token did not come from a working IdP.",
        )
    elif exp is None:
        yield Check("expiry", False, "no numeric exp claim", "SimpleJWT requires an exp claim.")
    elif now > exp + leeway:
        late = now - exp
        yield Check(
            "expiry",
            False,
            f"expired {late:.0f} s ago (LEEWAY {leeway:g} s)",
            "Get a fresh token. If it was just issued, this server's clock is about "
            f"{late:.0f} s ahead of the identity provider's: fix NTP, or raise SIMPLE_JWT['LEEWAY'].",
        )
    else:
        yield Check("expiry", True, f"expires in {exp - now:.0f} s (LEEWAY {leeway:g} s)")


@token_check("clock")
def check_clock(ctx: TokenContext) -> Iterator[Check]:
    """``nbf`` and ``iat``, when present, are finite and not in the future (a clock behind the IdP's)."""
    claims, now = ctx.claims, time.time()
    leeway = _leeway_seconds(ctx.settings.LEEWAY)
    for claim in ("nbf", "iat"):
        if claim not in claims:
            continue
        value = _finite(claims.get(claim))
        if value is None:
            yield Check(
                "clock",
                False,
                f"{claim} is {short(claims.get(claim), 40)}, not a finite number",
                f"{claim} must be seconds since the epoch.",
            )
        elif value > now + leeway + (0 if claim == "nbf" else 60):
            yield Check(
                "clock",
                False,
                f"{claim} is {value - now:.0f} s in the future",
                "This server's clock is behind the identity provider's: fix NTP, or raise SIMPLE_JWT['LEEWAY'].",
            )


@token_check("issuer")
def check_issuer(ctx: TokenContext) -> Iterator[Check]:
    """``iss`` is (one of) ``SIMPLE_JWT['ISSUER']``, when set; with ``ISSUERS``, which trusted issuer it names."""
    from ..realms import issuer_finding

    iss, wanted = ctx.claims.get("iss"), ctx.settings.ISSUER
    realm = issuer_finding(iss, get_options(), wanted)
    if realm is not None:
        yield Check("issuer", *realm)
    elif not wanted:
        yield Check("issuer", None, f"not checked (SIMPLE_JWT['ISSUER'] is unset; token iss={short(iss)})")
    elif isinstance(iss, str) and iss in issuers(wanted):
        yield Check("issuer", True, f"iss matches ISSUER {wanted!r}")
    else:
        detail = f"token iss {short(iss)} != SIMPLE_JWT['ISSUER'] {wanted!r}"
        yield Check("issuer", False, detail, ctx.provider.issuer_fix())


@token_check("audience")
def check_audience(ctx: TokenContext) -> Iterator[Check]:
    """``aud`` names (one of) ``SIMPLE_JWT['AUDIENCE']``, when set."""
    aud, audience = ctx.claims.get("aud"), ctx.settings.AUDIENCE
    auds = aud if isinstance(aud, list) else [aud]
    wanted = audience if isinstance(audience, (list, tuple, set)) else [audience]
    if audience is None:
        yield Check("audience", None, f"not checked (SIMPLE_JWT['AUDIENCE'] is unset; token aud={short(aud)})")
    elif any(isinstance(a, str) and a in auds for a in wanted):
        yield Check("audience", True, f"aud {short(aud)} contains AUDIENCE {audience!r}")
    else:
        detail = f"token aud {short(aud)} does not contain SIMPLE_JWT['AUDIENCE'] {audience!r}"
        yield Check("audience", False, detail, ctx.provider.audience_fix(audience))


@token_check("authorized party")
def check_authorized_party(ctx: TokenContext) -> Iterator[Check]:
    """``AUTHORIZED_PARTIES``: whether the client the token was issued to is listed (fixer-enforced)."""
    from ..patcher import status as patch_status
    from ..patches.authorized_party import unauthorized_party

    options, claims = get_options(), ctx.claims
    parties, claim = options.authorized_parties, options.party_claim
    shown = short(claims.get(claim)) if claim in claims else "missing"
    if parties is None:
        unset = f"not checked (SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES'] is unset; {claim}={shown})"
        yield Check("authorized party", None, unset)
        return
    state = next((f.state for f in patch_status().fixers if f.id == "backend.decode.authorized-party"), "not applied")
    enforced = "" if state == "applied" else f" (NOT enforced: fixer backend.decode.authorized-party is {state})"
    if unauthorized_party(claims, parties, claim) is None:  # the fixer's own rule
        yield Check("authorized party", True, f"{claim} {shown} is in AUTHORIZED_PARTIES{enforced}")
        return
    listed = f"SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES'] {short(sorted(parties), 200)}"
    what = f"token {claim} {shown} is not in {listed}" if claim in claims else f"token has no {claim!r} ({listed})"
    yield Check("authorized party", False, what + enforced, ctx.provider.party_fix(claim))


@token_check("token type")
def check_token_type(ctx: TokenContext) -> Iterator[Check]:
    """``TOKEN_TYPE_CLAIM`` names a token type one of ``AUTH_TOKEN_CLASSES`` accepts."""
    s, claims = ctx.settings, ctx.claims
    claim = s.TOKEN_TYPE_CLAIM
    accepted = [getattr(c, "token_type", None) for c in s.AUTH_TOKEN_CLASSES]
    value = claims.get(claim) if isinstance(claim, str) else None
    if claim is None:
        yield Check("token type", None, "not checked (TOKEN_TYPE_CLAIM is None)")
    elif isinstance(value, str) and value in accepted:
        yield Check("token type", True, f"{claim}={value!r} accepted by AUTH_TOKEN_CLASSES")
    else:
        detail = f"{claim!r} claim is missing" if claim not in claims else f"{claim}={short(value)}"
        fix = token_type_fix(claims, short(value))
        yield Check("token type", False, f"{detail}; AUTH_TOKEN_CLASSES accept {accepted}", fix)


@token_check("user id claim")
def check_user_id_claim(ctx: TokenContext) -> Iterator[Check]:
    """``USER_ID_CLAIM`` is in the token."""
    claim = ctx.settings.USER_ID_CLAIM
    if claim in ctx.claims:
        yield Check("user id claim", True, f"{claim!r} present")
    else:
        detail = f"USER_ID_CLAIM {claim!r} is not in the token"
        yield Check("user id claim", False, detail, ctx.provider.user_claim_fix())


@token_check("jti")
def check_jti(ctx: TokenContext) -> Iterator[Check]:
    """``JTI_CLAIM`` is in the token, when set."""
    claim = ctx.settings.JTI_CLAIM
    if claim is None:
        yield Check("jti", None, "not checked (JTI_CLAIM is None)")
    elif claim in ctx.claims:
        yield Check("jti", True, f"{claim!r} present")
    else:
        yield Check(
            "jti",
            False,
            f"JTI_CLAIM {claim!r} is not in the token",
            "Set SIMPLE_JWT['JTI_CLAIM'] to the claim your IdP uses, or None.",
        )


@token_check("user lookup")
def check_user_lookup(ctx: TokenContext) -> Iterator[Check]:
    """Whether the judging class can look this token's user id up (an integer field and a UUID cannot)."""
    from django.contrib.auth import get_user_model

    from ..patches.user_lookup import USER_LOOKUP_FIXES, user_id_facts

    s, claims = ctx.settings, ctx.claims
    judge = ctx.classes[0] if ctx.classes else None
    claim = s.USER_ID_CLAIM
    if judge is None or not looks_users_up(judge) or not isinstance(claim, str) or claim not in claims:
        return
    model = get_user_model()
    name = str(s.USER_ID_FIELD)
    try:
        model_field: Any = model._meta.get_field(name)
    except Exception:  # noqa: BLE001
        yield Check(
            "user lookup",
            False,
            f"USER_ID_FIELD {name!r} is not a field of {model._meta.label}",
            "Set SIMPLE_JWT['USER_ID_FIELD'] to a field of the user model.",
        )
        return
    value = claims[claim]
    field = f"USER_ID_FIELD {name!r} ({type(model_field).__name__})"
    try:
        model_field.get_prep_value(model_field.to_python(value))
    except Exception as exc:  # noqa: BLE001 - what the ORM would raise inside get_user
        yield Check(
            "user lookup",
            False,
            f"{claim!r} is {user_id_facts(value)}, which {field} of {model._meta.label} cannot look up "
            f"({type(exc).__name__}); {dotted(judge)} looks users up in the database",
            USER_LOOKUP_FIXES[0].upper() + USER_LOOKUP_FIXES[1:] + ".",
        )
        return
    yield Check("user lookup", True, f"{claim!r} can be looked up in {field} by {dotted(judge)}")
