"""Installed versions (read with :mod:`importlib.metadata`) and what the installed PyJWT can do.

Versions are read from distribution metadata, never from ``__version__`` attributes: SimpleJWT
5.0.0 - 5.3.0 compute theirs through ``pkg_resources``, which may not even import.
Capabilities are derived from the PyJWT version *and* confirmed on the class where that is cheap,
so a backport or a vendored PyJWT does not fool us.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from packaging.version import InvalidVersion, Version

__all__ = ["PyJWTCaps", "distribution_version", "pyjwt_caps", "simplejwt_version"]

SIMPLEJWT_DIST = "djangorestframework-simplejwt"
PYJWT_DIST = "PyJWT"


def _metadata_version(dist: metadata.Distribution) -> str | None:
    """The ``Version`` header of ``dist``'s core metadata, read without parsing the whole file.

    ``Distribution.version`` runs the long description through :mod:`email`'s parser, about half a
    millisecond per distribution; ``apply()`` reads three at startup (``make bench``, < 5 ms).
    Headers end at the first blank line; anything unusual falls back to ``dist.version``.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    for line in (text or "").splitlines():
        if not line:
            break
        if line.startswith("Version:"):
            return line[len("Version:") :].strip()
    return None


def distribution_version(name: str) -> Version | None:
    """The installed version of distribution ``name`` or ``None`` when absent or unparsable."""
    try:
        dist = metadata.distribution(name)
        return Version(_metadata_version(dist) or dist.version)
    except (metadata.PackageNotFoundError, InvalidVersion, TypeError):
        return None


def simplejwt_version() -> Version | None:
    """Installed djangorestframework-simplejwt version."""
    return distribution_version(SIMPLEJWT_DIST)


@dataclass(frozen=True)
class PyJWTCaps:
    """What the installed PyJWT's ``PyJWKClient`` does on its own.

    Each flag names the release that introduced the behaviour (read from the wheels).
    """

    version: Version | None
    has_client: bool  # PyJWKClient importable (2.0+)
    jwk_set_cache: bool  # 2.5: JWKSetCache + refresh on unknown kid
    skips_unusable_keys: bool  # 2.5: PyJWKSet skips keys PyJWT cannot load (RSA-OAEP enc keys)
    headers_timeout: bool  # 2.7: headers=, timeout=
    ssl_context: bool  # 2.8: ssl_context=
    chains_fetch_errors: bool  # 2.10: fetch errors raised ``from e``
    refuses_redirects: bool  # 2.14: build_opener + no-redirect handler
    global_lock: bool  # 2.14: RLock held around get_signing_key, including network I/O
    connection_error_class: bool  # 2.7: PyJWKClientConnectionError

    def as_dict(self) -> dict[str, object]:
        """Plain-data view for :func:`simplejwt_patches.status`."""
        return {
            "version": str(self.version) if self.version else None,
            **{k: v for k, v in self.__dict__.items() if k != "version"},
        }


@lru_cache(maxsize=1)
def pyjwt_caps() -> PyJWTCaps:
    """Capabilities of the installed PyJWT (cached: PyJWT cannot change under a process)."""
    version = distribution_version(PYJWT_DIST)
    try:
        import jwt
        from jwt import PyJWKClient

        has_client = True
        params = inspect.signature(PyJWKClient.__init__).parameters
    except Exception:  # noqa: BLE001 - PyJWT 1.x or a broken install: report, never raise
        jwt = None  # type: ignore[assignment]
        has_client = False
        params = {}  # type: ignore[assignment]

    def at_least(v: str) -> bool:
        return version is not None and version >= Version(v)

    return PyJWTCaps(
        version=version,
        has_client=has_client,
        jwk_set_cache="cache_jwk_set" in params,
        skips_unusable_keys=at_least("2.5"),
        headers_timeout="headers" in params and "timeout" in params,
        ssl_context="ssl_context" in params,
        chains_fetch_errors=at_least("2.10"),
        refuses_redirects=at_least("2.14"),
        global_lock=at_least("2.14"),
        connection_error_class=jwt is not None and hasattr(jwt, "PyJWKClientConnectionError"),
    )
