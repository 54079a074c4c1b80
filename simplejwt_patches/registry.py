"""Declaring fixers: one decorated wrapper per upstream attribute it changes.

A fixer is a wrapt wrapper ``(wrapped, instance, args, kwargs)`` plus the facts needed to apply
it safely: the upstream attribute it wraps, the parameters that attribute must have, and the
SimpleJWT releases it is proven for (a half-open range, commented INCLUDING/EXCLUDING where it
is declared). PyJWT's capabilities (:func:`simplejwt_patches.versions.pyjwt_caps`) are read
inside the fixers, where they decide how a patch works.

The registry refuses a fixer without a docstring (the docstring says *why* the patch exists and
which upstream release fixed or broke what) and refuses duplicate ids.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from packaging.specifiers import SpecifierSet

__all__ = ["REGISTRY", "Fixer", "Registry", "WrapperFunc", "fixer"]

WrapperFunc = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
F = TypeVar("F", bound=WrapperFunc)


@dataclass(frozen=True)
class Fixer:
    """A declared patch."""

    id: str
    module: str  # upstream module holding the owner, e.g. "rest_framework_simplejwt.tokens"
    path: str  # dotted attribute path inside it, e.g. "Token.__init__"
    params: tuple[str, ...]  # leading parameter names the upstream callable must have
    simplejwt: SpecifierSet  # releases this fixer is proven for
    wrapper: WrapperFunc
    doc: str

    @property
    def target(self) -> str:
        """``module:Owner.attribute``, as shown by ``status()``."""
        return f"{self.module}:{self.path}"

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        return self.doc.strip().splitlines()[0]

    def shape_error(self, original: object) -> str | None:
        """Why ``original`` is not the callable this fixer was written for, or ``None``."""
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


class Registry:
    """Ordered, duplicate-free collection of fixers."""

    def __init__(self) -> None:
        self._fixers: dict[str, Fixer] = {}

    def register(self, fixer: Fixer) -> Fixer:
        """Add a fixer; duplicate ids and missing docstrings are programming errors."""
        if fixer.id in self._fixers:
            raise ValueError(f"duplicate fixer id {fixer.id!r}")
        if not fixer.doc or not fixer.doc.strip():
            raise ValueError(f"fixer {fixer.id!r} needs a docstring saying why it exists")
        self._fixers[fixer.id] = fixer
        return fixer

    def get(self, fixer_id: str) -> Fixer:
        """The fixer with this id (``KeyError`` when unknown)."""
        return self._fixers[fixer_id]

    def ids(self) -> list[str]:
        """Ids in registration order."""
        return list(self._fixers)

    def __iter__(self) -> Iterator[Fixer]:
        return iter(list(self._fixers.values()))

    def __len__(self) -> int:
        return len(self._fixers)


REGISTRY = Registry()


def fixer(
    fixer_id: str,
    *,
    target: str,
    params: tuple[str, ...],
    simplejwt: str,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Declare the decorated wrapt wrapper as fixer ``fixer_id`` for ``module:Owner.attr``."""
    module, _, path = target.partition(":")

    def decorate(func: F) -> F:
        (registry if registry is not None else REGISTRY).register(
            Fixer(
                id=fixer_id,
                module=module,
                path=path,
                params=params,
                simplejwt=SpecifierSet(simplejwt),
                wrapper=func,
                doc=inspect.getdoc(func) or "",
            )
        )
        return func

    return decorate
