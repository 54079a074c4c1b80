"""The pin table: every SimpleJWT release this package knows, and the patch set proven for it.

This module is the single source of truth for three things:

* the runtime: :func:`simplejwt_patches.apply` looks up the installed release here and applies
  the fixers whose declared range contains it (an unknown release is never patched blindly);
* the README compatibility table (``python -m simplejwt_patches.pins --markdown``; a test fails
  when the README's copy differs);
* the CI matrix (``noxfile.py`` builds one session per :class:`Pin` and per extra environment).

It deliberately imports nothing but the standard library and ``packaging`` so that ``noxfile.py``
can read it without Django installed.

Facts below were read from each release's sdist (``pip download --no-deps --no-binary :all:
djangorestframework-simplejwt==X``), not from changelogs:

* ``TokenBackend.get_verifying_key`` lets ``PyJWKClientError`` escape (HTTP 500) up to and
  INCLUDING 5.2.0; 5.2.1 catches it and chains ``from ex``.
* ``TokenBackend.decode`` re-raises ``InvalidTokenError`` without ``from`` up to and INCLUDING
  5.2.0; chained from 5.2.1 on.
* ``Token.__init__`` raises ``TokenError`` without ``from`` up to and INCLUDING 5.5.0; chained in
  5.5.1.
* ``JWTAuthentication.get_validated_token`` drops every cause on every release; in 5.2.1 only it
  passes ``verify=api_settings.VERIFYING_KEY is not None``, so ``VERIFYING_KEY = None`` accepts
  forged and expired tokens (reverted in 5.2.2).
* ``PyJWKSetError`` / ``PyJWKError`` (empty or unusable key set) are caught nowhere: HTTP 500 on
  every release.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from packaging.version import Version

__all__ = [
    "EXTRA_ENVS",
    "PINS",
    "PYJWT_BOUNDARIES",
    "Env",
    "Pin",
    "boundary_cells",
    "find_pin",
    "latest_pin",
    "markdown_table",
]


@dataclass(frozen=True)
class Env:
    """A dependency set a release is tested against in CI (exact pins)."""

    python: str
    django: str
    drf: str
    pyjwt: str
    wrapt: str = "2.5.2"

    def requirements(self, simplejwt: str) -> list[str]:
        """pip requirement strings for this environment and the given SimpleJWT release."""
        reqs = [
            f"django=={self.django}",
            f"djangorestframework=={self.drf}",
            f"djangorestframework-simplejwt=={simplejwt}",
            f"pyjwt[crypto]=={self.pyjwt}",
            f"wrapt=={self.wrapt}",
            "packaging==25.0",
        ]
        if Version(simplejwt) <= Version("5.3.0"):
            # 5.0.0 - 5.3.0 import pkg_resources at package import; setuptools 80 removed it.
            reqs.append("setuptools<80")
        return reqs


@dataclass(frozen=True)
class Pin:
    """One released SimpleJWT version, the dependency set CI proves it with, and what it does.

    Its patch set is not listed here: it is derived from the fixers' own release ranges
    (:attr:`fixers`), so there is one table of which fixer applies where.
    """

    simplejwt: str
    released: str
    env: Env
    notes: str = ""
    version: Version = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", Version(self.simplejwt))

    @property
    def fixers(self) -> tuple[str, ...]:
        """Ids of the fixers whose release range contains this release, in declaration order."""
        from .catalog import REGISTRY  # imports the fixers; noxfile.py reads PINS without it

        return tuple(fx.id for fx in REGISTRY.for_release(self.version))


PINS: tuple[Pin, ...] = (
    Pin(
        "4.8.0",
        "2021-08",
        Env("3.10", "3.2.25", "3.12.4", "2.3.0", wrapt="1.17.3"),
        "first release with JWK_URL; as 5.0.0 but decode passes verify= to jwt.decode (PyJWT >= 2.3); "
        "imports pkg_resources",
    ),
    Pin(
        "5.0.0",
        "2021-10",
        Env("3.10", "3.2.25", "3.12.4", "2.3.0", wrapt="1.17.3"),
        "PyJWKClientError escapes get_verifying_key (HTTP 500); decode drops the cause; "
        "imports pkg_resources (to 5.3.0)",
    ),
    Pin(
        "5.1.0",
        "2022-03",
        Env("3.10", "4.0.10", "3.13.1", "2.3.0"),
        "as 5.0.0; PyJWKClient import guarded",
    ),
    Pin(
        "5.2.0",
        "2022-05",
        Env("3.10", "4.0.10", "3.13.1", "2.4.0"),
        "as 5.1.0; get_leeway() added",
    ),
    Pin(
        "5.2.1",
        "2022-07",
        Env("3.10", "4.1.13", "3.13.1", "2.4.0"),
        "PyJWKClientError caught and chained; decode chains; skips verification when VERIFYING_KEY is None",
    ),
    Pin(
        "5.2.2",
        "2022-10",
        Env("3.11", "4.1.13", "3.14.0", "2.6.0"),
        "as 5.2.1, verification skip reverted",
    ),
    Pin(
        "5.3.0",
        "2023-08",
        Env("3.11", "4.2.30", "3.14.0", "2.8.0"),
        "as 5.2.2; last release importing pkg_resources (setuptools<80)",
    ),
    Pin(
        "5.3.1",
        "2023-12",
        Env("3.12", "5.0.14", "3.14.0", "2.8.0"),
        "as 5.3.0; version read with importlib.metadata",
    ),
    Pin(
        "5.4.0",
        "2025-01",
        Env("3.12", "5.1.15", "3.15.2", "2.10.1"),
        "as 5.3.1",
    ),
    Pin(
        "5.5.0",
        "2025-02",
        Env("3.13", "5.1.15", "3.15.2", "2.9.0"),
        "caps PyJWT <2.10; 'Token is invalid' / 'Token is expired' messages",
    ),
    Pin(
        "5.5.1",
        "2025-07",
        Env("3.13", "5.2.19", "3.16.1", "2.15.1"),
        "Token.__init__ chains its cause",
    ),
)

#: PyJWT releases whose JWKS behaviour differs, tested on the newest SimpleJWT release.
PYJWT_BOUNDARIES: tuple[str, ...] = (
    "2.0.1",
    "2.4.0",
    "2.6.0",
    "2.8.0",
    "2.10.1",
    "2.13.0",
    "2.14.0",
    "2.15.1",
)

#: Further environments for the newest release: (name, Env).
EXTRA_ENVS: tuple[tuple[str, Env], ...] = (("django6", Env("3.12", "6.1.3", "3.18.3", "2.15.1")),)


def boundary_cells() -> tuple[str, ...]:
    """The PyJWT boundaries that need a CI cell of their own: all but the newest pin's own PyJWT
    (its ``tests-<release>`` cell runs that one, and ``django6`` runs it on Python 3.12)."""
    return tuple(v for v in PYJWT_BOUNDARIES if v != latest_pin().env.pyjwt)


def find_pin(version: str | Version) -> Pin | None:
    """The pin for exactly this release, or ``None`` for a release nobody proved."""
    wanted = Version(str(version))
    for pin in PINS:
        if pin.version == wanted:
            return pin
    return None


def latest_pin() -> Pin:
    """The newest pinned release (used by ``UNKNOWN_VERSION = "latest"``)."""
    return max(PINS, key=lambda p: p.version)


def markdown_table() -> str:
    """The README compatibility tables, generated from :data:`PINS` and the fixers' ranges."""
    from .catalog import REGISTRY

    ids = sorted(REGISTRY.ids())
    lines = [
        "| patch | kind | " + " | ".join(p.simplejwt for p in PINS) + " |",
        "|---|---|" + "---|" * len(PINS),
    ]
    for fixer_id in ids:
        fx = REGISTRY.get(fixer_id)
        cells = ["✓" if fx.applies_to(p.version) else "" for p in PINS]
        lines.append(f"| `{fixer_id}` | {fx.kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| SimpleJWT | released | CI: Python / Django / DRF / PyJWT | what the release does |",
        "|---|---|---|---|",
    ]
    for pin in PINS:
        env = pin.env
        lines.append(
            f"| {pin.simplejwt} | {pin.released} | {env.python} / {env.django} / {env.drf} / {env.pyjwt} | "
            f"{pin.notes} |"
        )
    lines.append("")
    extra = "; ".join(
        f"`{name}`: Python {e.python}, Django {e.django}, DRF {e.drf}, PyJWT {e.pyjwt}" for name, e in EXTRA_ENVS
    )
    lines.append(
        f"Also in CI: SimpleJWT {latest_pin().simplejwt} against PyJWT "
        + ", ".join(boundary_cells())
        + f" (and {latest_pin().env.pyjwt} in its own cell); {extra}."
    )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - exercised by the README test via markdown_table
    if sys.argv[1:] == ["--markdown"]:
        print(markdown_table())
    else:
        print("usage: python -m simplejwt_patches.pins --markdown", file=sys.stderr)
        raise SystemExit(2)
