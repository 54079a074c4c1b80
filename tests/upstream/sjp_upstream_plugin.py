"""pytest plugin: run SimpleJWT's own test suite with ``simplejwt_patches`` installed.

SimpleJWT's ``tests/conftest.py`` calls ``settings.configure(...)`` in ``pytest_configure``. This
plugin is loaded first (``-p sjp_upstream_plugin``) and wraps ``LazySettings.configure`` so that
``"simplejwt_patches"`` is appended to whatever ``INSTALLED_APPS`` the suite configures. Nothing
else about the suite changes. (Loaded by ``noxfile.py``'s ``upstream-*`` sessions only.)
"""

from __future__ import annotations

from typing import Any

import pytest
import wrapt
from django.conf import LazySettings


def _configure(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    apps = list(kwargs.get("INSTALLED_APPS", ()))
    if "simplejwt_patches" not in apps:
        kwargs["INSTALLED_APPS"] = (*apps, "simplejwt_patches")
    return wrapped(*args, **kwargs)


wrapt.wrap_function_wrapper(LazySettings, "configure", _configure)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Fail loudly if the shim did not end up applied (the comparison would be meaningless)."""
    import simplejwt_patches

    status = simplejwt_patches.status()
    if not status.applied or status.patch_set is None:
        raise pytest.UsageError(f"simplejwt_patches is not applied: {status.patch_set_reason}")
    applied = [f.id for f in status.fixers if f.state == "applied"]
    config.stash[STASH] = f"simplejwt_patches applied on SimpleJWT {status.simplejwt}: {', '.join(applied)}"


STASH = pytest.StashKey[str]()


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash.get(STASH, "simplejwt_patches: not configured yet")
