"""The fixers, one module per patched upstream object.

Importing this package registers every fixer in :data:`simplejwt_patches.registry.REGISTRY`;
nothing upstream is imported or changed until :func:`simplejwt_patches.apply` runs.
"""

from __future__ import annotations

# Registration order is installation order: on a shared target, earlier fixers wrap innermost
# ("hostile" must turn a crash into TokenError inside the wrapper that records TokenErrors).
# ("outage" after "jwt_authentication": its 503 wraps the InvalidToken that one chained and reported.)
# ("issuers" last: its selection is the outermost wrapper of TokenBackend.decode.)
from . import authorized_party, hostile, jwt_authentication, outage, pyjwk_client, token, token_backend, user_lookup
from . import issuers  # isort: skip

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
