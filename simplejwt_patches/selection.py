"""Which fixers to apply, and why: the version rule plus the fingerprint proof.

Why this exists: the version rule alone ("apply the fixers whose range contains the installed
release") cannot patch a release published after ours, and it trusts a version number even when
the code under it was edited. The fingerprints of the SimpleJWT callables a fixer wraps
(:mod:`simplejwt_patches.fingerprints`), compared with those proven on the pinned releases
(:mod:`simplejwt_patches.proven`), answer both:

* pinned release: each fixer of its patch set is applied unless one of its SimpleJWT targets
  differs from the release's proven code (a fork, vendored or locally edited copy): then it is
  skipped and reported (W031);
* unpinned release, ``UNKNOWN_VERSION = "proven"`` (the default): a fixer is applied when its
  SimpleJWT targets equal those of a pinned release it applies to (the newest such release is
  named); a fixer of the nearest pinned release's patch set whose code matches none is skipped
  and reported (W031); a fixer whose code equals a release it does *not* apply to is left out,
  as the version rule would;
* source not readable (bytecode-only install): fall back to the version rule and say so (W032).

A lazy target (:class:`~simplejwt_patches.registry.Patch`) whose module is not imported yet is
fingerprinted from its source file (:func:`~simplejwt_patches.fingerprints.fingerprint_unimported`):
the verdict is the same as if it had been imported, and the patcher checks, when the module is
imported, that the code there is the code proven here (:attr:`Selection.fingerprints`).

PyJWT targets are not SimpleJWT code and stay gated on capabilities; a fixer with only PyJWT
targets follows the patch set of the release its SimpleJWT peers were proven on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import import_module

import wrapt
from packaging.version import Version

from .catalog import REGISTRY
from .fingerprints import SourceUnavailable, fingerprint_installed, fingerprint_unimported, simplejwt_qualnames
from .pins import PINS, Pin, find_pin, latest_pin
from .proven import PROVEN
from .registry import Fixer

__all__ = ["Changed", "Choice", "Selection", "imported", "select", "sj_targets"]


@dataclass(frozen=True)
class Changed:
    """One fixer skipped because SimpleJWT callables differ from their proven code (W031)."""

    fixer_id: str
    callables: tuple[str, ...]
    last_proven: str

    @property
    def reason(self) -> str:
        return f"{', '.join(self.callables)} changed (last proven on {self.last_proven})"


@dataclass(frozen=True)
class Choice:
    """One fixer of the selection: applied per ``selected_by``, or skipped for ``skip``."""

    fixer: Fixer
    selected_by: str
    skip: str | None = None


@dataclass(frozen=True)
class Selection:
    """The outcome: the patch set's pin (for display), why, each fixer, and what to report."""

    pin: Pin | None
    reason: str
    choices: tuple[Choice, ...]
    changed: tuple[Changed, ...] = ()
    source_unavailable: str | None = None  # W032: why fingerprints could not be computed
    #: The installed fingerprint of each SimpleJWT target judged ("Owner.attr" -> value; ``None``: not found).
    fingerprints: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)


def imported(module: str) -> bool:
    """Whether ``module`` is imported and done executing. One another thread is still executing (importlib's
    ``__spec__._initializing``) counts as not imported yet: waiting for it here, under the patcher's lock,
    would deadlock with that import's post-import hook, which waits for the lock and wraps it when done."""
    found = sys.modules.get(module)
    return found is not None and not getattr(getattr(found, "__spec__", None), "_initializing", False)


def sj_targets(fx: Fixer) -> tuple[str, ...]:
    """Qualnames of the SimpleJWT callables ``fx`` wraps."""
    return simplejwt_qualnames((p.module, p.path) for p in fx.patches)


def _installed(fixers: list[Fixer]) -> dict[str, str | None]:
    """Installed fingerprints of the SimpleJWT targets of ``fixers`` (``None``: not resolvable)."""
    out: dict[str, str | None] = {}
    for fx in fixers:
        for patch in fx.patches:
            if patch.path in out or patch.path not in sj_targets(fx):
                continue
            if patch.lazy and not imported(patch.module):  # proven from its source, not imported (yet)
                out[patch.path] = fingerprint_unimported(patch.module, patch.path)
                continue
            try:
                _, _, original = wrapt.resolve_path(import_module(patch.module), patch.path)
            except Exception:  # noqa: BLE001 - a missing target is reported by the patcher (W030)
                out[patch.path] = None
                continue
            out[patch.path] = fingerprint_installed(original)
    return out


