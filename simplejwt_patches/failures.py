"""Why a token was rejected: one failure type for the key set, one vocabulary for clients.

* :class:`JWKSFailure` is created where a key-set failure happens (the transport, the key-set
  parser, the key source) and sits in the exception chain between PyJWT's error and the
  urllib/ssl/json error that caused it. It carries the failure's :class:`Category` (kind, token
  reason code, ``check --deploy`` id, client-safe text, next step) and the HTTP status if any.
  Logs, signals, reason codes, the doctor, the deploy checks and ``EXPOSE_ERROR_DETAIL`` all read
  it; nothing re-derives a category from message text.
* :func:`classify` turns a rejected token's exception chain into ``(reason code, client text)``.
  Client-visible text only ever comes from :data:`CATEGORIES` and :data:`TOKEN_REASONS`, never
  from an exception's message (which can carry host names, TLS details or translated text).
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
from dataclasses import dataclass
from typing import Any

from .diagnostics import causes, describe

__all__ = [
    "CATEGORIES",
    "REASON_CODES",
    "TOKEN_REASONS",
    "Category",
    "JWKSFailure",
    "JWKSResponseTooLarge",
    "UnauthorizedParty",
    "UntrustedIssuer",
    "as_dict",
    "classify",
    "failure_from",
    "find_failure",
]


@dataclass(frozen=True)
class Category:
    """One kind of key-set failure and everything derived from it."""

    kind: str
    reason_code: str  # token_rejected reason code
    check_id: str | None  # ``check --deploy`` id, None when a live probe cannot see it
    text: str  # safe for API clients; ``{status}`` is the HTTP status
    next_step: str  # what the doctor tells the operator to do


_UNAVAILABLE = "jwks_unavailable"
_INVALID = "jwks_invalid"
_REACH = (
    "Check from this host that the identity provider answers: `curl -v <JWK_URL>`. If this host needs a proxy, "
    "set SIMPLE_JWT_PATCHES['JWKS_PROXY']"
)

#: Every kind of key-set failure, declared once.
CATEGORIES: dict[str, Category] = {
    c.kind: c
    for c in (
        Category(
            "refused", _UNAVAILABLE, "E101", "the identity provider's key set endpoint refused the connection",
            f"Nothing listens at the JWK_URL's host and port: check the host name and port in SIMPLE_JWT['JWK_URL'] "
            f"and that the identity provider is running. {_REACH}.",
        ),
        Category(
            "dns", _UNAVAILABLE, "E101", "the identity provider's host name could not be resolved",
            "The JWK_URL's host name does not resolve from this host: check its spelling in SIMPLE_JWT['JWK_URL'] "
            "and this host's DNS (`getent hosts <host>`); inside containers, use a name the container can resolve.",
        ),
        Category(
            "dropped", _UNAVAILABLE, "E101",
            "the identity provider's key set endpoint closed the connection without answering",
            "The connection was accepted and then dropped: a firewall, WAF or load balancer in front of the identity "
            f"provider may be cutting it, or the URL speaks https on an http port (or the reverse). {_REACH}.",
        ),
        Category(
            "timeout", _UNAVAILABLE, "E101", "the identity provider's key set endpoint did not answer in time",
            "No answer within SIMPLE_JWT_PATCHES['JWKS_TIMEOUT']: a firewall may be dropping packets, or the "
            f"identity provider is overloaded; raise JWKS_TIMEOUT only if it is merely slow. {_REACH}.",
        ),
        Category(
            "tls", _UNAVAILABLE, "E101", "the TLS connection to the identity provider's key set endpoint failed",
            "Trust the identity provider's CA with SIMPLE_JWT_PATCHES['JWKS_CA_BUNDLE'] (a PEM file) or "
            "JWKS_SSL_CONTEXT, and check that the certificate names the JWK_URL's host.",
        ),
        Category(
            "status", _UNAVAILABLE, "E102", "the identity provider's key set endpoint answered HTTP {status}",
            "A 403 usually comes from a WAF or CDN in front of the identity provider: set "
            "SIMPLE_JWT_PATCHES['JWKS_HEADERS'] (User-Agent, API key); a 404 means a wrong realm or path in JWK_URL.",
        ),
        Category(
            "redirect", _UNAVAILABLE, "E103", "the identity provider's key set endpoint answered with a redirect",
            "Point SIMPLE_JWT['JWK_URL'] at the final URL (redirects are refused unless "
            "SIMPLE_JWT_PATCHES['JWKS_FOLLOW_REDIRECTS'] is True, and never from https to http).",
        ),
        Category(
            "too_large", _INVALID, "E104", "the identity provider's key set is larger than allowed",
            "Check that JWK_URL returns a key set; raise SIMPLE_JWT_PATCHES['JWKS_MAX_BYTES'] if it really is that "
            "large.",
        ),
        Category(
            "malformed", _INVALID, "E104", "the identity provider's key set endpoint did not return a JSON key set",
            "JWK_URL must return a JSON object {\"keys\": [...]}: check that it is the JWKS (certs) URL and not a "
            "login page or a proxy's error page.",
        ),
        Category(
            "no_usable_key", _INVALID, "E104", "the identity provider's key set has no usable signing key",
            "The key set has no key PyJWT can load for signing (wrong kty, broken n/e, missing kid, or only "
            "encryption keys): check the realm's keys, and that 'cryptography' is installed.",
        ),
        Category(
            "config", _UNAVAILABLE, None, "the key set request was not sent: the JWKS settings refuse it",
            "Run `python manage.py check`: its error names the setting to fix (simplejwt_patches.E031: credentials "
            "in SIMPLE_JWT['JWK_URL']; E030: a JWK_URL urllib cannot send; E011: an https:// JWKS_PROXY). An "
            "https:// proxy in the environment (HTTPS_PROXY) is refused too: set SIMPLE_JWT_PATCHES['JWKS_PROXY'].",
        ),
        Category(
            "peer_failed", _UNAVAILABLE, None, "the identity provider's key set is temporarily unavailable",
            "Another process sharing JWKS_SHARED_CACHE failed to refresh the key set: see its WARNING log line.",
        ),
        Category(
            "unknown_kid", "unknown_kid", None, "no key in the identity provider's key set matches the token's kid",
            "The identity provider rotated its keys and removed this one (get a fresh token), or the token comes "
            "from another realm or provider: point JWK_URL at the one that issued it.",
        ),
        Category(
            "discovery_issuer", _INVALID, "E107",
            "the identity provider's discovery document names another issuer",
            "The discovery document must name exactly the issuer SIMPLE_JWT_PATCHES['ISSUERS'] lists (OpenID "
            "Connect Discovery 1.0, section 4.3): use the iss of the realm's tokens as the key, and reach the "
            "document with that issuer's DISCOVERY_URL (an internal host name is fine).",
        ),
        Category(
            "jwks_uri", _INVALID, "E108",
            "the identity provider's discovery document names an unusable or insecure jwks_uri",
            "The discovery document's jwks_uri must be an http(s) URL without credentials, and https when the "
            "document came over https (no downgrade to plain http: the keys could be replaced in transit). Fix the "
            "identity provider's host name settings (Keycloak: KC_HOSTNAME, --hostname-backchannel-dynamic, "
            "KC_PROXY_HEADERS behind a TLS proxy), or set that issuer's JWK_URL in SIMPLE_JWT_PATCHES['ISSUERS'].",
        ),
    )
}  # fmt: skip


class JWKSResponseTooLarge(ValueError):
    """The JWKS response exceeded ``JWKS_MAX_BYTES`` (a key set is a few KiB)."""


class JWKSFailure(Exception):
    """A key-set failure; ``__cause__`` is the error it happened with (if any)."""

    def __init__(self, kind: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.category = CATEGORIES[kind]
        self.status = status
        self.detail = detail  # for logs: may name hosts and TLS details, never a secret

    @property
    def kind(self) -> str:
        """The category's kind (``refused``, ``status``, ``no_usable_key`` ...)."""
        return self.category.kind

    @property
    def reason(self) -> str:
        """Client-safe text from the fixed vocabulary."""
        return self.category.text.format(status=self.status)


