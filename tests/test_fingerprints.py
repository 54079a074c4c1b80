"""Fingerprints: normalisation, the generated proven table, and the ``proven`` policy end to end.

The in-process tests run in every matrix cell. The subprocess tests build SimpleJWT releases from
the newest pinned release's sdist (downloaded with pip into a temp dir, never committed), rewrite
the patched methods programmatically, and run a fresh Django project on them; they run only in
the newest-release cell to keep CI time small.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

import simplejwt_patches
from simplejwt_patches import selection as selection_module
from simplejwt_patches.catalog import REGISTRY
from simplejwt_patches.checks import check_disable, check_fingerprints, check_patches, check_version
from simplejwt_patches.fingerprints import (
    SourceUnavailable,
    find_definition,
    fingerprint_installed,
    fingerprint_node,
    fingerprint_source,
)
from simplejwt_patches.pinning import pip_command, source_fingerprints, targets
from simplejwt_patches.pins import PINS, find_pin, latest_pin
from simplejwt_patches.proven import PROVEN
from simplejwt_patches.versions import simplejwt_version
from tests.conftest import register_sensitive_token
from tests.helpers import in_newest_cell, newest_cell_only
from tests.idp import Mode

ROOT = Path(__file__).parent.parent
PROBE = ROOT / "tests" / "project" / "fp_probe.py"


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES=options)


# -- normalisation -------------------------------------------------------------------------------

BASE = '''
def f(self, token: "str | None" = None, *, verify: bool = True) -> None:
    """The docstring."""
    x: int = 1
    y: int
    if verify:
        return g(token, x)
    return None
'''
COSMETIC = """
def f(self, token=None, *, verify=True):
    # a comment where the docstring was

    x = 1
    y: "another annotation"

    if verify:  # trailing comment
        return g(
            token,
            x,
        )
    return None
"""
SEMANTIC = BASE.replace("g(token, x)", "g(token, x + 1)")
METHOD = "class C:\n    " + BASE.strip().replace("\n", "\n    ") + "\n"


def test_docstrings_comments_blank_lines_and_annotations_do_not_count():
    assert fingerprint_source(BASE) == fingerprint_source(COSMETIC)
    assert len(fingerprint_source(BASE)) == 16


def test_a_bare_annotation_in_a_function_body_counts():
    """Issue 16 point 12: ``name: T`` alone makes ``name`` local (a later read of the global is an
    ``UnboundLocalError``), so adding or removing one changes the fingerprint; its ``T`` does not."""
    without = BASE.replace("    y: int\n", "")
    assert fingerprint_source(without) != fingerprint_source(BASE)
    shadowing = BASE.replace("    y: int\n", "    g: type\n")
    assert fingerprint_source(shadowing) not in (fingerprint_source(BASE), fingerprint_source(without))
    namespace: dict[str, object] = {"g": lambda *args: args}
    exec(compile(textwrap.dedent(shadowing), "<fp-test>", "exec"), namespace)
    with pytest.raises(UnboundLocalError):
        namespace["f"](None, "t")  # type: ignore[operator]
    nested = BASE.replace("    y: int\n", "    if verify:\n        y: int\n")
    assert fingerprint_source(nested) != fingerprint_source(nested.replace("        y: int\n", "        pass\n"))
    # Annotations that bind nothing still do not count: a complex target, a class body.
    assert fingerprint_source(BASE.replace("    y: int\n", "    y: int\n    self.z: int\n")) == fingerprint_source(BASE)
    in_class = BASE.replace("    y: int\n", "    y: int\n    class K:\n        a: int\n        b = 1\n")
    assert fingerprint_source(in_class) == fingerprint_source(in_class.replace("        a: int\n", ""))


def test_a_semantic_change_counts():
    assert fingerprint_source(BASE) != fingerprint_source(SEMANTIC)
    assert fingerprint_source(BASE) != fingerprint_source(BASE.replace("verify: bool = True", "verify=False"))


def test_installed_source_and_sdist_source_agree():
    """The runtime (getsource of a method) and the tool (a node in a module) give one value."""
    node = find_definition(METHOD, "C.f")
    assert node is not None
    assert fingerprint_node(node) == fingerprint_source(BASE)
    assert find_definition(METHOD, "C.missing") is None
    namespace: dict[str, object] = {}
    exec(compile(BASE, "<fp-test>", "exec"), namespace)  # no file: source is not available
    with pytest.raises(SourceUnavailable):
        fingerprint_installed(namespace["f"])


# -- the generated table --------------------------------------------------------------------------


def test_proven_covers_exactly_the_pinned_releases():
    assert set(PROVEN) == {p.simplejwt for p in PINS}
    assert all(set(fps) == set(targets()) for fps in PROVEN.values())


def test_installed_release_matches_its_proven_fingerprints():
    """Regenerate the installed release's fingerprints from its installed source (`make pin` drift)."""
    version = simplejwt_version()
    if version is None or find_pin(version) is None:
        pytest.skip("installed SimpleJWT is not pinned")
    import rest_framework_simplejwt

    site = Path(rest_framework_simplejwt.__file__).parent.parent
    assert source_fingerprints(site) == PROVEN[find_pin(version).simplejwt]
    for qualname, module in targets().items():
        owner, _, attr = qualname.partition(".")
        obj = getattr(importlib.import_module(module), owner).__dict__[attr]
        assert fingerprint_installed(obj) == PROVEN[find_pin(version).simplejwt][qualname], qualname


