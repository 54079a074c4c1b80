"""Security fixer: only tokens issued to the listed clients (``AUTHORIZED_PARTIES``) are accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..conf import get_options
from ..failures import UnauthorizedParty
from ..issuer_settings import INHERIT
from ..realms import realm_of
from ..registry import SECURITY, fixer
from .token_backend import invalid_message

__all__ = ["authorized_party", "unauthorized_party"]


@fixer(
    "backend.decode.authorized-party",
    target="rest_framework_simplejwt.backends:TokenBackend.decode",
    params=("self", "token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0 (every pinned release)
    kind=SECURITY,
)
def authorized_party(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Reject a verified token whose authorized party is missing or not in ``AUTHORIZED_PARTIES``.

    Why: no SimpleJWT release (4.8.0 to 5.5.1) looks at ``azp``, the client a token was issued to,
    and ``AUDIENCE`` alone often cannot tell this API's tokens from other clients' tokens: Keycloak's
    built-in ``roles`` scope puts ``aud: "account"`` on the access tokens of *every* client of the
    realm, and an Entra ID v2 ID token carries the same ``aud`` as the app's own access tokens. With
    ``SIMPLE_JWT_PATCHES["AUTHORIZED_PARTIES"]`` set, ``TokenBackend.decode`` (which checks ``aud``
    and ``iss``) also requires the claim ``AUTHORIZED_PARTY_CLAIM`` (``azp``) to be one of the listed
    client ids; otherwise it raises the release's own ``TokenBackendError`` *from*
    :class:`~simplejwt_patches.failures.UnauthorizedParty`, so the 401 body is upstream's and the
    reason code is ``bad_authorized_party``. Depends on no other fixer: with the diagnostics fixers
    disabled the token is still a 401. Decoding with ``verify=False`` (the caller asked for the
    unverified claims) is left alone. Unset (the default), the cost is one attribute read. A realm's
    backend (``ISSUERS``) uses that issuer's ``AUTHORIZED_PARTIES`` when it has its own.
    """
    payload = wrapped(*args, **kwargs)
    options = get_options()
    parties = options.authorized_parties
    realm = realm_of(instance)
    if realm is not None and realm.parties is not INHERIT:
        parties = realm.parties
    if parties is None or (args[1] if len(args) > 1 else kwargs.get("verify", True)) is False:
        return payload
    refused = unauthorized_party(payload, parties, options.party_claim)
    if refused is None:
        return payload
    from rest_framework_simplejwt.exceptions import TokenBackendError

    raise TokenBackendError(invalid_message()) from refused


def unauthorized_party(payload: Any, parties: frozenset[str], claim: str) -> UnauthorizedParty | None:
    """Why ``payload`` was not issued to one of ``parties`` (its ``claim``), or ``None`` when it was.

    A dict lookup; the rule for one set of parties (one issuer's, when issuers get their own).
    """
    value = payload.get(claim) if isinstance(payload, dict) else None
    if isinstance(value, str) and value in parties:
        return None
    return UnauthorizedParty(claim, value)
