"""The fixers, one module per patched upstream object.

Importing this package registers every fixer in :data:`simplejwt_patches.registry.REGISTRY`;
nothing upstream is imported or changed until :func:`simplejwt_patches.apply` runs.
"""

from __future__ import annotations

# Registration order is installation order: on a shared target, earlier fixers wrap innermost
# ("hostile" must turn a crash into TokenError inside the wrapper that records TokenErrors).
from . import authorized_party, hostile, jwt_authentication, pyjwk_client, token, token_backend, user_lookup

__all__ = ["authorized_party", "hostile", "jwt_authentication", "pyjwk_client", "token", "token_backend", "user_lookup"]
