"""noxfile.py itself (issue 7, defect 6): sdists are extracted safely; a missing interpreter is no crash."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

nox = pytest.importorskip("nox")


def load_noxfile():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sjp_noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_hostile_sdist_cannot_write_outside_the_extraction_dir(tmp_path):
    """``tarfile.extractall`` without ``filter="data"`` follows ``../`` paths and absolute links."""
    noxfile = load_noxfile()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("pkg/tests/ok.py", b"x = 1\n"), ("pkg/tests/../../escaped.py", b"evil\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/tests/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()
    with tarfile.open(fileobj=archive) as tar:
        members = tar.getmembers()
        with pytest.raises(tarfile.FilterError):
            noxfile.extract(tar, dest, members)
    assert not (tmp_path / "escaped.py").exists()
    assert not (dest / "pkg" / "tests" / "passwd").is_symlink()


def test_nox_lists_its_sessions_when_interpreters_are_missing(tmp_path):
    """Only the running interpreter is on PATH and pyenv is empty: ``nox -l`` must still work."""
    env = {**os.environ, "PYENV_ROOT": str(tmp_path / "no-pyenv"), "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--no-color", "-f", str(ROOT / "noxfile.py"), "-l"],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tests-5.5.1" in done.stdout and "lint" in done.stdout


def test_sessions_selected_with_j_run_from_one_queue_and_nothing_else_does():
    """``make test`` runs the matrix cells and SimpleJWT's own suites from one queue (one core each); the
    fuzz, server and soak sessions (timing-sensitive, or on both cores already) run alone."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sjp_run_sessions", ROOT / ".ci" / "run_sessions.py")
    assert spec is not None and spec.loader is not None
    run_sessions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_sessions)
    chosen = [("lint", False), ("u1", True), ("u2", True), ("u3", True), ("servers", False), ("u4", True)]
    assert run_sessions.groups(chosen) == [["lint"], ["u1", "u2", "u3"], ["servers"], ["u4"]]
    assert run_sessions.groups([("a", False), ("b", False)]) == [["a"], ["b"]]
    assert run_sessions.groups([("a", True), ("b", False), ("c", True), ("d", True)]) == [["a"], ["b"], ["c", "d"]]
    makefile = (ROOT / "Makefile").read_text()
    assert "-j upstream" in makefile and "-j matrix" in makefile
    assert "-j fuzz" not in makefile and "-j servers" not in makefile
