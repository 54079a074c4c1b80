"""simplejwt-patches: make SimpleJWT's JWKS fetching configurable and its failures explainable.

Add ``"simplejwt_patches"`` to ``INSTALLED_APPS``; :class:`~simplejwt_patches.apps.SimpleJWTPatchesConfig`
applies the patch set pinned for the installed djangorestframework-simplejwt release.

The public API is three functions; importing this package imports neither Django nor SimpleJWT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .patcher import Status

__all__ = ["__version__", "apply", "revert", "status"]


def apply() -> Status:
    """Apply the patch set pinned for the installed SimpleJWT (idempotent, thread-safe)."""
    from .patcher import apply as _apply

    return _apply()


def revert() -> Status:
    """Restore every upstream attribute this package replaced, where it is still ours."""
    from .patcher import revert as _revert

    return _revert()


def status() -> Status:
    """Versions, the selected patch set, and each patch applied or skipped with the reason."""
    from .patcher import status as _status

    return _status()