def test_an_unmodified_install_is_recognised_by_its_source_text_and_agrees_with_the_parse():
    """The fast path (hash of the exact text, no parse) gives what the normalised AST gives."""
    import linecache

    from simplejwt_patches.fingerprints import _unwrap, block_lines, fingerprint_source, text_hash
    from simplejwt_patches.proven import SOURCE_TEXTS

    version = simplejwt_version()
    if version is None or find_pin(version) is None:
        pytest.skip("installed SimpleJWT is not pinned")
    for qualname, module in targets().items():
        owner, _, attr = qualname.partition(".")
        func = _unwrap(getattr(importlib.import_module(module), owner).__dict__[attr])
        text = "".join(block_lines(linecache.getlines(func.__code__.co_filename), func.__code__.co_firstlineno - 1))
        assert SOURCE_TEXTS.get(text_hash(text)) == fingerprint_source(text), qualname
        # A cosmetic edit misses the table and is parsed: same fingerprint, by the slow path.
        edited = text.replace("\n", "\n\n", 1)
        assert text_hash(edited) not in SOURCE_TEXTS
        assert fingerprint_source(edited) == fingerprint_source(text), qualname


def test_pinned_release_says_how_each_fixer_was_selected():
    status = simplejwt_patches.status()
    pin = find_pin(status.simplejwt)
    assert pin is not None
    assert {f.id for f in status.fixers} == set(pin.fixers)
    assert all(f.selected_by == f"pinned release {pin.simplejwt}" for f in status.fixers)
    assert check_fingerprints() == []


# -- the proven policy in process --------------------------------------------------------------


@pytest.fixture
def unpinned_release(tmp_path, monkeypatch):
    """Make importlib.metadata report SimpleJWT 9.9.9 over the installed code."""
    dist = tmp_path / "djangorestframework_simplejwt-9.9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: djangorestframework-simplejwt\nVersion: 9.9.9\n")
    installed = find_pin(simplejwt_version())
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    simplejwt_patches.revert()
    yield installed
    monkeypatch.undo()
    importlib.invalidate_caches()
    simplejwt_patches.revert()


def test_unpinned_release_with_unchanged_code_is_proven_by_fingerprint(unpinned_release):
    with patches():
        status = simplejwt_patches.apply()
        assert check_version() == [] and check_fingerprints() == [] and check_patches() == []
    assert status.simplejwt == "9.9.9"
    assert "proven by fingerprint of release" in status.patch_set_reason
    applied = {f.id for f in status.fixers if f.state == "applied"}
    assert applied == set(unpinned_release.fixers)
    for f in status.fixers:
        if selection_module.sj_targets(REGISTRY.get(f.id)):
            assert f.selected_by.startswith("proven by fingerprint of release "), f


