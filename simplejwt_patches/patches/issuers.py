"""Security fixer: with ``ISSUERS`` set, the token's ``iss`` chooses the realm that verifies it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..conf import get_options
from ..deadline import request_deadline
from ..failures import JWKSFailure, UntrustedIssuer
from ..realms import backend_for, realm_of
from ..registry import SECURITY, fixer
from .token_backend import invalid_message

__all__ = ["select_issuer"]


@fixer(
    "backend.decode.issuer-selection",
    target="rest_framework_simplejwt.backends:TokenBackend.decode",
    params=("self", "token"),
    simplejwt=">=4.8.0,<6",  # INCLUDING 4.8.0 (first with JWK_URL), EXCLUDING 6.0 (every pinned release)
    kind=SECURITY,
)
def select_issuer(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Verify each token with the keys, issuer and audience of the realm its ``iss`` names, or refuse it.

    Why: every SimpleJWT release (4.8.0 to 5.5.1) trusts one issuer with one ``JWK_URL``
    (upstream issue #899, PR #957 would allow several issuers but one key set), so a second realm
    needs a hand-written ``TokenBackend`` subclass that none of this package's resilience reaches.
    With ``SIMPLE_JWT_PATCHES["ISSUERS"]`` set, the token's unverified ``iss`` must be exactly one
    of the trusted issuers, else the release's own ``TokenBackendError`` *from*
    :class:`~simplejwt_patches.failures.UntrustedIssuer` (reason ``bad_issuer``) is raised before
    any key is looked up: no request to anyone. Otherwise the token is decoded by that realm's
    backend (:mod:`simplejwt_patches.realms`), through every fixer again: its own key source, its
    ``iss`` required, its audience and authorized parties. A realm whose discovery document cannot
    be had (or names another issuer) fails closed with the failure in the cause chain. The
    discovery document and the key set it names share one ``JWKS_TIMEOUT`` per request
    (:func:`~simplejwt_patches.deadline.request_deadline`): a cold request waits at most
    ``JWKS_TIMEOUT`` + ``deadline.MARGIN``, not a timeout per fetch. Installed
    last on ``TokenBackend.decode`` (outermost), so no other fixer sees SimpleJWT's backend for a
    token a realm decodes. ``verify=False`` (the caller asked for unverified claims) and an unset
    ``ISSUERS`` (one attribute read) are left alone.
    """
    options = get_options()
    if options.issuers is None or realm_of(instance) is not None:
        return wrapped(*args, **kwargs)
    if (args[1] if len(args) > 1 else kwargs.get("verify", True)) is False:
        return wrapped(*args, **kwargs)
    token = args[0] if args else kwargs.get("token")
    with request_deadline(options.timeout):  # discovery and the key set share one JWKS_TIMEOUT
        try:
            backend = backend_for(instance, token, options)
        except (UntrustedIssuer, JWKSFailure) as exc:
            from rest_framework_simplejwt.exceptions import TokenBackendError

            raise TokenBackendError(invalid_message()) from exc
        return backend.decode(*args, **kwargs)
