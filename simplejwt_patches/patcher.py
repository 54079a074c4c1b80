"""Applying and reverting the pinned patch set.

* ``apply()`` looks the installed SimpleJWT release up in :mod:`simplejwt_patches.pins`, then
  wraps each listed fixer's target with :class:`wrapt.FunctionWrapper`. A fixer is recorded as
  applied only after its wrapper is in place; a target that is missing or has another shape is
  skipped with a reason (and a warning), never an exception out of ``AppConfig.ready()``.
* **One wrapper per target**: when several fixers wrap the same upstream callable (``Token.__init__``,
  ``TokenBackend.decode``, ...), they are not stacked. The target holds one ``FunctionWrapper`` around
  the upstream callable whose wrapper runs the fixers' wrappers as a chain (:func:`chain`), in
  installation order (earlier fixers innermost), exactly as the stack would. A fixer joining a target
  replaces its wrapper by one with the longer chain, and that replacement is an undo-log entry of its
  own, so reverting (or rolling a fixer back) still restores, step by step, only what is still ours.
* Every change is written to an undo log: owner, attribute, whether the owner had its own
  attribute, the original object and what we installed. ``revert()`` replays it backwards and
  restores an attribute only while it is still ours, so a later monkey-patch by someone else
  is never clobbered.
* One re-entrant lock guards both, so concurrent ``apply()`` calls patch once.
* **Lazy targets** (``Patch.lazy``) whose module is not imported yet are not imported: their fixer is
  ``pending-import`` (its eager targets wrapped, the selection proved the lazy ones from source) and
  a wrapt post-import hook wraps them, under the same lock and into the same undo log, when the
  module is first imported; then the fixer is ``applied`` (or ``failed``, naming what and what stays
  wrapped). wrapt's hooks cannot be unregistered: ``revert()`` drops what is waiting, so a later
  import wraps nothing, and one hook per module serves every later ``apply()``.
"""

from __future__ import annotations

import importlib.util
import linecache
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

import wrapt

from .catalog import REGISTRY
from .conf import get_options
from .fingerprints import fingerprint_installed
from .pins import Pin
from .registry import Fixer, Patch, WrapperFunc, set_lazy_completer
from .selection import Selection, imported, select
from .versions import distribution_version, pyjwt_caps, simplejwt_version

if TYPE_CHECKING:  # pragma: no cover
    from .realm_status import RealmStatus

__all__ = [
    "ACTIVE",
    "Change",
    "FixerStatus",
    "Status",
    "apply",
    "chain",
    "changes",
    "fixers_on",
    "is_applied",
    "revert",
    "selection",
    "status",
]

logger = logging.getLogger("simplejwt_patches")

#: On each wrapper we install: the ids of the fixers it runs, innermost first.
_MARK = "_self_simplejwt_patches_fixers"
#: ... and their wrapper functions, in the same order (what a fixer joining the target extends).
_CHAIN = "_self_simplejwt_patches_chain"
_MISSING = object()