@pytest.mark.parametrize("policy", ["proven", "latest"])
def test_disable_is_honoured_on_an_unpinned_release(unpinned_release, policy):
    with patches(UNKNOWN_VERSION=policy, DISABLE=["pyjwt.client.transport"]):  # a fixer nothing requires
        status = simplejwt_patches.apply()
        assert check_disable() == []  # no E016, no E019
    states = {f.id: f.state for f in status.fixers}
    assert states["pyjwt.client.transport"] == "disabled"
    assert states["backend.verifying-key.jwks-errors"] == "applied"


def test_edited_pinned_release_is_reported_and_the_fixer_skipped(monkeypatch):
    pin = find_pin(simplejwt_version())
    monkeypatch.setitem(PROVEN[pin.simplejwt], "Token.__init__", "0" * 16)  # as if the code had been edited
    simplejwt_patches.revert()
    try:
        status = simplejwt_patches.apply()
        messages = check_fingerprints()
        w030 = check_patches()
    finally:
        monkeypatch.undo()
        simplejwt_patches.revert()
    wraps_init = {fx.id for fx in REGISTRY.for_release(pin.version) if "Token.__init__" in fx.target}
    states = {f.id: f for f in status.fixers}
    for fixer_id in wraps_init:
        assert states[fixer_id].state == "skipped"
        assert states[fixer_id].reason == f"Token.__init__ changed (last proven on {pin.simplejwt})"
    assert states["backend.verifying-key.jwks-errors"].state == "applied"
    assert ids(messages) == ["simplejwt_patches.W031"] * len(wraps_init)
    assert all("Token.__init__" in m.msg for m in messages)
    assert w030 == []  # reported once, by W031


def _no_source(obj: object) -> str:
    raise SourceUnavailable("bytecode-only install")


def test_source_not_available_falls_back_to_the_version_rule(monkeypatch, unpinned_release):
    monkeypatch.setattr(selection_module, "fingerprint_installed", _no_source)
    with patches():
        status = simplejwt_patches.apply()
        assert ids(check_fingerprints()) == ["simplejwt_patches.W032"]
    assert status.fixers == () and "source not available" in status.patch_set_reason


def test_source_not_available_on_a_pinned_release_applies_per_ranges(monkeypatch):
    monkeypatch.setattr(selection_module, "fingerprint_installed", _no_source)
    simplejwt_patches.revert()
    try:
        status = simplejwt_patches.apply()
        messages = check_fingerprints()
    finally:
        monkeypatch.undo()
        simplejwt_patches.revert()
    assert {f.id for f in status.fixers if f.state == "applied"} == set(find_pin(status.simplejwt).fixers)
    assert ids(messages) == ["simplejwt_patches.W032"]
    assert "fell back to the version rule" in messages[0].msg


# -- built releases in fresh processes (newest-release cell only) ----------------------------------

NEWEST = latest_pin()
IN_NEWEST_CELL = in_newest_cell()


def _rewrite_cosmetic(source: str, qualname: str) -> str:
    """Change docstring, comments, blank lines and annotations of one method, nothing else."""
    node = find_definition(source, qualname)
    assert isinstance(node, ast.FunctionDef), qualname
    lines = source.splitlines(keepends=True)
    body = node.body
    indent = " " * body[-1].col_offset
    if len(body) > 1:  # a comment and a blank line before the last statement
        lines[body[-1].lineno - 1 : body[-1].lineno - 1] = [f"{indent}# rewritten: comment only\n", "\n"]
    first = body[0]
    doc = f'{" " * first.col_offset}"""Rewritten docstring (cosmetic build)."""\n'
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines[first.lineno - 1 : first.end_lineno] = [doc]
    else:
        lines[first.lineno - 1 : first.lineno - 1] = [doc]
    for arg in sorted(node.args.args[1:] + node.args.kwonlyargs, key=lambda a: -a.col_offset):
        if arg.lineno != arg.end_lineno:
            continue
        line = lines[arg.lineno - 1]
        new = arg.arg if arg.annotation is not None else f'{arg.arg}: "object"'
        lines[arg.lineno - 1] = line[: arg.col_offset] + new + line[arg.end_col_offset :]
    return "".join(lines)


