"""Declaring fixers: what a fixer wraps, which releases it is for, what it requires.

A fixer is one or more wrapt wrappers ``(wrapped, instance, args, kwargs)`` (its *patches*, one per
upstream callable it wraps) plus the facts needed to apply it safely:

* ``simplejwt``: the half-open range of SimpleJWT releases it applies to, commented
  INCLUDING/EXCLUDING where it is declared. This range is the **only** table of which fixer
  applies to which release: the pin table (:mod:`simplejwt_patches.pins`) derives its patch sets
  from it.
* ``kind``: :data:`SECURITY`, :data:`FUNCTIONAL` or :data:`DIAGNOSTICS`.
* ``requires``: the fixers it cannot work without. A fixer may only require fixers at least as
  critical as itself (a security fix never rides on a diagnostics one); the catalogue refuses
  anything else when it is built.
* ``lazy`` (per patch): when the target's module is not imported yet at ``apply()``, wrap it when
  that module is first imported (a wrapt post-import hook) instead of importing it. Only for an
  attribute upstream looks up at call time (a method found on its class by ``self.method(...)``):
  the hook runs right after the module's own code, so only an object the module (or a module it
  imports circularly) captured while executing (``handlers = {"x": Owner.method}``) would keep the
  original. Everything else stays
  eager (the default): the module is imported and the target wrapped inside ``apply()``. All
  patches on one target must agree (:meth:`Registry.validate`).

The registry refuses a fixer without a docstring (it says *why* the patch exists and which
upstream release fixed or broke what) and refuses duplicate ids. The fixers themselves are
declared in :mod:`simplejwt_patches.patches`; :mod:`simplejwt_patches.catalog` imports them all
before anything can query them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from packaging.specifiers import SpecifierSet
from packaging.version import Version

__all__ = [
    "DIAGNOSTICS",
    "FUNCTIONAL",
    "KINDS",
    "SECURITY",
    "Fixer",
    "Kind",
    "Patch",
    "Registry",
    "WrapperFunc",
    "also",
    "complete_lazy",
    "declared",
    "fixer",
    "set_lazy_completer",
]

WrapperFunc = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
F = TypeVar("F", bound=WrapperFunc)

Kind = Literal["security", "functional", "diagnostics"]
SECURITY: Kind = "security"  # without it, a token that must be rejected is accepted
FUNCTIONAL: Kind = "functional"  # without it, valid tokens are rejected or requests fail (500, 403, hangs)
DIAGNOSTICS: Kind = "diagnostics"  # without it, failures are less explained (causes, logs, signals)
#: Kinds from most to least critical; a fixer may require only fixers of its own rank or above.
KINDS: tuple[Kind, ...] = (SECURITY, FUNCTIONAL, DIAGNOSTICS)


@dataclass(frozen=True)
class Patch:
    """One upstream callable a fixer wraps."""

    module: str  # upstream module holding the owner, e.g. "rest_framework_simplejwt.tokens"
    path: str  # dotted attribute path inside it, e.g. "Token.__init__"
    params: tuple[str, ...]  # leading parameter names the upstream callable must have
    wrapper: WrapperFunc
    lazy: bool = False  # wrap when ``module`` is first imported, if it is not imported at apply()

    @property
    def target(self) -> str:
        """``module:Owner.attribute``, as shown by ``status()``."""
        return f"{self.module}:{self.path}"

    @property
    def qualname(self) -> str:
        """``Owner.attribute``, the name system checks and the doctor use."""
        return self.path

    def shape_error(self, original: object) -> str | None:
        """Why ``original`` is not the callable this patch was written for, or ``None``."""
        func = getattr(original, "__func__", original)  # staticmethod/classmethod objects
        if not callable(func):
            return f"{self.target} is {type(original).__name__}, not callable"
        try:
            names = tuple(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            return f"{self.target} has no inspectable signature"
        if names[: len(self.params)] != self.params:
            return f"{self.target} has parameters {names}, expected them to start with {self.params}"
        return None


@dataclass(frozen=True)
class Fixer:
    """A declared fix: its patches, the releases it applies to and what it needs."""

    id: str
    kind: Kind
    simplejwt: SpecifierSet  # releases this fixer applies to (half-open range)
    patches: tuple[Patch, ...]
    requires: tuple[str, ...]
    doc: str

    @property
    def targets(self) -> tuple[str, ...]:
        """``module:Owner.attribute`` of every patch."""
        return tuple(p.target for p in self.patches)

    @property
    def target(self) -> str:
        """The targets joined for display."""
        return ", ".join(self.targets)

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        return self.doc.strip().splitlines()[0]

    def applies_to(self, version: Version) -> bool:
        """Whether this fixer's release range contains ``version``."""
        return self.simplejwt.contains(version, prereleases=True)


