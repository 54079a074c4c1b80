"""The fixers, one module per patched upstream object.

Importing this package registers every fixer in :data:`simplejwt_patches.registry.REGISTRY`;
nothing upstream is imported or changed until :func:`simplejwt_patches.apply` runs.
"""

from __future__ import annotations

from . import jwt_authentication, pyjwk_client, token, token_backend, user_lookup

__all__ = ["jwt_authentication", "pyjwk_client", "token", "token_backend", "user_lookup"]