def _rewrite_bare_annotation(source: str, qualname: str) -> str:
    """A bare ``TokenError: type`` as the method's first statement: every later ``raise TokenError``
    becomes an ``UnboundLocalError`` (an HTTP 500), while only an annotation was added."""
    node = find_definition(source, qualname)
    assert isinstance(node, ast.FunctionDef)
    first = next(s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)))
    lines = source.splitlines(keepends=True)
    lines[first.lineno - 1 : first.lineno - 1] = [f"{' ' * first.col_offset}TokenError: type\n"]
    return "".join(lines)


def _rewrite_semantic(source: str, qualname: str) -> str:
    """One harmless but real change: an extra statement in the method body."""
    node = find_definition(source, qualname)
    assert isinstance(node, ast.FunctionDef)
    last = node.body[-1]
    lines = source.splitlines(keepends=True)
    lines[last.lineno - 1 : last.lineno - 1] = [f"{' ' * last.col_offset}self._sjp_edited = True\n"]
    return "".join(lines)


@pytest.fixture(scope="module")
def sdist_tree(tmp_path_factory) -> Path:
    """The newest pinned release's sdist, downloaded and unpacked into a temp dir."""
    tmp = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [*pip_command(), "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", str(tmp),
         f"djangorestframework-simplejwt=={NEWEST.simplejwt}"],
        check=True, timeout=120,
    )  # fmt: skip
    (sdist,) = tmp.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data") if sys.version_info >= (3, 12) else tar.extractall(tmp)
    (root,) = [p for p in tmp.iterdir() if p.is_dir()]
    return root / "rest_framework_simplejwt"


def build(sdist_tree: Path, dest: Path, version: str, *, semantic: str | None = None, edit=None) -> Path:
    """Install a rewritten copy as release ``version``: the package and its dist-info on a path.

    Every patched method changes cosmetically; ``semantic`` names one that also changes meaning
    (by ``edit``, default :func:`_rewrite_semantic`).
    """
    pkg = dest / "rest_framework_simplejwt"
    shutil.copytree(sdist_tree, pkg)
    for qualname, module in targets().items():
        path = dest.joinpath(*module.split(".")).with_suffix(".py")
        text = _rewrite_cosmetic(path.read_text(encoding="utf-8"), qualname)
        if qualname == semantic:
            text = (edit or _rewrite_semantic)(text, qualname)
        path.write_text(text, encoding="utf-8")
    dist = dest / f"djangorestframework_simplejwt-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: djangorestframework-simplejwt\nVersion: {version}\n")
    (dist / "top_level.txt").write_text("rest_framework_simplejwt\n")
    return dest


