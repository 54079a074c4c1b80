"""Trusted issuers at runtime: the realm a token's unverified ``iss`` selects, and its backend.

With ``SIMPLE_JWT_PATCHES["ISSUERS"]`` set, every verified ``TokenBackend.decode`` is first a
*selection* (fixer ``backend.decode.issuer-selection``): the token's unverified ``iss`` must be
exactly one of the trusted issuers (``ISSUERS`` plus ``SIMPLE_JWT["ISSUER"]`` when set), else
:class:`~simplejwt_patches.failures.UntrustedIssuer` -- before any key is looked up, so no request
goes anywhere. The token is then decoded by that realm's own backend: a shallow copy of
SimpleJWT's backend whose ``issuer`` is that issuer (PyJWT requires the ``iss``), whose
``audience`` is the issuer's ``AUDIENCE`` (default: the global one) and whose ``jwks_client`` is a
``PyJWKClient`` of its own (its ``JWK_URL``, or the ``jwks_uri`` of its discovery document, see
:mod:`simplejwt_patches.discovery`). That client is managed like SimpleJWT's
(:mod:`simplejwt_patches.clients`), so each realm has its own key source: cache, refetch budget,
stale-if-error, rotation pick-up and shared-cache entries (namespaced by URL). The
``SIMPLE_JWT["ISSUER"]`` entry keeps SimpleJWT's own client (``JWK_URL``) or ``VERIFYING_KEY``.

Realm backends carry a :class:`RealmTag` (:func:`realm_of`), which the authorized-party fixer
reads for the issuer's ``AUTHORIZED_PARTIES``.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from .conf import Options
from .discovery import Discovery
from .failures import UntrustedIssuer
from .issuer_settings import INHERIT, IssuerOptions, shown_issuer
from .issuer_tags import tag_client

__all__ = [
    "REALM_ATTR",
    "Realm",
    "RealmTable",
    "RealmTag",
    "backend_for",
    "issuer_finding",
    "realm_of",
    "selected_issuer",
    "table_for",
    "trusted_issuers",
    "unverified_iss",
]

REALM_ATTR = "_simplejwt_patches_realm"
_UNREADABLE = object()


@dataclass(frozen=True)
class RealmTag:
    """Marks a realm's backend: its issuer and its ``AUTHORIZED_PARTIES`` (``INHERIT``: the global)."""

    issuer: str
    parties: Any


def realm_of(backend: Any) -> RealmTag | None:
    """The :class:`RealmTag` of a realm backend, ``None`` for SimpleJWT's own backend."""
    try:
        return vars(backend).get(REALM_ATTR)  # type: ignore[no-any-return]
    except TypeError:  # no __dict__: never a realm backend
        return None


def unverified_iss(token: Any) -> Any:
    """The ``iss`` claim of ``token``, unverified (anything the token carries; never raises)."""
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
        if not isinstance(text, str):
            return _UNREADABLE
        first = text.index(".")
        segment = text[first + 1 : text.index(".", first + 1)]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except Exception:  # noqa: BLE001 - ValueError, binascii.Error, RecursionError, UnicodeError: unreadable
        return _UNREADABLE
    return claims.get("iss") if isinstance(claims, dict) else _UNREADABLE


class Realm:
    """One trusted issuer of one SimpleJWT backend: its discovery document and its backend."""

    def __init__(self, issuer: str, entry: IssuerOptions | None) -> None:
        self.issuer = issuer
        self.entry = entry  # None: the SIMPLE_JWT['ISSUER'] entry
        self.discovery = Discovery(issuer, entry.discovery_url) if entry is not None and not entry.jwk_url else None
        self._backend: Any = None
        self._uri: str | None = None
        self._lock = threading.Lock()

    @property
    def jwk_url(self) -> str | None:
        """The key set URL in use (``None`` before discovery, or for the ``SIMPLE_JWT`` entry)."""
        return self.entry.jwk_url if self.entry is not None and self.entry.jwk_url else self._uri

    def client(self, base: Any) -> Any:
        """The ``PyJWKClient`` this realm verifies with: its own once built (``None`` before its first
        token), SimpleJWT's for the ``SIMPLE_JWT`` entry (``None`` with ``VERIFYING_KEY``)."""
        backend = self._backend
        if backend is None and self.entry is not None:
            return None
        return getattr(backend if backend is not None else base, "jwks_client", None)

    def backend(self, base: Any, options: Options) -> Any:
        """This realm's backend (raises a ``JWKSFailure`` when discovery has no ``jwks_uri``)."""
        if self.entry is None:
            uri = None
        else:
            uri = self.entry.jwk_url or (self.discovery.jwks_uri(options) if self.discovery else None)
        current = self._backend
        if current is not None and self._uri == uri:
            return current
        with self._lock:
            if self._backend is None or self._uri != uri:
                self._backend, self._uri = self._build(base, uri), uri
            return self._backend

    def _build(self, base: Any, uri: str | None) -> Any:
        backend = copy.copy(base)
        parties = INHERIT
        if self.entry is not None and uri is not None:
            from jwt import PyJWKClient

            backend.issuer = self.issuer
            if self.entry.audience is not INHERIT:
                backend.audience = self.entry.audience
            backend.jwks_client = PyJWKClient(uri)
            parties = self.entry.authorized_parties
        client = getattr(backend, "jwks_client", None)
        if client is not None:
            tag_client(client, self.issuer)
        vars(backend)[REALM_ATTR] = RealmTag(self.issuer, parties)
        return backend


