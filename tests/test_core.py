"""The sound core: one declaration per fact, no import cycles, every check id documented and tested."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest
from django.test import override_settings

from simplejwt_patches.checks import all_check_ids, check_settings, checks_markdown
from simplejwt_patches.conf import SCHEMA, build_options, settings_markdown
from tests.docs import section

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "simplejwt_patches"


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Module -> package modules it imports, counting imports inside functions and TYPE_CHECKING blocks."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_package else name.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # each name is a submodule, or else an attribute of ``target``
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            deps.update(t for t in targets if t in modules and t != name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    assert "simplejwt_patches.catalog" in graph and graph["simplejwt_patches.clients"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_docs_settings_table_is_generated_from_the_schema():
    assert section("settings-table") == settings_markdown().strip()


# -- house rules: small modules and classes, the doctor's parts, the package map (issue 17) ------------------

MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 150
#: Generated modules (not written by hand): exempt from the module size rule.
GENERATED = {"simplejwt_patches/proven.py"}  # make pin
#: Classes allowed over MAX_CLASS_LINES for now; each entry says why. An entry that no longer applies fails.
CLASS_SIZE_ALLOWED: set[str] = set()


def _class_sizes(source: str) -> dict[str, int]:
    """Class name -> lines, decorators included (nested classes too)."""
    sizes = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            sizes[node.name] = node.end_lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1
    return sizes


def test_no_hand_written_module_over_600_lines_and_no_class_over_150():
    modules = {p.relative_to(ROOT).as_posix(): p for p in PACKAGE.rglob("*.py")}
    assert GENERATED <= set(modules), "a generated module listed here no longer exists"
    assert all("Generated by" in modules[g].read_text()[:1000] for g in GENERATED)
    lines = {name: len(p.read_text().splitlines()) for name, p in modules.items() if name not in GENERATED}
    assert {name: n for name, n in lines.items() if n > MAX_MODULE_LINES} == {}
    sizes = {f"{_module_name(p)}.{c}": n for p in modules.values() for c, n in _class_sizes(p.read_text()).items()}
    assert {c: n for c, n in sizes.items() if n > MAX_CLASS_LINES and c not in CLASS_SIZE_ALLOWED} == {}
    stale = {c for c in CLASS_SIZE_ALLOWED if sizes.get(c, 0) <= MAX_CLASS_LINES}
    assert stale == set(), "no longer over the limit: remove from CLASS_SIZE_ALLOWED"


def test_the_size_rule_counts_classes_with_their_decorators():
    source = "@dataclass\nclass A:\n    x: int\n\n    def f(self):\n        class B:\n            pass\n"
    assert _class_sizes(source) == {"A": 7, "B": 2}


def _eager_imports(module: str, modules: dict[str, Path]) -> set[str]:
    """Package modules importing ``module`` loads: module-level imports (not in functions, not under TYPE_CHECKING)."""
    path = modules[module]
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])
            elif isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    target = ".".join(base[: len(base) - (node.level - 1)] + ([node.module] if node.module else []))
                found.update(t for t in [target, *(f"{target}.{a.name}" for a in node.names)] if t in modules)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)

    visit(ast.parse(path.read_text()).body)
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return (found | parents) & set(modules) - {module}


def test_checks_imports_the_doctors_probe_and_stack_only():
    """``check`` needs the probe and the stack; the report and the token checks are not even loaded for it."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = import_graph()
    doctor = {m for m in graph["simplejwt_patches.checks"] if m.startswith("simplejwt_patches.doctor")}
    assert doctor == {"simplejwt_patches.doctor.probe", "simplejwt_patches.doctor.stack"}
    loaded, todo = set(), list(doctor)
    while todo:
        module = todo.pop()
        if module not in loaded:
            loaded.add(module)
            todo.extend(_eager_imports(module, modules))
    parts = ("report", "token_checks", "verdict", "findings")
    assert "simplejwt_patches.doctor" in loaded
    assert not loaded & {f"simplejwt_patches.doctor.{p}" for p in parts}, sorted(loaded)


PACKAGE_MAP = ROOT / "docs" / "package-map.md"


def package_map() -> dict[str, list[str]]:
    """docs/package-map.md: module -> who may import it (``any``, ``none`` or patterns relative to the package)."""
    rows = {}
    for line in PACKAGE_MAP.read_text().splitlines():
        row = re.fullmatch(r"\| `(simplejwt_patches[\w.]*)` \| ([^|]+) \| ([^|]+) \|", line)
        if row:
            assert row[1] not in rows, f"{row[1]} is listed twice"
            rows[row[1]] = [name.strip() for name in row[3].split(",")]
    return rows