class Registry:
    """Ordered, duplicate-free collection of fixers."""

    def __init__(self, fixers: Iterable[Fixer] = ()) -> None:
        self._fixers: dict[str, Fixer] = {}
        for fx in fixers:
            self.register(fx)

    def register(self, fx: Fixer) -> Fixer:
        """Add a fixer; duplicate ids and missing docstrings are programming errors."""
        if fx.id in self._fixers:
            raise ValueError(f"duplicate fixer id {fx.id!r}")
        if not fx.doc or not fx.doc.strip():
            raise ValueError(f"fixer {fx.id!r} needs a docstring saying why it exists")
        if fx.kind not in KINDS:
            raise ValueError(f"fixer {fx.id!r} has unknown kind {fx.kind!r}")
        self._fixers[fx.id] = fx
        return fx

    def add_patch(self, fixer_id: str, patch: Patch) -> None:
        """Give an already registered fixer one more patch."""
        fx = self.get(fixer_id)
        self._fixers[fixer_id] = replace(fx, patches=(*fx.patches, patch))

    def validate(self) -> None:
        """Every requirement exists and is at least as critical as the fixer requiring it; the
        patches on one target are all lazy or all eager (chained in registration order either way)."""
        lazy: dict[str, tuple[bool, str]] = {}
        for fx in self._fixers.values():
            for patch in fx.patches:
                first = lazy.setdefault(patch.target, (patch.lazy, fx.id))
                if first[0] != patch.lazy:
                    pair = f"{first[1]!r} and {fx.id!r}"
                    raise ValueError(f"{patch.target} is wrapped lazily by one of {pair} and eagerly by the other")
        for fx in self._fixers.values():
            for needed in fx.requires:
                if needed not in self._fixers:
                    raise ValueError(f"fixer {fx.id!r} requires unknown fixer {needed!r}")
                if KINDS.index(self._fixers[needed].kind) > KINDS.index(fx.kind):
                    raise ValueError(
                        f"{fx.kind} fixer {fx.id!r} must not require {self._fixers[needed].kind} fixer {needed!r}"
                    )

    def get(self, fixer_id: str) -> Fixer:
        """The fixer with this id (``KeyError`` when unknown)."""
        return self._fixers[fixer_id]

    def ids(self) -> list[str]:
        """Ids in registration order."""
        return list(self._fixers)

    def for_release(self, version: Version) -> list[Fixer]:
        """The fixers whose range contains ``version``, in registration order."""
        return [fx for fx in self._fixers.values() if fx.applies_to(version)]

    def required_by(self, fixer_id: str) -> list[str]:
        """Ids of the fixers that require ``fixer_id``."""
        return [fx.id for fx in self._fixers.values() if fixer_id in fx.requires]

    def __iter__(self) -> Iterator[Fixer]:
        return iter(list(self._fixers.values()))

    def __len__(self) -> int:
        return len(self._fixers)

    def __contains__(self, fixer_id: object) -> bool:
        return fixer_id in self._fixers


#: Filled by the ``@fixer`` declarations in :mod:`simplejwt_patches.patches`. Query the complete,
#: validated registry through :data:`simplejwt_patches.catalog.REGISTRY`, never this one.
_DECLARED = Registry()


_completer: list[Callable[[], tuple[Any, ...]]] = []


def set_lazy_completer(completer: Callable[[], tuple[Any, ...]]) -> None:
    """The patcher's way to wrap lazy targets whose module got imported past its post-import hook."""
    _completer[:] = [completer]


def complete_lazy() -> tuple[Any, ...]:
    """Wrap the lazy targets whose module is imported though the post-import hook did not run for it (a
    finder inserted before wrapt's, ``sys.modules`` injection): the upstream callables wrapped now, ``()``
    when none (or nothing waits). For a fixer's eager wrapper, off its warm path."""
    return _completer[0]() if _completer else ()


def declared() -> Registry:
    """The declarations made so far (for :mod:`simplejwt_patches.catalog` only)."""
    return _DECLARED


def fixer(
    fixer_id: str,
    *,
    target: str,
    params: tuple[str, ...],
    simplejwt: str,
    kind: Kind,
    requires: tuple[str, ...] = (),
    lazy: bool = False,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Declare the decorated wrapt wrapper as fixer ``fixer_id``, patching ``module:Owner.attr``.

    The wrapper's docstring is the fixer's documentation (required). ``lazy``: see :class:`Patch`.
    """
    module, _, path = target.partition(":")

    def decorate(func: F) -> F:
        (registry if registry is not None else _DECLARED).register(
            Fixer(
                id=fixer_id,
                kind=kind,
                simplejwt=SpecifierSet(simplejwt),
                patches=(Patch(module, path, params, func, lazy),),
                requires=requires,
                doc=inspect.getdoc(func) or "",
            )
        )
        return func

    return decorate


def also(
    fixer_id: str, *, target: str, params: tuple[str, ...], lazy: bool = False, registry: Registry | None = None
) -> Callable[[F], F]:
    """Add the decorated wrapper to fixer ``fixer_id`` as one more patch (applied and reverted with it).

    ``lazy``: see :class:`Patch`.
    """
    module, _, path = target.partition(":")

    def decorate(func: F) -> F:
        (registry if registry is not None else _DECLARED).add_patch(fixer_id, Patch(module, path, params, func, lazy))
        return func

    return decorate