class UnauthorizedParty(Exception):
    """The token's authorized party (``azp``) is missing or not in ``AUTHORIZED_PARTIES``.

    Raised by the ``backend.decode.authorized-party`` fixer *from* which SimpleJWT's own
    ``TokenBackendError`` is raised; its message names the claim and the value's type, and the value
    itself only when it is a short string (a client id, never a secret).
    """

    reason_code = "bad_authorized_party"

    def __init__(self, claim: str, value: Any) -> None:
        if isinstance(value, str):
            shown = repr(value[:100])
        else:
            shown = "missing" if value is None else f"a {type(value).__name__}, not a string"
        super().__init__(f"token {claim} {shown} is not in SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES']")
        self.claim = claim


class UntrustedIssuer(Exception):
    """The token's unverified ``iss`` is not one of the trusted issuers (``ISSUERS``).

    Raised by the ``backend.decode.issuer-selection`` fixer before any key is looked up (no request
    to anyone); its message shows the value's type, and the value itself only shortened.
    """

    reason_code = "bad_issuer"

    def __init__(self, value: Any) -> None:
        if isinstance(value, str):
            shown = repr(value[:100] + ("..." if len(value) > 100 else ""))
        else:
            shown = "missing" if value is None else f"a {type(value).__name__}, not a string"
        super().__init__(f"token iss {shown} is not in SIMPLE_JWT_PATCHES['ISSUERS'] (nor SIMPLE_JWT['ISSUER'])")
        self.value = value if isinstance(value, str) else None


