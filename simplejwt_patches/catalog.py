"""The complete fixer registry: every fixer this package declares, imported before any query.

Importing this module imports :mod:`simplejwt_patches.patches` (which declares the fixers) and
validates the result, so whoever reads :data:`REGISTRY` (the patcher, the system checks, the pin
table, ``status()``) sees all fixers whatever release is installed and whatever ran first.
Nothing upstream is imported or changed by this.
"""

from __future__ import annotations

from . import patches
from .registry import Registry, declared

__all__ = ["REGISTRY"]


def _populate() -> Registry:
    assert patches.__all__  # the declarations above ran
    registry = Registry(declared())
    registry.validate()
    return registry


#: Every fixer, validated (requirements exist and never point at a less critical kind).
REGISTRY: Registry = _populate()
