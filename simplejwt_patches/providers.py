"""Which identity provider issued the tokens, and the advice that fits it.

One place recognises the provider - from the OpenID discovery document when there is one, else
from the shape of ``JWK_URL`` / ``ISSUER`` and, in the doctor, from the token's own claims - and
supplies the wording the doctor, the system checks and the log hints use for their fixes. An
unrecognised provider gets generic OpenID Connect wording, never another provider's.

Rules every text here follows: no fix proposes a value that would accept tokens issued for another
audience or another client (never the token's foreign ``aud`` as ``AUDIENCE``, never its foreign
``azp`` as an authorized party); the Keycloak steps appear only for Keycloak.

Pure data and string functions: importing this module imports neither Django nor SimpleJWT, and
nothing here does I/O. The functions take the issuer and key-set URL as arguments, so several
issuers (one :class:`Provider` each) can be judged side by side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["GENERIC", "PROVIDERS", "Provider", "discovery_urls", "from_claims", "recognise", "token_type_fix"]

_GENERIC_USER_CLAIM = (
    "Set SIMPLE_JWT['USER_ID_CLAIM'] to a claim the token carries that identifies the user (e.g. 'sub')."
)


@dataclass(frozen=True)
class Provider:
    """An identity provider family and what is known about its tokens."""

    key: str  # keycloak, auth0, entra, okta, google, dot, oidc
    name: str
    #: what ``sub`` is: ``False`` when it can never be an integer user id, ``True`` when it is one
    #: (django-oauth-toolkit: ``str(user.pk)``), ``None`` when unknown
    sub_is_integer: bool | None
    sub_shape: str  # what its sub looks like, for messages
    party_claim: str  # the claim naming the client a token was issued to
    audience_setup: str  # how to make the provider put this API in ``aud``
    id_token_rule: str  # which claim tells its ID tokens from its access tokens
    issuer_hint: str  # why ``iss`` differs from ``ISSUER`` and what to do
    other_issuer: str  # "another realm" / "another tenant" ...
    user_claim_hint: str = _GENERIC_USER_CLAIM  # what to do when ``USER_ID_CLAIM`` is not in its tokens
    key_store: str = "the identity provider's signing keys"  # where a signing key for an algorithm is added

    @property
    def known(self) -> bool:
        """Whether this is a recognised provider (not the generic fallback)."""
        return self.key != "oidc"

    def audience_fix(self, audience: Any) -> str:
        """The fix for a token whose ``aud`` does not name ``SIMPLE_JWT['AUDIENCE']``.

        Never quotes the token's audience as a value to configure: a token issued for another
        audience must stay rejected.
        """
        return (
            "This token was issued for another audience and rejecting it is right: never set "
            "SIMPLE_JWT['AUDIENCE'] to the token's aud (that would accept tokens meant for other services or "
            f"clients). To call this API, get a token whose aud names it ({_shown(audience)}): {self.audience_setup}."
        )

    def party_fix(self, claim: str) -> str:
        """The fix for a token whose authorized party is missing or not listed."""
        return (
            f"The token was issued to a client this API does not list (its {claim!r} claim), so rejecting it is "
            f"right. If that client should call this API, add its client id to "
            f"SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES']; a token without {claim!r} is no access token of a listed "
            f"client ({self.id_token_rule})."
        )

    def issuer_fix(self) -> str:
        """The fix for a token whose ``iss`` differs from ``SIMPLE_JWT['ISSUER']``."""
        return self.issuer_hint

    def user_claim_fix(self) -> str:
        """The fix for a token without ``SIMPLE_JWT['USER_ID_CLAIM']``."""
        return self.user_claim_hint

    def algorithm_fix(self, algorithm: Any) -> str:
        """The fix for a key set without a signing key for ``SIMPLE_JWT['ALGORITHM']``."""
        return (
            f"Set SIMPLE_JWT['ALGORITHM'] to the algorithm of the identity provider's signing key, or add a "
            f"{algorithm} signing key to {self.key_store}."
        )

    def sub_lookup_problem(self, looked_up: str) -> str:
        """Why ``looked_up`` (``USER_ID_CLAIM 'sub'`` in an integer field) finds no user for its tokens."""
        if self.sub_is_integer is None:
            return (
                f"{looked_up}: unless the identity provider's sub is the user's integer id (as django-oauth-toolkit's "
                "str(user.pk) is), no token can find its user (UUIDs, '<connection>|<id>' strings and pairwise ids "
                "are no integers)"
            )
        return f"{looked_up}: {self.name}'s sub is {self.sub_shape}, no integer id, so no token can find its user"


_GENERIC_AUDIENCE = (
    "ask the identity provider for a token whose aud names this API (its API / resource server settings, or "
    "the OAuth 2.0 'resource' or 'audience' parameter of the token request)"
)

GENERIC = Provider(
    key="oidc",
    name="an OpenID provider",
    sub_is_integer=None,
    sub_shape="an identifier chosen by the provider",
    party_claim="azp",
    audience_setup=_GENERIC_AUDIENCE,
    id_token_rule="ID tokens name the client in aud; access tokens name the client in 'azp' (RFC 9068 access "
    "tokens in 'client_id': set SIMPLE_JWT_PATCHES['AUTHORIZED_PARTY_CLAIM'] = 'client_id')",
    issuer_hint="Set SIMPLE_JWT['ISSUER'] to the 'issuer' of the provider's discovery document "
    "(<issuer>/.well-known/openid-configuration) when this token comes from it; a token from another issuer "
    "must stay rejected.",
    other_issuer="another issuer",
)

PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        Provider(
            "keycloak", "Keycloak", False, "a UUID", "azp",
            "Keycloak puts 'account' (and every client the user holds a role on) in aud, never your API by default: "
            "create a client scope (Client scopes > Create), add an Audience mapper to it (Mappers > By "
            "configuration > Audience, 'Included Client Audience' = this API's client), add the scope as Default "
            "to the clients that call this API, and set SIMPLE_JWT['AUDIENCE'] to this API's client id",
            "Keycloak ID tokens have typ 'ID' and aud = the client; access tokens typ 'Bearer'",
            "Keycloak writes the URL it was reached by (its frontend URL / KC_HOSTNAME) into iss: configure "
            "Keycloak's hostname (KC_HOSTNAME) so the public URL is used, and set SIMPLE_JWT['ISSUER'] to "
            "https://<host>/realms/<realm> as the discovery document of the realm names it.",
            "another realm",
            user_claim_hint="Keycloak >= 25 'lightweight' access tokens can omit sub: add the 'basic' client scope "
            "(sub mapper) to the client, or set SIMPLE_JWT['USER_ID_CLAIM'] to a claim the token carries (e.g. "
            "'preferred_username').",
            key_store="the realm",
        ),
        Provider(
            "auth0", "Auth0", False, "'<connection>|<id>' (e.g. auth0|64f0...)", "azp",
            "request the token with audience=<this API's identifier> (Auth0 Dashboard > Applications > APIs) and "
            "set SIMPLE_JWT['AUDIENCE'] to that identifier",
            "Auth0 ID tokens have aud = the client id and no azp",
            "Auth0's iss is https://<tenant-domain>/ with a trailing slash (or your custom domain): set "
            "SIMPLE_JWT['ISSUER'] to the 'issuer' of https://<tenant-domain>/.well-known/openid-configuration.",
            "another tenant",
        ),
        Provider(
            "entra", "Microsoft Entra ID", False, "a pairwise id (oid: a GUID)", "azp",
            "expose this API (App registrations > Expose an API), request a scope of it (api://<app-id>/<scope>), "
            "set accessTokenAcceptedVersion: 2 in the manifest, and set SIMPLE_JWT['AUDIENCE'] to the API's "
            "application (client) id",
            "Entra ID v2 ID tokens carry the same aud as the app's own access tokens but no azp (and no scp/roles)",
            "Entra ID v2 tokens' iss is https://login.microsoftonline.com/<tenant-id>/v2.0 (v1 tokens: "
            "https://sts.windows.net/<tenant-id>/): set accessTokenAcceptedVersion: 2 and SIMPLE_JWT['ISSUER'] to "
            "the v2 issuer.",
            "another tenant",
        ),
        Provider(
            "okta", "Okta", False, "the user id (00u...) or login", "cid",
            "use the custom authorization server whose Audience is this API (Security > API > Authorization "
            "Servers) and set SIMPLE_JWT['AUDIENCE'] to that audience",
            "Okta ID tokens have aud = the client id and no cid",
            "Okta's iss is https://<org>.okta.com/oauth2/<server-id> (the org server: https://<org>.okta.com): "
            "set SIMPLE_JWT['ISSUER'] to the 'issuer' of the authorization server's discovery document.",
            "another authorization server",
        ),
        Provider(
            "google", "Google", False, "a 21-digit number (larger than any integer column)", "azp",
            "Google access tokens are opaque; its ID tokens have aud = your OAuth client id: set "
            "SIMPLE_JWT['AUDIENCE'] to your own client id",
            "Google ID tokens are the only JWTs Google issues: aud = your OAuth client id, azp = the client that "
            "requested it",
            "Google's iss is https://accounts.google.com (older tokens: accounts.google.com): set "
            "SIMPLE_JWT['ISSUER'] to both.",
            "another provider",
        ),
        Provider(
            "dot", "django-oauth-toolkit", True, "str(user.pk) of the provider's user model", "azp",
            "django-oauth-toolkit's JWTs are ID tokens (access tokens are opaque by default), whose aud is the "
            "application's client id: set SIMPLE_JWT['AUDIENCE'] to your own application's client id",
            "django-oauth-toolkit issues ID tokens only as JWTs: aud = the application's client id",
            "django-oauth-toolkit's iss is OIDC_ISS_ENDPOINT, or the URL its discovery view was reached by: set "
            "OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] on the provider and SIMPLE_JWT['ISSUER'] to the same value.",
            "another provider",
        ),
    )
}  # fmt: skip

_HOSTS: tuple[tuple[str, str], ...] = (
    (r"(^|\.)auth0\.com$", "auth0"),
    (r"^(login\.microsoftonline\.(com|us)|login\.partner\.microsoftonline\.cn|sts\.windows\.net)$", "entra"),
    (r"(^|\.)ciamlogin\.com$", "entra"),
    (r"(^|\.)(okta|oktapreview|okta-emea)\.com$", "okta"),
    (r"^(accounts\.google\.com|www\.googleapis\.com|oauth2\.googleapis\.com)$", "google"),
)
_PATHS: tuple[tuple[str, str], ...] = (
    (r"/realms/[^/]+(/protocol/openid-connect/certs)?/?$", "keycloak"),
    (r"/o(/\.well-known/jwks\.json|/jwks/?)$", "dot"),
    (r"/oauth2/([^/]+/)?v1/keys$", "okta"),
    (r"/discovery/(v2\.0/)?keys$", "entra"),
)


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, list, tuple)) else f"<{type(value).__name__}>"
    return text if len(text) <= 120 else text[:117] + "..."


def _by_url(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    for pattern, key in _HOSTS:
        if re.search(pattern, host):
            return key
    for pattern, key in _PATHS:
        if re.search(pattern, parts.path):
            return key
    return None


def _by_discovery(doc: Mapping[str, Any]) -> str | None:
    endpoint = doc.get("token_endpoint")
    token = endpoint if isinstance(endpoint, str) else ""
    if token.endswith("/protocol/openid-connect/token"):
        return "keycloak"
    if "tenant_region_scope" in doc or "cloud_instance_name" in doc:
        return "entra"
    if token.endswith("/o/token/") or (token.endswith("/token/") and "/o/" in token):
        return "dot"
    return _by_url(doc.get("issuer")) or _by_url(doc.get("jwks_uri"))


def token_type_fix(claims: Mapping[str, Any], shown_type: str) -> str:
    """The fix for a token type no ``AUTH_TOKEN_CLASSES`` accepts (``shown_type``: the token's, as shown).

    Keycloak's access tokens say ``typ: "Bearer"`` where SimpleJWT expects ``token_type: "access"``.
    """
    if claims.get("typ") == "Bearer":
        return (
            "Keycloak sends typ: 'Bearer' where SimpleJWT expects token_type: 'access': set "
            "SIMPLE_JWT['TOKEN_TYPE_CLAIM'] = 'typ' and SIMPLE_JWT['AUTH_TOKEN_CLASSES'] = "
            "('simplejwt_patches.tokens.BearerAccessToken',)."
        )
    return f"Add a token class with token_type = {shown_type} to AUTH_TOKEN_CLASSES."


#: Where providers publish their key set, relative to the base of their discovery document.
_KEY_SET_PATHS = ("/protocol/openid-connect/certs", "/.well-known/jwks.json")  # Keycloak; Auth0, dot and others
_ENTRA_KEYS = "/discovery/v2.0/keys"


def discovery_urls(jwk_url: str, issuers: Sequence[str]) -> list[str]:
    """The OpenID discovery documents that may describe ``jwk_url`` (next to it, then each issuer's), in order.

    Pure: nothing is fetched here. Raises ``ValueError`` for a URL ``urlsplit`` refuses.
    """
    parts = urlsplit(jwk_url)
    path = parts.path
    out = []
    for suffix in _KEY_SET_PATHS:
        if path.endswith(suffix):
            out.append(
                urlunsplit(
                    (parts.scheme, parts.netloc, path[: -len(suffix)] + "/.well-known/openid-configuration", "", "")
                )
            )
    if path.endswith(_ENTRA_KEYS):
        base = path[: -len(_ENTRA_KEYS)]
        out.append(urlunsplit((parts.scheme, parts.netloc, base + "/v2.0/.well-known/openid-configuration", "", "")))
    for one in issuers:
        out.append(one.rstrip("/") + "/.well-known/openid-configuration")
    return list(dict.fromkeys(out))


def from_claims(claims: Mapping[str, Any]) -> str | None:
    """The provider whose tokens look like ``claims`` (unverified: only used to word advice)."""
    if "realm_access" in claims or "resource_access" in claims or claims.get("typ") in ("Bearer", "ID", "Refresh"):
        return "keycloak"
    if "tid" in claims and "oid" in claims:
        return "entra"
    if "cid" in claims and "uid" in claims:
        return "okta"
    return _by_url(claims.get("iss"))


def recognise(
    jwk_url: Any = None,
    issuer: Any = None,
    discovery: Mapping[str, Any] | None = None,
    claims: Mapping[str, Any] | None = None,
) -> Provider:
    """The provider behind this configuration: discovery document first, then URL shapes, then claims."""
    issuers = issuer if isinstance(issuer, (list, tuple, set, frozenset)) else [issuer]
    key = _by_discovery(discovery) if discovery else None
    key = key or _by_url(jwk_url) or next((k for k in map(_by_url, issuers) if k), None)
    if key is None and claims is not None:
        key = from_claims(claims)
    return PROVIDERS.get(key or "", GENERIC)
