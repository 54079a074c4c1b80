"""Normalised fingerprints of the upstream callables the fixers wrap.

Why: a fixer is written against the *code* of an upstream method, not against a version number.
When a SimpleJWT release nobody has pinned yet ships a method whose code is unchanged, the fixer
written for it is exactly as correct as on the release it was proven on; when a pinned version
number carries edited code (a fork, a vendored copy, a local hot-fix), the fixer may no longer be.

A fingerprint ignores what cannot change behaviour: docstrings, comments, formatting and type
annotations. It is the sha256 (first 16 hex digits) of a dump of the function's AST after

* dropping the docstring statement of the function and of every nested function/class,
* dropping the annotations that cannot change behaviour: of arguments and returns, and of
  annotated assignments (``x: T = v`` becomes ``x = v``); a bare ``x: T`` inside a function body
  is kept without its ``T`` (it makes ``x`` local to the function, so a later read of a global
  ``x`` becomes an ``UnboundLocalError``), while one with a complex target (``self.x: T``) or in a
  class body only records an annotation and is dropped,
* dumping with field names, without positions, and without fields that are ``None`` or empty
  lists - so the dump is the same on Python 3.10-3.13 (3.12 added ``type_params``, 3.13 changed
  ``ast.dump``'s defaults), which lets a table computed once by the tool be checked everywhere.

The same normalisation runs on the source of an installed function (``inspect.getsource`` of the
unwrapped function) and on a node found in a release's sdist without importing it (the pin tool),
so both sides compare equal exactly when the code is the same.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import linecache
import re
import textwrap
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from types import CodeType
from typing import Any

from .proven import SOURCE_TEXTS

__all__ = [
    "SIMPLEJWT_PACKAGE",
    "SourceUnavailable",
    "block_lines",
    "clear_cache",
    "definition_start",
    "find_definition",
    "fingerprint_installed",
    "fingerprint_node",
    "fingerprint_source",
    "fingerprint_unimported",
    "simplejwt_qualnames",
    "text_hash",
]

#: Only SimpleJWT's own code is fingerprinted; PyJWT targets stay gated on capabilities.
SIMPLEJWT_PACKAGE = "rest_framework_simplejwt"

_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef
_cache: dict[CodeType, str] = {}
_origins: dict[str, ModuleSpec] = {}  # module name -> its spec, for modules proven before their import


class SourceUnavailable(Exception):
    """The source of an upstream callable cannot be read (bytecode-only install)."""


def simplejwt_qualnames(targets: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The ``Owner.attr`` names among ``(module, path)`` targets that are SimpleJWT code, in order."""
    out: list[str] = []
    for module, path in targets:
        if (module == SIMPLEJWT_PACKAGE or module.startswith(SIMPLEJWT_PACKAGE + ".")) and path not in out:
            out.append(path)
    return tuple(out)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


_SKIPPED: dict[type, frozenset[str]] = {
    ast.FunctionDef: frozenset({"returns", "type_comment"}),
    ast.AsyncFunctionDef: frozenset({"returns", "type_comment"}),
    ast.arg: frozenset({"annotation", "type_comment"}),
    ast.AnnAssign: frozenset({"annotation"}),  # a bare ``x: T`` kept in a function body: only ``x`` counts
}
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _dropped(stmt: ast.stmt, in_function: bool) -> bool:
    """Whether a statement is an annotation that binds nothing (``self.x: T``, or ``x: T`` outside a function)."""
    return isinstance(stmt, ast.AnnAssign) and stmt.value is None and not (in_function and stmt.simple)


def _dump(node: Any, out: list[str], in_function: bool = False) -> None:
    """Serialise ``node`` into ``out``, normalised in the same pass (no copy, no transformer).

    Like ``ast.dump(annotate_fields=True, include_attributes=False)`` but without fields that are
    ``None`` or empty (3.13's default, applied on every version), without docstrings and
    annotations. A single pass keeps a fingerprint well under a millisecond (``apply()`` budget).
    """
    if isinstance(node, ast.AST):
        if isinstance(node, ast.AnnAssign) and node.value is not None:  # ``x: T = v`` is ``x = v``
            node = ast.Assign(targets=[node.target], value=node.value)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function = True
        elif isinstance(node, ast.ClassDef):
            in_function = False
        skipped = _SKIPPED.get(type(node), frozenset())
        out.append(type(node).__name__ + "(")
        for name in node._fields:
            if name in skipped:
                continue
            value = getattr(node, name, None)
            if value is None or value == []:
                continue
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                if name == "body" and isinstance(node, _DEFS) and _is_docstring(value[0]):
                    value = value[1:]
                value = [v for v in value if not _dropped(v, in_function)]
                if not value:
                    if name != "body":
                        continue
                    value = [ast.Pass()]
            out.append(name + "=")
            _dump(value, out, in_function)
            out.append(",")
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        for item in node:
            _dump(item, out, in_function)
            out.append(",")
        out.append("]")
    else:
        out.append(repr(node))


def fingerprint_node(node: ast.AST) -> str:
    """Fingerprint of a parsed function definition (the node is not modified)."""
    out: list[str] = []
    _dump(node, out)
    return hashlib.sha256("".join(out).encode()).hexdigest()[:16]


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


