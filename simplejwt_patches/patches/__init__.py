"""The fixers, one module per patched upstream object.

Importing this package registers every fixer in :data:`simplejwt_patches.registry.REGISTRY`;
nothing upstream is imported or changed until :func:`simplejwt_patches.apply` runs.
"""

from __future__ import annotations

# Registration order is installation order: on a shared target, earlier fixers wrap innermost
# ("hostile" must turn a crash into TokenError inside the wrapper that records TokenErrors).
# ("outage" after "jwt_authentication": its 503 wraps the InvalidToken that one chained and reported.)
# ("issuers" imports token_backend, so its selection is registered after every other TokenBackend.decode
# fixer: the outermost wrapper; tests/test_realms.py fails if a realm's own AUTHORIZED_PARTIES is not the rule.)
from . import (
    authorized_party,
    hostile,
    issuers,
    jwt_authentication,
    outage,
    pyjwk_client,
    token,
    token_backend,
    user_lookup,
)

__all__ = [
    "authorized_party",
    "hostile",
    "issuers",
    "jwt_authentication",
    "outage",
    "pyjwk_client",
    "token",
    "token_backend",
    "user_lookup",
]