def test_the_package_map_lists_every_module_and_who_may_import_it():
    rows = package_map()
    assert sorted(rows) == sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))
    for module, importers in rows.items():
        assert importers in (["any"], ["none"]) or not {"any", "none"} & set(importers), module
    short = {m: m.removeprefix("simplejwt_patches.") for m in rows}
    wrong = [
        f"{importer} imports {module} (allowed: {', '.join(rows[module])})"
        for importer, deps in import_graph().items()
        for module in deps
        if rows[module] != ["any"] and not any(fnmatch(short[importer], pattern) for pattern in rows[module])
    ]
    assert wrong == []


def test_docs_check_table_is_generated_from_the_declarations():
    assert section("checks-table") == checks_markdown().strip()


def test_every_check_id_has_a_test():
    """Each id this package can report is asserted by some test (by its full id string)."""
    text = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    tested = set(re.findall(r"simplejwt_patches\.([EW]\d{3})", text))
    missing = sorted(set(all_check_ids()) - tested)
    assert not missing, f"check ids without a test: {missing}"


def test_every_setting_declares_each_fact_once():
    keys = [s.key for s in SCHEMA]
    assert len(keys) == len(set(keys))
    for s in SCHEMA:
        assert s.doc and s.check and re.fullmatch(r"[EW]\d{3}", s.check), s.key
        assert build_options({}).value(s.key) == s.fallback() or s.key in ("JWKS_HEADERS", "JWKS_SSL_CONTEXT")


@pytest.mark.parametrize("setting", SCHEMA, ids=lambda s: s.key)
def test_every_setting_reports_a_bad_value_under_its_own_check_id(setting):
    with override_settings(SIMPLE_JWT_PATCHES={setting.key: object()}):
        messages = check_settings()
    assert [m.id for m in messages] == [f"simplejwt_patches.{setting.check}"], setting.key
    assert setting.key in messages[0].msg


def test_shared_cache_alias_must_exist():
    """simplejwt_patches.E018: JWKS_SHARED_CACHE names a cache that is not in settings.CACHES."""
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "nope"}):
        messages = check_settings()
    assert [m.id for m in messages] == ["simplejwt_patches.E018"]
    assert "JWKS_SHARED_CACHE" in messages[0].msg and "'nope'" in messages[0].msg


def test_the_leak_detector_finds_a_logged_token_or_secret():
    import logging

    from tests.conftest import DETECTOR, SENSITIVE, register_sensitive_token

    token = register_sensitive_token("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFrLXRlc3QifQ.c2lnbmF0dXJlLW9mLWxlYWstdGVzdA")
    SENSITIVE.add("sjp-leak-test-secret-value")
    start = len(DETECTOR.records)
    log = logging.getLogger("simplejwt_patches.leaktest")
    log.warning("token=%s", token)
    log.warning("signature only: (%s)", token.split(".")[2])
    log.warning("header X-Key: sjp-leak-test-secret-value")
    log.warning("nothing to see: kid=abc sha256=0123456789ab")
    found = DETECTOR.leaks(start)
    del DETECTOR.records[start:]  # keep the autouse check of this test itself clean
    assert len(found) >= 3 and not any("nothing to see" in f for f in found)


def test_every_link_from_the_readme_into_docs_resolves():
    """``make docs`` checks links between the pages (``--strict``); the README is not one of them."""
    import re as _re

    from tests.docs import DOCS, README, heading_anchors

    text = README.read_text()
    links = _re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", text)
    assert links, "the README links into docs/"
    for target, anchor in links:
        path = README.parent / target
        assert path.is_file(), f"README links to missing {target}"
        if anchor:
            assert anchor in heading_anchors(path.read_text()), f"README links to {target}#{anchor}: no such heading"
    local = {a for a in _re.findall(r"\]\(#([^)\s]+)\)", text)}
    assert local <= heading_anchors(text), sorted(local - heading_anchors(text))
    assert len(text.splitlines()) <= 250, "the README is the front door: the reference belongs in docs/"
    assert {p.name for p in DOCS.glob("*.md")} <= set(
        _re.findall(r"^  - [^:]+: (\S+)$", (README.parent / "mkdocs.yml").read_text(), _re.M)
    )
