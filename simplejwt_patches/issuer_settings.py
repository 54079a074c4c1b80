"""``SIMPLE_JWT_PATCHES["ISSUERS"]``: the trusted issuers and their options, validated.

A mapping from an issuer (the exact ``iss`` string its tokens carry) to its options, each
optional: ``JWK_URL`` (default: the ``jwks_uri`` of its OpenID discovery document),
``DISCOVERY_URL`` (default: issuer + ``/.well-known/openid-configuration``), ``AUDIENCE`` and
``AUTHORIZED_PARTIES`` (default: the global ``SIMPLE_JWT["AUDIENCE"]`` and
``SIMPLE_JWT_PATCHES["AUTHORIZED_PARTIES"]``).

Fail closed: an entry with an unusable key or option is left out (its tokens are 401
``bad_issuer``) and reported; an unusable mapping as a whole trusts none of its issuers (only
``SIMPLE_JWT["ISSUER"]``, when set, stays trusted). URLs are shown only as
:func:`~simplejwt_patches.diagnostics.safe_url` shows them, and one with ``user:password@`` is
refused (the ``E031`` rule of ``SIMPLE_JWT["JWK_URL"]``). Pure: imports nothing of the package but
:mod:`.schema` and :mod:`.diagnostics`, so :mod:`.conf` declares the setting with
:func:`validate_issuers` and the runtime (:mod:`.realms`) reads :class:`IssuerOptions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .diagnostics import safe_url
from .schema import Invalid, Report, _shown

__all__ = [
    "INHERIT",
    "MAX_ISSUERS",
    "IssuerOptions",
    "discovery_url_for",
    "issuer_label",
    "issuer_problem",
    "shown_issuer",
    "url_problem",
    "validate_issuers",
]

#: More realms than any deployment has (Keycloak recommends well under a few hundred per server).
MAX_ISSUERS = 256
#: Longest issuer / URL accepted (an ``iss`` is a URL; browsers stop near 2,000 characters).
MAX_LENGTH = 2048
OPTION_KEYS = ("JWK_URL", "DISCOVERY_URL", "AUDIENCE", "AUTHORIZED_PARTIES")
WELL_KNOWN = "/.well-known/openid-configuration"
_NONE = "no issuer of it is trusted (their tokens are rejected)."
_UNSENDABLE = re.compile(r"[\x00-\x20\x7f-\x9f]")


class _Inherit:
    """Marker: the option is not set for this issuer, the global setting applies."""

    def __repr__(self) -> str:
        return "INHERIT"


INHERIT: Any = _Inherit()


@dataclass(frozen=True)
class IssuerOptions:
    """One trusted issuer and its options (``INHERIT`` where the global setting applies)."""

    issuer: str
    jwk_url: str | None  # None: the discovery document's jwks_uri
    discovery_url: str
    audience: Any = INHERIT  # str | tuple[str, ...] | INHERIT
    authorized_parties: Any = INHERIT  # frozenset[str] | None | INHERIT

    @property
    def keys_from(self) -> tuple[str, str]:
        """Where this issuer's keys come from, as ``status()`` and the doctor say it: ``("JWK_URL", url)``
        or ``("discovery", discovery URL)``, the URL as :func:`~simplejwt_patches.diagnostics.safe_url` shows it."""
        return ("JWK_URL", safe_url(self.jwk_url)) if self.jwk_url else ("discovery", safe_url(self.discovery_url))

    def shown(self) -> dict[str, Any]:
        """As ``status()`` and the doctor show it."""
        return {
            "JWK_URL": safe_url(self.jwk_url) if self.jwk_url else "(discovery)",
            "DISCOVERY_URL": safe_url(self.discovery_url),
            "AUDIENCE": "(global)" if self.audience is INHERIT else self.audience,
            "AUTHORIZED_PARTIES": "(global)"
            if self.authorized_parties is INHERIT
            else (None if self.authorized_parties is None else sorted(self.authorized_parties)),
        }


def discovery_url_for(issuer: str) -> str:
    """The OpenID discovery URL of ``issuer`` (OpenID Connect Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + WELL_KNOWN


def _has_userinfo(url: str) -> bool:
    """``user[:password]@`` before the host: the rule of ``validators.has_userinfo`` (E031)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def url_problem(url: object) -> str | None:
    """Why ``url`` cannot be fetched: not a string, credentials, not http(s), no host, unsendable.

    Every message shows the URL as :func:`~simplejwt_patches.diagnostics.safe_url` does (never a
    password), and credentials are refused first, whatever else is wrong with the URL.
    """
    if not isinstance(url, str) or not url:
        return f"must be an http(s) URL string, got {'an empty string' if url == '' else type(url).__name__}"
    if _has_userinfo(url):  # the E031 rule of SIMPLE_JWT['JWK_URL']: never sent as authentication
        return (
            f"carries credentials ('user:password@' before the host, {safe_url(url)}): urllib does not send them "
            "as authentication and they would reach logs and signals; the URL is not fetched. If the endpoint "
            "needs credentials, send them as a header: SIMPLE_JWT_PATCHES['JWKS_HEADERS'] = {'Authorization': "
            "'Basic <base64 of user:password>'} (masked in every output; simplejwt_patches.E031's rule)"
        )
    if len(url) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for an unusable port
    except ValueError:
        return f"is not a valid URL (bad host or port: {safe_url(url)})"
    if parts.scheme not in ("http", "https") or not host:
        return f"must be an http:// or https:// URL with a host, got {safe_url(url)}"
    bad = _UNSENDABLE.search(url) or next((c for c in url if not c.isascii()), None)
    if bad is not None:
        char = bad.group() if isinstance(bad, re.Match) else bad
        return f"contains U+{ord(char):04X}, which urllib cannot send (percent-encode it)"
    return None


def issuer_label(issuer: str) -> str:
    """An issuer as outputs show it: as written, but never what stands before an ``@`` (a password)."""
    return safe_url(issuer) if "@" in issuer else issuer


def shown_issuer(issuer: str, limit: int = 200) -> str:
    """``repr`` of :func:`issuer_label`, at most ``limit`` characters of it, for messages."""
    return repr(issuer_label(issuer)[:limit])


def issuer_problem(issuer: object) -> str | None:
    """Why ``issuer`` cannot be a trusted issuer (an exact ``iss`` string, printable, bounded, no password)."""
    if not isinstance(issuer, str):
        return f"issuer keys must be strings (the exact iss), got {type(issuer).__name__}"
    if _has_userinfo(issuer):
        return (
            f"issuer {shown_issuer(issuer)} carries credentials ('user:password@' before the host): no identity "
            "provider issues such an iss, and its discovery URL would send them nowhere but to logs"
        )
    if not issuer.strip():
        return "an issuer key is empty"
    if len(issuer) > MAX_LENGTH:
        return f"an issuer key is longer than {MAX_LENGTH} characters"
    if issuer != issuer.strip() or not issuer.isprintable():
        shown = shown_issuer(issuer, 80)
        return f"issuer {shown} has surrounding space or CR/LF/control characters (no token carries it)"
    return None


def _audience(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str) and value and value.isprintable() and len(value) <= MAX_LENGTH:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if items and len(items) <= 100 and all(isinstance(v, str) and v and v.isprintable() for v in items):
            return tuple(items)
    raise Invalid(f"AUDIENCE must be a non-empty string or list of strings, got {_shown(value)}")


def _entry(issuer: str, options: Any, report: Report, parties: Callable[[Any, Report], Any]) -> IssuerOptions | None:
    """The validated options of one issuer, or ``None`` (reported) when they cannot be used."""
    where = f"ISSUERS[{shown_issuer(issuer, 80)}]"
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        report(f"{where} must be a dict of options, got {type(options).__name__}; tokens from it are rejected.")
        return None
    unknown = [k for k in options if k not in OPTION_KEYS]
    if unknown:
        report(
            f"{where} has an unknown option {_shown(unknown[0])}; tokens from it are rejected.",
            f"Known options: {', '.join(OPTION_KEYS)}.",
        )
        return None
    urls: dict[str, str | None] = {}
    for key in ("JWK_URL", "DISCOVERY_URL"):
        raw = options.get(key)
        why = url_problem(raw) if raw is not None else None
        if why:
            report(f"{where}['{key}'] {why}; tokens from this issuer are rejected.")
            return None
        urls[key] = raw
    discovery = urls["DISCOVERY_URL"] or discovery_url_for(issuer)
    if urls["DISCOVERY_URL"] is None and urls["JWK_URL"] is None and url_problem(discovery):
        report(
            f"{where}: the issuer is not an http(s) URL, so its discovery document cannot be found "
            f"({url_problem(discovery)}); tokens from it are rejected.",
            "Set its JWK_URL (or DISCOVERY_URL).",
        )
        return None
    audience: Any = INHERIT
    if "AUDIENCE" in options:
        try:
            audience = _audience(options["AUDIENCE"])
        except Invalid as exc:
            report(f"{where}['AUDIENCE']: {exc.msg}; tokens from this issuer are rejected.")
            return None
    party: Any = INHERIT
    if "AUTHORIZED_PARTIES" in options:
        problems: list[tuple[str, str | None]] = []
        party = parties(options["AUTHORIZED_PARTIES"], lambda msg, hint=None: problems.append((msg, hint)))
        for msg, hint in problems:
            report(f"{where}['AUTHORIZED_PARTIES'] {msg}", hint)
    return IssuerOptions(issuer, urls["JWK_URL"], discovery, audience, party)


def validate_issuers(
    value: Any, report: Report, parties: Callable[[Any, Report], Any]
) -> dict[str, IssuerOptions] | None:
    """``None`` (not set), or the usable entries of ``ISSUERS``; ``parties`` validates AUTHORIZED_PARTIES."""
    if value is None:
        return None
    hint = (
        "Map each trusted issuer (the exact iss of its tokens) to its options, e.g. "
        "{'https://sso.example.com/realms/acme': {'AUDIENCE': 'acme-api'}}. Until then tokens from them are rejected."
    )
    if not isinstance(value, Mapping):
        report(f"must be a dict of issuer to options, got {type(value).__name__}; {_NONE}", hint)
        return {}
    try:
        items = list(value.items())
    except Exception as exc:  # noqa: BLE001 - a hostile mapping
        report(f"cannot be read ({type(exc).__name__}); {_NONE}", hint)
        return {}
    if not items or len(items) > MAX_ISSUERS:
        what = "is empty" if not items else f"lists more than {MAX_ISSUERS} issuers"
        report(f"{what}; {_NONE}", hint)
        return {}
    found: dict[str, IssuerOptions] = {}
    for issuer, options in items:
        why = issuer_problem(issuer)
        if why:
            report(f"{why}; that entry is left out.", hint)
            continue
        entry = _entry(issuer, options, report, parties)
        if entry is not None:
            found[issuer] = entry
    return found