def probe(idp, site: Path, token: str) -> dict:
    env = {
        **os.environ,
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
        "SJP_SUBJECT": idp.subject,
        "SJP_TOKEN": token,
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
    }
    env.pop("SJP_APPS", None)
    env.pop("SJP_PATCHES", None)
    done = subprocess.run(
        [sys.executable, str(PROBE)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["simplejwt_file"].startswith(str(site)), result["simplejwt_file"]  # the built release ran
    return result


@newest_cell_only
def test_unpinned_release_with_cosmetic_changes_is_patched_in_full(idp, sdist_tree, tmp_path):
    site = build(sdist_tree, tmp_path, "5.6.0")
    cosmetic = (site / "rest_framework_simplejwt" / "tokens.py").read_text()
    assert "Rewritten docstring" in cosmetic and "# rewritten" in cosmetic and "verify: bool" not in cosmetic
    idp.mode = Mode.WAF
    ok = probe(idp, site, register_sensitive_token(idp.mint()))
    assert ok["simplejwt"] == "5.6.0"
    assert ok["status"] == 200, ok
    assert {f["id"]: f["state"] for f in ok["fixers"]} == {fid: "applied" for fid in NEWEST.fixers}
    assert f"proven by fingerprint of release {NEWEST.simplejwt}" in ok["patch_set_reason"]
    assert [c for c in ok["checks"] if c["id"].startswith("simplejwt_patches.W0")] == []
    idp.reset()
    idp.mode = Mode.FORBIDDEN
    denied = probe(idp, site, register_sensitive_token(idp.mint()))
    assert denied["status"] == 401
    names = [c["type"] for c in denied["causes"]]
    assert names[:3] == ["InvalidToken", "TokenError", "TokenBackendError"], names
    assert {"type": "HTTPError", "code": 403} in denied["causes"]


@newest_cell_only
def test_unpinned_release_with_a_changed_token_init_skips_its_fixers(idp, sdist_tree, tmp_path):
    site = build(sdist_tree, tmp_path, "5.6.0", semantic="Token.__init__")
    idp.mode = Mode.WAF
    result = probe(idp, site, register_sensitive_token(idp.mint()))
    assert result["status"] == 200, result
    fixers = {f["id"]: f for f in result["fixers"]}
    wraps_init = {fid for fid in NEWEST.fixers if "Token.__init__" in REGISTRY.get(fid).target}
    assert wraps_init
    for fid in wraps_init:
        assert fixers[fid]["state"] == "skipped"
        assert fixers[fid]["reason"] == f"Token.__init__ changed (last proven on {NEWEST.simplejwt})"
    assert all(f["state"] == "applied" for fid, f in fixers.items() if fid not in wraps_init)
    w031 = [c for c in result["checks"] if c["id"] == "simplejwt_patches.W031"]
    assert len(w031) == len(wraps_init) and all("Token.__init__" in c["msg"] for c in w031)


@newest_cell_only
def test_pinned_release_with_an_edited_method_is_reported(idp, sdist_tree, tmp_path):
    site = build(sdist_tree, tmp_path, NEWEST.simplejwt, semantic="Token.__init__")
    idp.mode = Mode.WAF
    result = probe(idp, site, register_sensitive_token(idp.mint()))
    assert result["status"] == 200, result
    assert result["patch_set_reason"] == f"pinned release {NEWEST.simplejwt}"
    skipped = {f["id"]: f["reason"] for f in result["fixers"] if f["state"] == "skipped"}
    assert skipped and set(skipped.values()) == {f"Token.__init__ changed (last proven on {NEWEST.simplejwt})"}
    assert [c["id"] for c in result["checks"] if c["id"].startswith("simplejwt_patches.W03")] == [
        "simplejwt_patches.W031"
    ] * len(skipped)


@newest_cell_only
def test_pinned_release_with_a_bare_annotation_added_is_reported(idp, sdist_tree, tmp_path):
    """Issue 16 point 12: ``TokenError: type`` added inside ``Token.__init__`` turned every rejected
    token into an UnboundLocalError (500), yet the fingerprint was unchanged: still proven, no W031."""
    site = build(sdist_tree, tmp_path, NEWEST.simplejwt, semantic="Token.__init__", edit=_rewrite_bare_annotation)
    assert "TokenError: type\n" in (site / "rest_framework_simplejwt" / "tokens.py").read_text()
    result = probe(idp, site, register_sensitive_token(idp.mint()))
    assert result["status"] == 200, result
    wraps_init = {fid for fid in NEWEST.fixers if "Token.__init__" in REGISTRY.get(fid).target}
    skipped = {f["id"]: f["reason"] for f in result["fixers"] if f["state"] == "skipped"}
    assert set(skipped) == wraps_init, skipped
    assert set(skipped.values()) == {f"Token.__init__ changed (last proven on {NEWEST.simplejwt})"}
    w031 = [c for c in result["checks"] if c["id"] == "simplejwt_patches.W031"]
    assert len(w031) == len(wraps_init) and all("Token.__init__" in c["msg"] for c in w031)


def test_doctor_says_how_each_fixer_was_selected():
    from simplejwt_patches.doctor import diagnose, render_text

    pin = find_pin(simplejwt_version())
    text = render_text(diagnose())
    for fixer_id in pin.fixers:
        assert f"  - {fixer_id}: applied: " in text
        assert f"[pinned release {pin.simplejwt}]" in text.split(f"  - {fixer_id}: ", 1)[1].splitlines()[0]
