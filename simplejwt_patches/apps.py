"""Django app configuration: apply the pinned patch set in ``ready()``."""

from __future__ import annotations

import logging

from django.apps import AppConfig
from django.core.signals import setting_changed

__all__ = ["SimpleJWTPatchesConfig"]

logger = logging.getLogger("simplejwt_patches")


def _on_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting in ("SIMPLE_JWT_PATCHES", "DEBUG"):
        from .conf import reset_options

        reset_options()


class SimpleJWTPatchesConfig(AppConfig):
    """``INSTALLED_APPS = [..., "simplejwt_patches"]`` is the whole setup."""

    name = "simplejwt_patches"
    label = "simplejwt_patches"
    verbose_name = "SimpleJWT patches"
    default = True

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .patcher import apply

        setting_changed.connect(_on_setting_changed, dispatch_uid="simplejwt_patches.setting_changed")
        try:
            apply()
        except Exception:  # pragma: no cover - apply() reports problems itself; this is the last net
            logger.exception("simplejwt_patches: apply() failed; SimpleJWT runs unpatched")