def failure_from(exc: BaseException, status: int | None = None) -> JWKSFailure:
    """The :class:`JWKSFailure` for an error raised while fetching or parsing a key set."""
    detail = describe(exc)
    chain = list(causes(exc))
    if isinstance(exc, urllib.error.HTTPError):
        kind = "redirect" if 300 <= exc.code < 400 else "status"
        return JWKSFailure(kind, detail, status=exc.code)
    if isinstance(exc, JWKSResponseTooLarge):
        return JWKSFailure("too_large", detail, status=status)
    if isinstance(exc, (ValueError, RecursionError)) and not isinstance(exc, OSError):
        return JWKSFailure("malformed", detail, status=status)
    reasons = [getattr(e, "reason", None) for e in chain if isinstance(e, urllib.error.URLError)]
    for err in [*chain, *(r for r in reasons if isinstance(r, BaseException))]:
        if isinstance(err, ssl.SSLError) or isinstance(err, ssl.CertificateError):
            return JWKSFailure("tls", detail, status=status)
        if isinstance(err, socket.gaierror):
            return JWKSFailure("dns", detail, status=status)
        if isinstance(err, ConnectionRefusedError):
            return JWKSFailure("refused", detail, status=status)
        if isinstance(err, (TimeoutError, socket.timeout)):
            return JWKSFailure("timeout", detail, status=status)
    if any(isinstance(r, str) and "timed out" in r for r in reasons):  # urllib's deadline reason string
        return JWKSFailure("timeout", detail, status=status)
    return JWKSFailure("dropped", detail, status=status)


def find_failure(exc: BaseException | None) -> JWKSFailure | None:
    """The :class:`JWKSFailure` in ``exc``'s chain, if any."""
    if exc is None:
        return None
    for err in causes(exc):
        if isinstance(err, JWKSFailure):
            return err
    return None


#: Client-safe text of every token-level reason code.
TOKEN_REASONS: dict[str, str] = {
    "expired": "token has expired",
    "not_yet_valid": "token is not yet valid (nbf/iat in the future)",
    "bad_signature": "signature does not match the identity provider's key",
    "bad_algorithm": "token algorithm is not allowed",
    "bad_issuer": "token issuer (iss) does not match ISSUER",
    "bad_audience": "token audience (aud) does not match AUDIENCE",
    "bad_authorized_party": "token was issued to a client (azp) not in AUTHORIZED_PARTIES",
    "malformed": "token is not a well-formed JWT",
    "bad_claim": "a token claim has an unusable value",
    "wrong_type": "token type claim is missing or not accepted by AUTH_TOKEN_CLASSES",
    "no_jti": "token has no id (JTI_CLAIM)",
    "blacklisted": "token is blacklisted",
    "user_lookup": "the token's user id cannot be looked up in USER_ID_FIELD",
    "invalid": "token is invalid",
}

#: Every ``token_rejected`` reason code.
REASON_CODES: tuple[str, ...] = tuple(dict.fromkeys([*(c.reason_code for c in CATEGORIES.values()), *TOKEN_REASONS]))

# SimpleJWT raises TokenError with translated messages; the method that raised it is stable.
_RAISED_IN = {
    "verify_token_type": "wrong_type",
    "check_exp": "expired",
    "check_blacklist": "blacklisted",
    "verify": "no_jti",
}


def _raised_in(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    name = None
    for _ in range(256):  # bounded walk to the innermost frame
        if tb is None:
            break
        name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name


def classify(exc: BaseException) -> tuple[str, str]:
    """``(reason_code, client text)`` for a rejected token's failure chain.

    The text comes from the fixed vocabulary only: safe to show to API clients.
    """
    import jwt

    failure = find_failure(exc)
    if failure is not None:
        return failure.category.reason_code, failure.reason
    chain = list(causes(exc))
    table: list[tuple[type[BaseException], str]] = [
        (UnauthorizedParty, "bad_authorized_party"),
        (UntrustedIssuer, "bad_issuer"),
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not_yet_valid"),
        (jwt.InvalidSignatureError, "bad_signature"),
        (jwt.InvalidAlgorithmError, "bad_algorithm"),
        (jwt.InvalidIssuerError, "bad_issuer"),
        (jwt.InvalidAudienceError, "bad_audience"),
        (jwt.DecodeError, "malformed"),
        (RecursionError, "malformed"),
        (OverflowError, "bad_claim"),
        (TypeError, "bad_claim"),
        (jwt.PyJWKError, "no_usable_key"),
    ]
    for kind, code in table:
        if any(isinstance(e, kind) for e in chain):
            if code == "no_usable_key":
                return CATEGORIES[code].reason_code, CATEGORIES[code].text
            return code, TOKEN_REASONS[code]
    try:
        from rest_framework_simplejwt.exceptions import TokenError
    except ImportError:  # pragma: no cover - SimpleJWT is installed wherever this runs
        TokenError = ()  # type: ignore[assignment,misc]
    for err in chain:
        if isinstance(err, TokenError):
            raised = _RAISED_IN.get(_raised_in(err) or "")
            if raised:
                return raised, TOKEN_REASONS[raised]
    return "invalid", TOKEN_REASONS["invalid"]


def as_dict(failure: JWKSFailure) -> dict[str, Any]:
    """Plain data for ``--json`` output and signals."""
    return {"kind": failure.kind, "status": failure.status, "reason": failure.reason, "detail": failure.detail}