def _differs(fx: Fixer, installed: dict[str, str | None], release: str) -> tuple[str, ...]:
    proven = PROVEN.get(release, {})
    return tuple(q for q in sj_targets(fx) if installed.get(q) is not None and installed.get(q) != proven.get(q))


def _pinned(pin: Pin, fixers: list[Fixer]) -> Selection:
    reason = f"pinned release {pin.simplejwt}"
    try:
        installed = _installed(fixers)
    except SourceUnavailable as exc:
        why = f"source not available ({exc}), fell back to the version rule"
        return Selection(pin, reason, tuple(Choice(fx, reason) for fx in fixers), source_unavailable=why)
    choices, changed = [], []
    for fx in fixers:
        differs = _differs(fx, installed, pin.simplejwt)
        if differs:
            changed.append(Changed(fx.id, differs, pin.simplejwt))
            choices.append(Choice(fx, reason, changed[-1].reason))
        else:
            choices.append(Choice(fx, reason))
    return Selection(pin, reason, tuple(choices), tuple(changed), fingerprints=installed)


def _proven(version: Version) -> Selection:
    nearest = max((p for p in PINS if p.version <= version), key=lambda p: p.version, default=None)
    reference = nearest or min(PINS, key=lambda p: p.version)
    every = list(REGISTRY)
    try:
        installed = _installed(every)
    except SourceUnavailable as exc:
        why = f"source not available ({exc}), fell back to the version rule"
        reason = f"SimpleJWT {version} is not pinned; {why}: not patched (UNKNOWN_VERSION='proven')"
        return Selection(None, reason, (), source_unavailable=why)
    newest_first = sorted(PINS, key=lambda p: p.version, reverse=True)
    choices: list[Choice] = []
    changed: list[Changed] = []
    proven_on: dict[str, str] = {}
    for fx in every:
        if not sj_targets(fx):
            continue
        proven = (p for p in newest_first if fx.applies_to(p.version) and not _differs(fx, installed, p.simplejwt))
        match = next(proven, None)
        if match is not None:
            proven_on[fx.id] = match.simplejwt
            choices.append(Choice(fx, f"proven by fingerprint of release {match.simplejwt}"))
        elif fx.applies_to(reference.version):
            last = next(p for p in newest_first if fx.applies_to(p.version))
            changed.append(Changed(fx.id, _differs(fx, installed, last.simplejwt), last.simplejwt))
            choices.append(Choice(fx, "not proven", changed[-1].reason))
    for fx in every:  # PyJWT-only fixers ride with the release their SimpleJWT peers were proven on
        if not sj_targets(fx) and fx.applies_to(reference.version):
            choices.append(Choice(fx, f"patch set of {reference.simplejwt} (PyJWT targets, gated on capabilities)"))
    order = {fid: i for i, fid in enumerate(REGISTRY.ids())}
    choices.sort(key=lambda c: order[c.fixer.id])
    releases = sorted(set(proven_on.values()), key=Version)
    reason = (
        f"SimpleJWT {version} is not pinned; proven by fingerprint of release {', '.join(releases) or 'none'}"
        f" (UNKNOWN_VERSION='proven')"
    )
    return Selection(reference, reason, tuple(choices), tuple(changed), fingerprints=installed)


def select(version: Version | None, policy: str) -> Selection:
    """The fixers to apply on ``version`` under ``UNKNOWN_VERSION = policy``, with reasons."""
    if version is None:
        return Selection(None, "djangorestframework-simplejwt is not installed", ())
    pin = find_pin(version)
    if pin is not None:
        return _pinned(pin, REGISTRY.for_release(pin.version))
    if policy == "latest":
        latest = latest_pin()
        reason = (
            f"SimpleJWT {version} is not pinned; UNKNOWN_VERSION='latest' applied the patch set of {latest.simplejwt}"
        )
        by = f"latest: patch set of {latest.simplejwt}"
        return Selection(latest, reason, tuple(Choice(fx, by) for fx in REGISTRY.for_release(latest.version)))
    if policy == "proven":
        return _proven(version)
    return Selection(None, f"SimpleJWT {version} is not pinned; not patched (UNKNOWN_VERSION={policy!r})", ())