def chain(wrappers: Sequence[WrapperFunc]) -> WrapperFunc:
    """One wrapt wrapper that runs ``wrappers`` (innermost first) as if each wrapped the next.

    ``wrappers[0]`` gets the upstream callable as ``wrapped``; every later one gets a callable
    running the ones before it. One wrapper alone is returned as it is (no dispatch at all).
    """
    if not wrappers:
        raise ValueError("a chain needs at least one wrapper")
    if len(wrappers) == 1:
        return wrappers[0]
    inner, outer = chain(wrappers[:-1]), wrappers[-1]

    def dispatch(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def run_inner(*a: Any, **k: Any) -> Any:
            return inner(wrapped, instance, a, k)

        return outer(run_inner, instance, args, kwargs)

    return dispatch


def fixers_on(obj: Any) -> tuple[str, ...]:
    """The ids of the fixers ``obj`` (one of our wrappers) runs, innermost first; ``()`` for anything else."""
    ids = getattr(obj, _MARK, None) if isinstance(obj, wrapt.FunctionWrapper) else None
    return ids if isinstance(ids, tuple) else ()


@dataclass
class Change:
    """One attribute we changed, with what is needed to undo it exactly."""

    fixer_id: str
    owner: Any
    attribute: str
    was_own: bool
    original: Any
    installed: Any

    def is_still_ours(self) -> bool:
        """Whether the owner still holds exactly what we installed."""
        return vars(self.owner).get(self.attribute, _MISSING) is self.installed

    def undo(self) -> bool:
        """Put the original back (or drop our attribute); ``False`` when it is no longer ours."""
        if not self.is_still_ours():
            return False
        if self.was_own:
            setattr(self.owner, self.attribute, self.original)
        else:
            delattr(self.owner, self.attribute)
        return True


@dataclass(frozen=True)
class FixerStatus:
    """State of one fixer of the selected patch set."""

    id: str
    target: str
    state: str  # applied | pending-import | skipped | disabled | failed
    reason: str
    summary: str
    kind: str = ""
    selected_by: str = ""  # how the fixer came to be in the patch set


@dataclass(frozen=True)
class Status:
    """What ``status()`` returns: versions, the patch set, and each fixer's state."""

    applied: bool
    simplejwt: str | None
    pyjwt: str | None
    django: str | None
    patch_set: str | None
    patch_set_reason: str
    fixers: tuple[FixerStatus, ...]
    managed_clients: int
    options: dict[str, Any] = field(default_factory=dict)
    #: Each trusted issuer's runtime state with ``ISSUERS`` set (docs/troubleshooting.md), else ``()``.
    realms: tuple[RealmStatus, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "applied": self.applied,
            "simplejwt": self.simplejwt,
            "pyjwt": self.pyjwt,
            "django": self.django,
            "patch_set": self.patch_set,
            "patch_set_reason": self.patch_set_reason,
            "fixers": [f.__dict__ for f in self.fixers],
            "managed_clients": self.managed_clients,
            "options": _plain(self.options),
            "realms": [r.as_dict() for r in self.realms],
        }


def _plain(value: Any) -> Any:
    """``value`` as strict JSON data: sets as sorted lists, tuples as lists, anything else JSON lacks as
    its ``repr`` (an ``SSLContext``, a ``PyJWK``), so ``json.dumps(status().as_dict())`` never raises."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    return repr(value)


_lock = threading.RLock()
_changes: list[Change] = []
_fixer_states: dict[str, FixerStatus] = {}
_applied = False
_selection: tuple[Pin | None, str] = (None, "not applied yet")
_last_selection: Selection | None = None  # the fingerprint verdicts behind the last apply() (W031/W032)

#: A fixer's states in which its wrappers are (or, for lazy targets, will be) in place: what ``requires`` needs.
ACTIVE = ("applied", "pending-import")


@dataclass
class _Pending:
    """A fixer whose lazy patches wait for the first import of their modules."""

    fixer: Fixer
    waiting: list[tuple[Patch, str | None]]  # each with the fingerprint proven from source (None: not checked)


_pending: dict[str, _Pending] = {}  # fixer id -> what it still waits for, in installation order
_watched: set[str] = set()  # modules with a live post-import hook of ours (wrapt drops a hook once it ran)


def _dependency_order(fixers: list[Fixer]) -> list[Fixer]:
    """``fixers`` with every requirement before the fixers requiring it (stable otherwise)."""
    by_id = {fx.id: fx for fx in fixers}
    ordered: list[Fixer] = []
    seen: set[str] = set()

    def visit(fx: Fixer) -> None:
        if fx.id in seen:
            return
        seen.add(fx.id)
        for needed in fx.requires:
            if needed in by_id:
                visit(by_id[needed])
        ordered.append(fx)

    for fx in fixers:
        visit(fx)
    return ordered


def _install(
    fixer: Fixer,
    selected_by: str = "",
    states: dict[str, FixerStatus] | None = None,
    proven: Mapping[str, str | None] | None = None,
) -> FixerStatus:
    """Wrap every target of ``fixer`` (all or none); ``states`` holds the fixers handled so far.

    A lazy target whose module is not imported waits for it (``pending-import``); ``proven`` holds
    the fingerprints the selection computed (a lazy target's from its source), checked again on the
    code imported.
    """

    def status(state: str, reason: str) -> FixerStatus:
        return FixerStatus(fixer.id, fixer.target, state, reason, fixer.summary, fixer.kind, selected_by)

    if fixer.id in get_options().disable:
        return status("disabled", "listed in SIMPLE_JWT_PATCHES['DISABLE']")
    for needed in fixer.requires:
        got = (states or {}).get(needed)
        if got is None or got.state not in ACTIVE:
            why = f"it is {got.state}" if got is not None else "it is not in this patch set"
            return status("skipped", f"requires {needed}, and {why}")
    resolved: list[tuple[Patch, Any, str, Any]] = []
    later: list[tuple[Patch, str | None]] = []
    for patch in fixer.patches:
        expected = (proven or {}).get(patch.path) if patch.lazy else None
        if patch.lazy and not imported(patch.module):  # (or another thread is importing it: its hook wraps it)
            problem = _unfindable(patch, proven)
            if problem:
                return status("skipped", problem)
            later.append((patch, expected))
            continue
        target = _resolve(fixer.id, patch, expected)
        if isinstance(target, str):
            return status("skipped", target)
        resolved.append(target)
    problem = _set_all(fixer.id, resolved)
    if problem:
        return status("failed", problem)
    if later:
        _pending[fixer.id] = _Pending(fixer, later)
        return status("pending-import", _pending_reason(fixer, later))
    return status("applied", "wrapped " + fixer.target)


def _unfindable(patch: Patch, proven: Mapping[str, str | None] | None) -> str | None:
    """Why the lazy ``patch`` can never be wrapped (its module or definition does not exist), else ``None``."""
    if proven is not None and patch.path in proven:  # the selection read the module's source
        missing = proven[patch.path] is None
        return f"cannot resolve {patch.target}: not defined in the source of {patch.module}" if missing else None
    try:
        found = importlib.util.find_spec(patch.module) is not None
    except Exception as exc:  # noqa: BLE001 - a missing parent package, a broken finder
        return f"cannot resolve {patch.target}: {exc.__class__.__name__}: {exc}"
    return None if found else f"cannot resolve {patch.target}: no module named {patch.module!r}"


def _resolve(
    fixer_id: str, patch: Patch, expected: str | None = None, module: ModuleType | None = None
) -> tuple[Patch, Any, str, Any] | str:
    """``(patch, owner, attribute, original)`` ready to wrap, or why not."""
    try:
        module = module or import_module(patch.module)
        parent, attribute, original = wrapt.resolve_path(module, patch.path)
    except Exception as exc:  # noqa: BLE001 - any failure to find the target skips the fixer
        return f"cannot resolve {patch.target}: {exc.__class__.__name__}: {exc}"
    if _marks(original, fixer_id):
        return f"{patch.target} is already wrapped by {fixer_id} (not wrapped twice)"
    shape = patch.shape_error(original)
    if shape:
        return shape
    if expected is not None:
        # apply() read the source through linecache: drop those lines if the file changed since (an edit,
        # an upgrade), so the code imported is judged from the file it was compiled from, not the old text
        linecache.checkcache(getattr(module, "__file__", None) or "")
        try:
            actual = fingerprint_installed(original)
        except Exception as exc:  # noqa: BLE001 - SourceUnavailable, or source that no longer parses
            actual = f"unreadable: {exc}"
        if actual != expected:
            return f"{patch.path} is not the code proven from its source at apply() ({actual}, proven {expected})"
    return patch, parent, attribute, original


def _set_all(fixer_id: str, resolved: list[tuple[Patch, Any, str, Any]]) -> str | None:
    """Install a wrapper on every resolved target and log the changes (all or none); why not, or ``None``."""
    done: list[Change] = []
    for patch, parent, attribute, original in resolved:
        wrapper = _wrapper(fixer_id, patch, parent, attribute, original)
        change = Change(fixer_id, parent, attribute, attribute in vars(parent), vars(parent).get(attribute), wrapper)
        try:
            setattr(parent, attribute, wrapper)
        except Exception as exc:  # noqa: BLE001 - e.g. a read-only or slotted owner
            for undone in reversed(done):
                undone.undo()
            return f"cannot set {patch.target}: {exc.__class__.__name__}: {exc}"
        done.append(change)
    _changes.extend(done)
    return None


def _pending_reason(fixer: Fixer, waiting: list[tuple[Patch, str | None]]) -> str:
    later = [p.target for p, _ in waiting]
    done = [t for t in fixer.targets if t not in later]
    modules = " and ".join(sorted({p.module for p, _ in waiting}))
    return (f"wrapped {', '.join(done)}; " if done else "") + (
        f"wraps {', '.join(later)} when {modules} is first imported (not imported yet)"
    )


def _complete(module_name: str) -> list[Any]:
    """Wrap the lazy patches waiting for ``module_name``, now imported (caller holds ``_lock``); the upstream
    callables wrapped."""
    module = sys.modules.get(module_name)
    wrapped: list[Any] = []
    if module is None:
        return wrapped
    for fixer_id, entry in list(_pending.items()):
        group = [(p, fp) for p, fp in entry.waiting if p.module == module_name]
        if not group:
            continue
        try:
            resolved = [_resolve(fixer_id, p, fp, module) for p, fp in group]
            problem = next((r for r in resolved if isinstance(r, str)), None)
            ready = [r for r in resolved if not isinstance(r, str)]
            problem = problem or _set_all(fixer_id, ready)
            wrapped += [] if problem else [original for *_, original in ready]
        except Exception as exc:  # noqa: BLE001 - never fail the import that runs this hook
            problem = f"{exc.__class__.__name__}: {exc}"
        previous = _fixer_states.get(fixer_id) or FixerStatus(
            fixer_id, entry.fixer.target, "pending-import", "", entry.fixer.summary, entry.fixer.kind
        )
        if problem:
            del _pending[fixer_id]
            kept = [t for t in entry.fixer.targets if t not in {p.target for p, _ in entry.waiting}]
            stays = f"; {', '.join(kept)} stay wrapped" if kept else ""
            state = replace(previous, state="failed", reason=f"when {module_name} was imported: {problem}{stays}")
            logger.warning("simplejwt_patches: fixer %s failed: %s", fixer_id, state.reason)
        else:
            entry.waiting = [w for w in entry.waiting if w[0].module != module_name]
            if entry.waiting:
                state = replace(previous, reason=_pending_reason(entry.fixer, entry.waiting))
            else:
                del _pending[fixer_id]
                state = replace(previous, state="applied", reason="wrapped " + entry.fixer.target)
            logger.debug("simplejwt_patches: fixer %s wrapped %s as it was imported", fixer_id, module_name)
        _fixer_states[fixer_id] = state
    return wrapped


def _complete_imported() -> tuple[Any, ...]:
    """Wrap what waits for modules imported meanwhile (e.g. by another fixer's eager target, or by a path our
    post-import hook missed: a finder inserted before wrapt's, ``sys.modules`` injection); what was wrapped."""
    wrapped: list[Any] = []
    for name in sorted({p.module for entry in _pending.values() for p, _ in entry.waiting}):
        if imported(name):
            wrapped += _complete(name)
    return tuple(wrapped)


def _complete_missed() -> tuple[Any, ...]:
    """:func:`_complete_imported` for the request path (O(1) while nothing waits): see ``registry.complete_lazy``."""
    if not _pending:
        return ()
    with _lock:
        return _complete_imported()


set_lazy_completer(_complete_missed)


def _on_import(module: ModuleType) -> None:
    """wrapt's post-import hook: wrap what waits for ``module``; a no-op once ``revert()`` ran. Never raises
    (an exception here would fail the import)."""
    name = getattr(module, "__name__", "")
    try:
        import_module(name)  # if another thread is still executing the module, wait for it (no-op in that thread)
        with _lock:
            _watched.discard(name)  # wrapt ran this hook once and dropped it
            _complete(name)
    except Exception:  # pragma: no cover - _complete catches what it can; this is the last net
        logger.exception("simplejwt_patches: wrapping the targets in %s failed", name)


def _unwatched() -> list[str]:
    """Modules something waits for that have no hook of ours yet, marked as hooked (caller holds ``_lock``)."""
    names = sorted({p.module for entry in _pending.values() for p, _ in entry.waiting} - _watched)
    _watched.update(names)
    return names


def _watch(names: Iterable[str]) -> None:
    """Register the post-import hook for each module, outside ``_lock`` (older wrapt runs hooks under its own
    lock; a hook waiting for ours while we wait for wrapt's would deadlock). An imported module's runs now."""
    for name in names:
        wrapt.register_post_import_hook(_on_import, name)


def _ours(parent: Any, attribute: str, obj: Any) -> bool:
    """Whether ``obj`` is the wrapper this ``apply()`` installed on ``parent.attribute`` and still holds there."""
    return any(c.owner is parent and c.attribute == attribute and c.installed is obj for c in _changes) and (
        vars(parent).get(attribute, _MISSING) is obj
    )


def _wrapper(fixer_id: str, patch: Patch, parent: Any, attribute: str, original: Any) -> Any:
    """The one wrapper ``parent.attribute`` gets: ``original`` wrapped, or our chain there grown by one."""
    ids: tuple[str, ...] = (fixer_id,)
    wrappers: tuple[WrapperFunc, ...] = (patch.wrapper,)
    upstream = original
    if _ours(parent, attribute, original):
        ids = (*fixers_on(original), fixer_id)
        wrappers = (*getattr(original, _CHAIN), patch.wrapper)
        upstream = original.__wrapped__
    wrapper = wrapt.FunctionWrapper(upstream, chain(wrappers))
    setattr(wrapper, _MARK, ids)
    setattr(wrapper, _CHAIN, wrappers)
    return wrapper


def _marks(obj: Any, fixer_id: str) -> bool:
    """Whether one of ``fixer_id``'s wrappers is anywhere in the wrapper stack of ``obj``."""
    for _ in range(64):  # bounded: a foreign wrapper or two may sit on ours
        if fixer_id in fixers_on(obj):
            return True
        inner = getattr(obj, "__wrapped__", None)  # wrapt 2's FunctionWrapper is no ObjectProxy subclass
        if inner is None or inner is obj:
            return False
        obj = inner
    return False


def apply() -> Status:
    """Apply the patch set pinned for the installed SimpleJWT release (idempotent, thread-safe)."""
    global _applied, _selection, _last_selection
    with _lock:
        if _applied:
            return status()
        chosen = select(simplejwt_version(), get_options().unknown_version)
        proven = None if chosen.source_unavailable else chosen.fingerprints
        pin, reason = chosen.pin, chosen.reason
        _selection, _last_selection = (pin, reason), chosen
        _fixer_states.clear()
        if pin is None:
            logger.warning("simplejwt_patches: %s", reason)
        else:
            by_id = {c.fixer.id: c for c in chosen.choices}
            for fx in _dependency_order([c.fixer for c in chosen.choices]):
                skip = by_id[fx.id].skip
                if skip and fx.id not in get_options().disable:
                    by = by_id[fx.id].selected_by
                    state = FixerStatus(fx.id, fx.target, "skipped", skip, fx.summary, fx.kind, by)
                else:
                    state = _install(fx, by_id[fx.id].selected_by, _fixer_states, proven)
                _fixer_states[fx.id] = state
                _complete_imported()
                if state.state in ("skipped", "failed"):
                    logger.warning("simplejwt_patches: fixer %s %s: %s", fx.id, state.state, state.reason)
                else:
                    logger.debug("simplejwt_patches: fixer %s %s: %s", fx.id, state.state, state.reason)
            from .clients import adopt_existing_clients

            adopt_existing_clients()
        _applied = True
        watch = _unwatched()
    _watch(watch)
    return status()


def revert() -> Status:
    """Undo every change ``apply()`` made, newest first, where the attribute is still ours."""
    global _applied, _selection
    with _lock:
        from .clients import release_all_clients

        release_all_clients()
        foreign: set[tuple[int, str]] = set()  # targets already reported (each fixer on one has an entry)
        while _changes:
            change = _changes.pop()
            if not change.undo() and (id(change.owner), change.attribute) not in foreign:
                foreign.add((id(change.owner), change.attribute))
                logger.warning(
                    "simplejwt_patches: not reverting %s.%s (%s): it was replaced by someone else",
                    getattr(change.owner, "__qualname__", type(change.owner).__name__),
                    change.attribute,
                    change.fixer_id,
                )
        _fixer_states.clear()
        _pending.clear()  # a later import of their modules wraps nothing (wrapt's hooks cannot be unregistered)
        _applied = False
        _selection = (None, "reverted")
        return status()


def selection() -> Selection | None:
    """The selection behind the last ``apply()`` (fingerprint verdicts for W031/W032), if any."""
    with _lock:
        return _last_selection if _applied else None


def is_applied() -> bool:
    """Whether ``apply()`` ran (and ``revert()`` has not run since)."""
    return _applied


def changes() -> list[Change]:
    """A copy of the undo log (for tests and the contract suite)."""
    with _lock:
        return list(_changes)


def status() -> Status:
    """Versions, the selected patch set and each fixer's state."""
    from .clients import managed_client_count

    with _lock:
        _complete_imported()  # imported by a path our post-import hook missed: wrapped (or failed) now
        pin, reason = _selection
        options = get_options()
        django = distribution_version("Django")
        sj = simplejwt_version()
        return Status(
            applied=_applied,
            simplejwt=str(sj) if sj else None,
            pyjwt=str(pyjwt_caps().version) if pyjwt_caps().version else None,
            django=str(django) if django else None,
            patch_set=pin.simplejwt if pin else None,
            patch_set_reason=reason,
            fixers=tuple(_fixer_states[i] for i in REGISTRY.ids() if i in _fixer_states),
            managed_clients=managed_client_count(),
            options={**options.shown(), "pyjwt_capabilities": pyjwt_caps().as_dict()},
            realms=_realm_statuses(options),
        )


def _realm_statuses(options: Any) -> tuple[RealmStatus, ...]:
    """``status().realms``; :mod:`.realm_status` is imported only with ``ISSUERS`` set (it is not free:
    ``apply()`` returns ``status()``, and the first one runs at startup)."""
    if options.issuers is None:
        return ()
    from .realm_status import realm_statuses

    return realm_statuses(options)