def block_lines(lines: list[str], start: int) -> list[str]:
    """The lines of the definition starting at index ``start``: up to the first dedent.

    ``inspect.getsource`` tokenizes to find the end of the block, about as slow as the parse
    itself; the indentation rule is exact for ordinary methods (comment lines do not end a block).
    The pin tool cuts a release's source with this same rule, so both sides hash the same text.
    """
    first = lines[start]
    indent = len(first) - len(first.lstrip())
    end = start + 1
    while end < len(lines):
        line = lines[end]
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#") and len(line) - len(stripped) <= indent:
            break
        end += 1
    return lines[start:end]


def definition_start(node: ast.AST) -> int:
    """Index of the first line of a parsed definition, decorators included (``co_firstlineno - 1``)."""
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    lineno: int = getattr(node, "lineno", 1)
    return min([lineno, *(d.lineno for d in decorators)]) - 1


def text_hash(text: str) -> str:
    """sha256 (16 hex digits) of a definition's exact source text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _fast(func: Any, code: CodeType | None) -> str | None:
    """Fingerprint from the source lines under ``co_firstlineno``, or ``None`` without them.

    Text byte-identical to a pinned release's (the common case: an unmodified install) is looked
    up in the generated :data:`~simplejwt_patches.proven.SOURCE_TEXTS` instead of being parsed:
    the first ``apply()`` in a process stays well under its 5 ms budget. Anything else is parsed
    and normalised; a block the indentation rule gets wrong fails to parse as one definition
    (``SyntaxError``/``ValueError``), which falls back to inspect.
    """
    if code is None:
        return None
    lines = linecache.getlines(code.co_filename, getattr(func, "__globals__", None))
    if not lines:
        return None
    text = "".join(block_lines(lines, code.co_firstlineno - 1))
    known = SOURCE_TEXTS.get(text_hash(text))
    return known if known is not None else fingerprint_source(text)


def clear_cache() -> None:
    """Forget computed fingerprints (``make bench`` times the cold path of ``apply()``)."""
    _cache.clear()
    _origins.clear()


def fingerprint_installed(obj: Any) -> str:
    """Fingerprint of an installed upstream callable, cached per code object.

    Raises :class:`SourceUnavailable` when its source cannot be read (``.pyc``-only installs).
    """
    func = _unwrap(obj)
    code = getattr(func, "__code__", None)
    if code is not None and code in _cache:
        return _cache[code]
    try:
        result = _fast(func, code)
    except (SyntaxError, ValueError, IndexError):  # unusual layout: let inspect find the block
        result = None
    if result is None:
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError) as exc:
            raise SourceUnavailable(f"{getattr(func, '__qualname__', func)!s}: {exc}") from exc
        result = fingerprint_source(source)
    if code is not None:
        _cache[code] = result
    return result


_HEADER = re.compile(r"(?:class|def|async\s+def)\s+(\w+)")


def _scan(lines: list[str], qualname: str) -> int | None:
    """Index of the first line (decorators included) of ``Owner.attr`` found by indentation alone.

    The last header of each name at the scope's indentation wins, as at import time. Only a hint:
    its text counts when it is a proven release's (:data:`~simplejwt_patches.proven.SOURCE_TEXTS`);
    anything else is parsed in full.
    """
    lo, hi, indent, found = 0, len(lines), 0, None
    for depth, part in enumerate(qualname.split(".")):
        if depth:
            body = next((ln for ln in lines[lo:hi] if ln.strip() and not ln.lstrip().startswith("#")), None)
            if body is None or len(body) - len(body.lstrip()) <= indent:
                return None
            indent = len(body) - len(body.lstrip())
        prefix, found = " " * indent, None
        for i in range(lo, hi):
            line = lines[i]
            if line.startswith(prefix) and line[indent : indent + 1] in ("c", "d", "a"):
                header = _HEADER.match(line, indent)
                if header is not None and header.group(1) == part:
                    found = i
        if found is None:
            return None
        lo, hi = found + 1, found + len(block_lines(lines, found))
    assert found is not None
    while found > 0 and lines[found - 1].startswith(prefix + "@"):
        found -= 1
    return found


def fingerprint_unimported(module: str, qualname: str) -> str | None:
    """Fingerprint of ``Owner.attr`` in ``module`` read from its source file, without importing it.

    For targets wrapped when their module is first imported (lazy patches): ``apply()`` proves them
    as it proves the imported ones, at the cost of a file read (the parent package is imported to
    find the file). ``None`` when the module or the definition does not exist; raises
    :class:`SourceUnavailable` when the module has no readable ``.py`` source. The lines go through
    :mod:`linecache`, which :func:`fingerprint_installed` reads once the module is imported.
    """
    if not all(part.isidentifier() for part in qualname.split(".")):
        return None
    spec = _origins.get(module)
    if spec is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        _origins[module] = spec
    origin = spec.origin or ""
    # the module's globals to be: linecache asks its loader for the source of a file it cannot stat (zipimport)
    found = {"__name__": module, "__loader__": spec.loader, "__spec__": spec}
    lines = linecache.getlines(origin, found) if origin.endswith(".py") else []
    if not lines:
        raise SourceUnavailable(f"{module}: no Python source ({origin or 'no file'})")
    start = _scan(lines, qualname)
    if start is not None:
        known = SOURCE_TEXTS.get(text_hash("".join(block_lines(lines, start))))
        if known is not None:
            return known
    node = find_definition("".join(lines), qualname)
    return fingerprint_node(node) if node is not None else None