class RealmTable:
    """The realms of one SimpleJWT backend under one set of options."""

    def __init__(self, base: Any, options: Options, previous: RealmTable | None = None) -> None:
        self.options = options
        kept = previous.realms if previous is not None else {}
        self.realms: dict[str, Realm] = {}
        for issuer, entry in (options.issuers or {}).items():
            same = kept.get(issuer)  # an unchanged entry keeps its key source and discovery document
            self.realms[issuer] = same if same is not None and same.entry == entry else Realm(issuer, entry)
        simple_jwt = getattr(base, "issuer", None)
        keyed = getattr(base, "jwks_client", None) or getattr(base, "verifying_key", None)
        if keyed and isinstance(simple_jwt, str) and simple_jwt and simple_jwt not in self.realms:
            same = kept.get(simple_jwt)
            self.realms[simple_jwt] = same if same is not None and same.entry is None else Realm(simple_jwt, None)


_tables: weakref.WeakKeyDictionary[Any, RealmTable] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def table_for(base: Any, options: Options) -> RealmTable:
    """The realm table of ``base`` (rebuilt when the options change)."""
    table = _tables.get(base)
    if table is None or table.options is not options:
        with _tables_lock:
            table = _tables.get(base)
            if table is None or table.options is not options:
                table = _tables[base] = RealmTable(base, options, table)
    return table


def backend_for(base: Any, token: Any, options: Options) -> Any:
    """The realm backend for ``token`` (:class:`UntrustedIssuer` first, no request made)."""
    iss = unverified_iss(token)
    realm = table_for(base, options).realms.get(iss) if isinstance(iss, str) else None
    if realm is None:
        raise UntrustedIssuer(None if iss is _UNREADABLE else iss)
    return realm.backend(base, options)


def trusted_issuers(options: Options, simple_jwt_issuer: Any) -> list[str]:
    """Every trusted issuer: ``ISSUERS`` and ``SIMPLE_JWT["ISSUER"]`` (``[]`` when ``ISSUERS`` is unset)."""
    if options.issuers is None:
        return []
    found = list(options.issuers)
    if isinstance(simple_jwt_issuer, str) and simple_jwt_issuer and simple_jwt_issuer not in found:
        found.append(simple_jwt_issuer)
    return found


def selected_issuer(token: Any, options: Options, simple_jwt_issuer: Any) -> str | None:
    """The trusted issuer ``token``'s unverified ``iss`` names (``None``: untrusted, or unreadable)."""
    iss = unverified_iss(token)
    if not isinstance(iss, str):
        return None
    if options.issuers is not None and iss in options.issuers:
        return iss
    return iss if iss == simple_jwt_issuer else None


def issuer_finding(iss: Any, options: Options, simple_jwt_issuer: Any) -> tuple[bool, str, str | None] | None:
    """The doctor's issuer line with ``ISSUERS`` set: ``(ok, detail, fix)``; ``None`` when it is unset."""
    if options.issuers is None:
        return None
    shown = repr(iss[:200]) if isinstance(iss, str) else f"a {type(iss).__name__}" if iss is not None else "missing"
    entry = options.issuers.get(iss) if isinstance(iss, str) else None
    if entry is not None:
        source, url = entry.keys_from
        keys = f"keys from JWK_URL {url}" if source == "JWK_URL" else f"keys by discovery at {url}"
        return True, f"iss {shown} matches the trusted issuer ISSUERS[{shown}] ({keys})", None
    if isinstance(iss, str) and iss == simple_jwt_issuer:
        return True, f"iss {shown} matches SIMPLE_JWT['ISSUER'] (one more trusted issuer beside ISSUERS)", None
    listed = ", ".join(shown_issuer(i, 80) for i in list(options.issuers)[:5]) or "nothing"
    return (
        False,
        f"token iss {shown} is not in SIMPLE_JWT_PATCHES['ISSUERS'] (it lists {listed}) nor SIMPLE_JWT['ISSUER']: "
        "rejected before any key is fetched",
        "Only if this API trusts that issuer: add it, SIMPLE_JWT_PATCHES['ISSUERS'][<its exact iss>] = {} (keys by "
        "its discovery document; 'DISCOVERY_URL' or 'JWK_URL' for an internal host name). Otherwise the token is "
        "rightly refused.",
    )
