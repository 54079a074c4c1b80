"""Normalised fingerprints of the upstream callables the fixers wrap.

Why: a fixer is written against the *code* of an upstream method, not against a version number.
When a SimpleJWT release nobody has pinned yet ships a method whose code is unchanged, the fixer
written for it is exactly as correct as on the release it was proven on; when a pinned version
number carries edited code (a fork, a vendored copy, a local hot-fix), the fixer may no longer be.

A fingerprint ignores what cannot change behaviour: docstrings, comments, formatting and type
annotations. It is the sha256 (first 16 hex digits) of a dump of the function's AST after

* dropping the docstring statement of the function and of every nested function/class,
* dropping every annotation (arguments, returns; ``x: T = v`` becomes ``x = v``, a bare
  ``x: T`` is dropped),
* dumping with field names, without positions, and without fields that are ``None`` or empty
  lists - so the dump is the same on Python 3.10-3.13 (3.12 added ``type_params``, 3.13 changed
  ``ast.dump``'s defaults), which lets a table computed once by the tool be checked everywhere.

The same normalisation runs on the source of an installed function (``inspect.getsource`` of the
unwrapped function) and on a node found in a release's sdist without importing it (the pin tool),
so both sides compare equal exactly when the code is the same.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import textwrap
from collections.abc import Iterable
from types import CodeType
from typing import Any

__all__ = [
    "SIMPLEJWT_PACKAGE",
    "SourceUnavailable",
    "fingerprint_installed",
    "fingerprint_node",
    "fingerprint_source",
    "find_definition",
    "simplejwt_qualnames",
]

#: Only SimpleJWT's own code is fingerprinted; PyJWT targets stay gated on capabilities.
SIMPLEJWT_PACKAGE = "rest_framework_simplejwt"

_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef
_cache: dict[CodeType, str] = {}


class SourceUnavailable(Exception):
    """The source of an upstream callable cannot be read (bytecode-only install)."""


def simplejwt_qualnames(targets: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The ``Owner.attr`` names among ``(module, path)`` targets that are SimpleJWT code, in order."""
    out: list[str] = []
    for module, path in targets:
        if (module == SIMPLEJWT_PACKAGE or module.startswith(SIMPLEJWT_PACKAGE + ".")) and path not in out:
            out.append(path)
    return tuple(out)


class _Strip(ast.NodeTransformer):
    """Removes docstrings and annotations (see the module docstring for why)."""

    @staticmethod
    def _drop_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            body = body[1:] or [ast.Pass()]
        return body

    def _function(self, node: _FuncNode) -> ast.AST:
        node.body = self._drop_docstring(node.body)
        node.returns = None
        node.type_comment = None
        self.generic_visit(node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:  # noqa: N802 - ast API
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:  # noqa: N802 - ast API
        return self._function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:  # noqa: N802 - ast API
        node.body = self._drop_docstring(node.body)
        self.generic_visit(node)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.annotation = None
        node.type_comment = None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:  # noqa: N802 - ast API
        if node.value is None:
            return None
        return ast.Assign(targets=[node.target], value=self.visit(node.value), type_comment=None)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):  # a dropped bare annotation may empty a block
            block = getattr(node, name, None)
            if isinstance(block, list) and name == "body" and not block:
                setattr(node, name, [ast.Pass()])
        return node


def _dump(node: Any) -> str:
    """``ast.dump`` with field names, no positions, no ``None``/empty fields (version-stable)."""
    if isinstance(node, ast.AST):
        parts = []
        for name in node._fields:
            value = getattr(node, name, None)
            if value is None or value == []:
                continue
            parts.append(f"{name}={_dump(value)}")
        return f"{type(node).__name__}({', '.join(parts)})"
    if isinstance(node, list):
        return "[" + ", ".join(_dump(item) for item in node) + "]"
    return repr(node)


def fingerprint_node(node: ast.AST) -> str:
    """Fingerprint of a parsed function definition (the node is not modified)."""
    stripped = _Strip().visit(copy.deepcopy(node))
    return hashlib.sha256(_dump(stripped).encode()).hexdigest()[:16]


def fingerprint_source(source: str) -> str:
    """Fingerprint of the source text of one function definition (indented or not)."""
    tree = ast.parse(textwrap.dedent(source))
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise ValueError("expected exactly one function definition")
    return fingerprint_node(tree.body[0])


def find_definition(module_source: str, qualname: str) -> ast.AST | None:
    """The definition ``Owner.attr`` in a module's source, found without importing it."""
    scope: list[ast.stmt] = ast.parse(module_source).body
    found: ast.AST | None = None
    for part in qualname.split("."):
        found = None
        for stmt in scope:  # the last definition wins, as at import time
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == part:
                found = stmt
        if found is None:
            return None
        scope = found.body  # type: ignore[attr-defined]
    return found


def _unwrap(obj: Any) -> Any:
    """The upstream function under any wrapt/functools wrappers and static/classmethod objects."""
    for _ in range(64):
        obj = getattr(obj, "__func__", obj)
        inner = getattr(obj, "__wrapped__", None)
        if inner is None:
            return obj
        obj = inner
    return obj


def fingerprint_installed(obj: Any) -> str:
    """Fingerprint of an installed upstream callable, cached per code object.

    Raises :class:`SourceUnavailable` when its source cannot be read (``.pyc``-only installs).
    """
    func = _unwrap(obj)
    code = getattr(func, "__code__", None)
    if code is not None and code in _cache:
        return _cache[code]
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise SourceUnavailable(f"{getattr(func, '__qualname__', func)!s}: {exc}") from exc
    result = fingerprint_source(source)
    if code is not None:
        _cache[code] = result
    return result
