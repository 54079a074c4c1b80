"""Lazy targets: SimpleJWT's serializers are wrapped when first imported, in every import order.

``outage.failure-status`` wraps the ``validate`` of SimpleJWT's token serializers. ``apply()`` does
not import ``rest_framework_simplejwt.serializers`` (nor DRF's serializer stack): a wrapt
post-import hook wraps them when the project first imports them (dd-trace style). Each order runs
in a fresh interpreter (tests/project/lazy_probe.py) against the session IdP refusing its key set
(a WAF's 403) with ``JWKS_FAILURE_STATUS = 503``: imported before ``apply()``, after it, never;
``revert()`` before the import; apply, revert, apply, then the import. The mechanism's own edge
cases (a target missing at import time, code changed since ``apply()`` proved it, a module that
does not exist) use a module written for the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import simplejwt_patches
from simplejwt_patches import patcher
from simplejwt_patches.catalog import REGISTRY
from simplejwt_patches.fingerprints import SourceUnavailable, fingerprint_installed, fingerprint_unimported
from simplejwt_patches.registry import FUNCTIONAL, Fixer, Patch, Registry, also, fixer
from tests.helpers import own_cell_only
from tests.idp import Mode

pytestmark = [pytest.mark.fixer("outage.failure-status"), own_cell_only()]

ROOT = Path(__file__).parent.parent
PROBE = ROOT / "tests" / "project" / "lazy_probe.py"
FIXER = "outage.failure-status"
SERIALIZERS = "rest_framework_simplejwt.serializers"
CLASSES = ("TokenVerifySerializer", "TokenRefreshSerializer", "TokenRefreshSlidingSerializer")
BASE = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"]
PATCHES = {"JWKS_FAILURE_STATUS": 503, "JWKS_REFRESH_AHEAD": 0, "AUTHORIZED_PARTIES": ["acme-web"]}


def run(idp: Any, steps: str, *, imported_first: bool = False, first: Path | None = None) -> dict[str, dict[str, Any]]:
    """The probe's steps in a fresh process, keyed ``"<n>:<step>"`` (n from 0); ``first`` goes first on
    ``sys.path`` (a copy of SimpleJWT, see :func:`simplejwt_copy`)."""
    idp.mode = Mode.FORBIDDEN
    early = ["tests.project.early.EarlyConfig"] if imported_first else []
    env = {
        **os.environ,
        "SJP_APPS": ",".join([*BASE, *early, "simplejwt_patches"]),
        "SJP_EARLY_IMPORTS": SERIALIZERS,
        "SJP_PATCHES": json.dumps(PATCHES),
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
        "SJP_TOKEN": idp.mint(),
        "SJP_STEPS": steps,
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": os.pathsep.join([*([str(first)] if first else []), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, str(PROBE)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {f"{i}:{r['step']}": r for i, r in enumerate(json.loads(done.stdout.strip().splitlines()[-1]))}


def simplejwt_copy(tmp_path: Path, *, gate: bool = False, zipped: bool = False) -> Path:
    """A copy of the installed SimpleJWT package for :func:`run`'s ``first``: a directory to edit in place,
    or a zip (zipimport); with ``gate`` its serializers module calls ``builtins._sjp_gate()`` (set by the
    probe's ``race`` step) at the end of its body."""
    import shutil

    import rest_framework_simplejwt

    site = tmp_path / "site"
    package = site / "rest_framework_simplejwt"
    shutil.copytree(Path(rest_framework_simplejwt.__file__).parent, package, ignore=shutil.ignore_patterns("*.pyc"))
    if gate:
        with (package / "serializers.py").open("a", encoding="utf-8") as f:
            f.write("\n\nimport builtins as _b\n\ngetattr(_b, '_sjp_gate', lambda: None)()\n")
    if not zipped:
        return site
    return Path(shutil.make_archive(str(tmp_path / "simplejwt"), "zip", site))


def assert_outage_answered(result: dict[str, Any]) -> None:
    assert (result["status"], result["retry_after"]) == (503, "30"), result
    assert result.get("code", "jwks_unavailable") == "jwks_unavailable"


def assert_wrapped_once(result: dict[str, Any]) -> None:
    for name in CLASSES:
        assert result[name] == {"fixers": [FIXER], "upstream_under": True}, (name, result)
    assert result["log"] == len(CLASSES)  # one undo-log entry per serializer, not two


def assert_pristine(result: dict[str, Any]) -> None:
    for name in CLASSES:
        assert result[name] == {"fixers": [], "upstream_under": True}, (name, result)
    assert result["log"] == 0


def test_apply_imports_no_serializers_and_the_first_import_wraps_them_once(idp):
    """Imported after apply(), and until then never: nothing the shim does imports them (the API
    path, the doctor), the state says so; the first import wraps them, once, and the state says so."""
    r = run(idp, "state,api,doctor,state,verify,state,wrapped,doctor,api")
    first = r["0:state"]
    assert (first["imported"], first["drf_serializers"]) == (False, False)
    assert first["state"] == "pending-import"
    assert first["reason"] == (
        "wrapped rest_framework_simplejwt.authentication:JWTAuthentication.get_validated_token, "
        "rest_framework_simplejwt.tokens:Token.__init__; wraps "
        + ", ".join(f"{SERIALIZERS}:{c}.validate" for c in CLASSES)
        + f" when {SERIALIZERS} is first imported (not imported yet)"
    )
    assert_outage_answered(r["1:api"])
    assert r["1:api"]["imported"] is False
    doctor = r["2:doctor"]  # the doctor reports what is true, and does not change it
    assert doctor["json"].startswith(f"pending-import: {first['reason']} [pinned release ")
    assert doctor["text"] == f"- {FIXER}: {doctor['json']}"
    assert (doctor["imported"], r["3:state"]["imported"], r["3:state"]["state"]) == (False, False, "pending-import")
    assert_outage_answered(r["4:verify"])  # the URLconf imported the views, and with them the serializers
    assert (r["5:state"]["imported"], r["5:state"]["state"]) == (True, "applied")
    assert r["5:state"]["reason"] == "wrapped " + REGISTRY.get(FIXER).target
    assert_wrapped_once(r["6:wrapped"])
    assert r["7:doctor"]["json"].startswith(f"applied: wrapped {REGISTRY.get(FIXER).target} [pinned release ")
    assert_outage_answered(r["8:api"])


def test_imported_before_apply_they_are_wrapped_at_once(idp):
    r = run(idp, "state,wrapped,verify,api", imported_first=True)
    assert (r["0:state"]["imported"], r["0:state"]["state"]) == (True, "applied")
    assert_wrapped_once(r["1:wrapped"])
    assert_outage_answered(r["2:verify"])
    assert_outage_answered(r["3:api"])


def test_revert_before_the_import_leaves_them_unpatched(idp):
    r = run(idp, "state,revert,verify,wrapped,state")
    assert r["0:state"]["state"] == "pending-import"
    assert r["1:revert"] == {"step": "revert", "applied": False, "log": 0}
    assert r["2:verify"]["status"] != 503  # SimpleJWT's own answer (401; a 500 on releases <= 5.2.0)
    assert_pristine(r["3:wrapped"])  # the hook ran on the import and wrapped nothing
    assert r["4:state"] == {"step": "state", "state": None, "reason": None, "imported": True, "drf_serializers": True}


def test_apply_revert_apply_then_the_import_wraps_once_and_reverts_exactly(idp):
    r = run(idp, "revert,apply,state,verify,state,wrapped,revert,wrapped,apply,wrapped,verify")
    assert r["2:state"]["state"] == "pending-import"
    assert_outage_answered(r["3:verify"])
    assert r["4:state"]["state"] == "applied"
    assert_wrapped_once(r["5:wrapped"])
    assert r["6:revert"]["log"] == 0
    assert_pristine(r["7:wrapped"])
    assert_wrapped_once(r["9:wrapped"])  # imported now: wrapped inside apply()
    assert_outage_answered(r["10:verify"])


def test_serializers_edited_between_apply_and_their_import_are_not_wrapped(idp, tmp_path):
    """apply() proved the serializers from their source; the file changes (same line count) before the
    first import: the import-time check judges the code imported, not the text apply() read."""
    r = run(idp, "state,edit,import,state,wrapped", first=simplejwt_copy(tmp_path))
    assert r["0:state"]["state"] == "pending-import"
    after = r["3:state"]
    assert after["state"] == "failed", after
    proven = "TokenVerifySerializer.validate is not the code proven from its source at apply() ("
    assert after["reason"].startswith(f"when {SERIALIZERS} was imported: {proven}")
    assert_pristine(r["4:wrapped"])


def test_apply_while_another_thread_imports_the_serializers_after_a_revert_does_not_deadlock(idp, tmp_path):
    """revert(); thread B is inside the serializers' module body (its hook will wait for the patcher's
    lock), thread A runs apply(): A treats the half-imported module as not imported yet and B's hook
    wraps it when done, once."""
    r = run(idp, "race,state,wrapped,verify", first=simplejwt_copy(tmp_path, gate=True))
    assert r["0:race"] == {"step": "race", "apply_alive": False, "import_alive": False}
    assert r["1:state"]["state"] == "applied", r["1:state"]
    assert_wrapped_once(r["2:wrapped"])
    assert_outage_answered(r["3:verify"])


def test_serializers_imported_past_the_post_import_hook_are_wrapped_by_the_first_request(idp):
    """A finder inserted at sys.meta_path[0] after apply() imports the serializers without wrapt's hook:
    the first token request during an outage still answers 503, and the state stops saying pending-import."""
    r = run(idp, "state,finder,verify,state,wrapped,verify")
    assert r["0:state"]["state"] == "pending-import"
    assert r["1:finder"]["meta_path_0"] == "Instrumenting"
    assert_outage_answered(r["2:verify"])
    assert (r["3:state"]["imported"], r["3:state"]["state"]) == (True, "applied"), r["3:state"]
    assert_wrapped_once(r["4:wrapped"])
    assert_outage_answered(r["5:verify"])


def test_serializers_edited_and_imported_past_the_post_import_hook_fail_on_status(idp, tmp_path):
    """status() (and with it the doctor) re-checks a module imported past the hook: not pending-import."""
    r = run(idp, "edit,finder,import,state,wrapped", first=simplejwt_copy(tmp_path))
    after = r["3:state"]
    assert after["state"] == "failed", after
    assert after["reason"].startswith(f"when {SERIALIZERS} was imported: TokenVerifySerializer.validate is not")
    assert_pristine(r["4:wrapped"])


def test_simplejwt_imported_from_a_zip_is_proven_as_a_normal_install(idp, tmp_path):
    """zipimport: linecache reads the sources through the loader, so no W032 and every fixer's state is
    what it is on a normal install (the lazy serializers pending, then wrapped on import)."""
    archive = simplejwt_copy(tmp_path, zipped=True)
    normal = run(idp, "selection")["0:selection"]
    r = run(idp, "selection,verify,state,wrapped", first=archive)
    assert r["0:selection"]["tokens"].startswith(str(archive) + os.sep)
    assert r["0:selection"]["source_unavailable"] is None
    assert r["0:selection"]["states"] == normal["states"]
    assert normal["states"][FIXER] == "pending-import"
    assert_outage_answered(r["1:verify"])
    assert r["2:state"]["state"] == "applied"
    assert_wrapped_once(r["3:wrapped"])


# -- the mechanism, in this process, on a module written for the test --------------------------


class Eager:
    """An eager target beside the lazy one (``tests.test_lazy_targets:Eager.run``)."""

    def run(self, value: str) -> str:
        return value


def _bang(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return wrapped(*args, **kwargs) + "!"


LAZY_SOURCE = """
def decorate(func):
    return func


class Target:
    @decorate
    def run(self, value):
        return value
"""


@pytest.fixture
def lazy_module(tmp_path, monkeypatch):
    """``(name, path)`` of an importable module not imported yet; the test writes its source."""
    name = f"sjp_lazy_{uuid.uuid4().hex[:12]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / f"{name}.py"
    path.write_text(LAZY_SOURCE, encoding="utf-8")
    pristine = vars(Eager)["run"]
    yield name, path
    sys.modules.pop(name, None)
    Eager.run = pristine  # type: ignore[method-assign]
    for fid in [f for f in patcher._fixer_states if f.startswith("test.lazy")]:
        patcher._fixer_states.pop(fid)
        patcher._pending.pop(fid, None)
    patcher._changes[:] = [c for c in patcher._changes if not c.fixer_id.startswith("test.lazy")]


def install(fx: Fixer, proven: dict[str, str | None] | None = None) -> patcher.FixerStatus:
    """What apply() does with one fixer: install it, record its state, watch what it waits for."""
    state = patcher._install(fx, "test", patcher._fixer_states, proven)
    patcher._fixer_states[fx.id] = state
    patcher._complete_imported()
    patcher._watch(patcher._unwatched())
    return patcher._fixer_states[fx.id]


def lazy_fixer(module: str, *, eager: bool = False) -> Fixer:
    patches = [Patch(module, "Target.run", ("self", "value"), _bang, lazy=True)]
    if eager:
        patches.insert(0, Patch(__name__, "Eager.run", ("self", "value"), _bang))
    return Fixer("test.lazy", FUNCTIONAL, REGISTRY.get(FIXER).simplejwt, tuple(patches), (), "Why: a test.")


def test_a_lazy_target_is_wrapped_on_import_into_the_undo_log(lazy_module):
    name, _ = lazy_module
    assert install(lazy_fixer(name)).state == "pending-import"
    assert name not in sys.modules
    module = __import__(name)
    assert module.Target().run("v") == "v!"
    assert patcher._fixer_states["test.lazy"].state == "applied"
    (change,) = [c for c in patcher.changes() if c.fixer_id == "test.lazy"]
    assert (change.owner, change.attribute, change.was_own) == (module.Target, "run", True)
    assert change.undo() and module.Target().run("v") == "v"


def test_a_target_missing_at_import_fails_honestly_and_the_import_succeeds(lazy_module):
    name, path = lazy_module
    path.write_text("class Target:\n    pass\n", encoding="utf-8")
    assert install(lazy_fixer(name, eager=True)).state == "pending-import"
    assert Eager().run("v") == "v!"  # the eager target is wrapped at once
    module = __import__(name)  # the hook's failure does not fail the import
    state = patcher._fixer_states["test.lazy"]
    assert state.state == "failed"
    # wrapt 2: PathResolutionError, wrapt 1: AttributeError
    assert state.reason.startswith(f"when {name} was imported: cannot resolve {name}:Target.run: ")
    assert state.reason.endswith(f"; {__name__}:Eager.run stay wrapped")
    assert [c.attribute for c in patcher.changes() if c.fixer_id == "test.lazy"] == ["run"]
    assert not hasattr(module.Target, "run")


def test_code_changed_since_apply_proved_it_is_not_wrapped(lazy_module):
    name, _ = lazy_module
    assert install(lazy_fixer(name), proven={"Target.run": "0" * 16}).state == "pending-import"
    module = __import__(name)
    state = patcher._fixer_states["test.lazy"]
    assert state.state == "failed" and "is not the code proven from its source at apply()" in state.reason
    assert module.Target().run("v") == "v"


def test_a_lazy_target_in_no_module_or_not_in_its_source_is_skipped_at_once(lazy_module):
    name, _ = lazy_module
    missing = "sjp_no_such_module_anywhere"
    state = install(lazy_fixer(missing))
    assert state.state == "skipped"
    assert state.reason == f"cannot resolve {missing}:Target.run: no module named {missing!r}"
    state = install(lazy_fixer(name), proven={"Target.run": None})
    assert state.state == "skipped"
    assert state.reason == f"cannot resolve {name}:Target.run: not defined in the source of {name}"
    assert "test.lazy" not in patcher._pending and name not in sys.modules


def test_revert_before_the_import_makes_the_hook_a_no_op_and_reapply_wraps_once(lazy_module):
    name, _ = lazy_module
    try:
        assert install(lazy_fixer(name)).state == "pending-import"
        simplejwt_patches.revert()
        assert "test.lazy" not in patcher._pending
        assert install(lazy_fixer(name)).state == "pending-import"  # the one hook of the first install serves it
        module = __import__(name)
        assert module.Target().run("v") == "v!"  # once, not "v!!"
        assert [c.fixer_id for c in patcher.changes()].count("test.lazy") == 1
    finally:
        simplejwt_patches.revert()
        simplejwt_patches.apply()


def test_a_target_is_either_lazy_or_eager_for_every_fixer():
    registry = Registry()

    @fixer("x.lazy", target="m:A.b", params=("self",), simplejwt=">=5", kind=FUNCTIONAL, lazy=True, registry=registry)
    def lazy(wrapped, instance, args, kwargs):
        """Documented."""

    @also("x.lazy", target="m:A.c", params=("self",), registry=registry)
    def eager_elsewhere(wrapped, instance, args, kwargs):
        """Documented."""

    registry.validate()
    assert [p.lazy for p in registry.get("x.lazy").patches] == [True, False]

    @fixer("x.eager", target="m:A.b", params=("self",), simplejwt=">=5", kind=FUNCTIONAL, registry=registry)
    def eager(wrapped, instance, args, kwargs):
        """Documented."""

    with pytest.raises(ValueError, match=r"m:A\.b is wrapped lazily by one of 'x\.lazy' and 'x\.eager'"):
        registry.validate()


# -- proving a lazy target from its source ------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("path", ["fast", "parsed"])
def test_the_source_fingerprint_of_a_serializer_equals_the_imported_one(cls, path, monkeypatch):
    import importlib

    from simplejwt_patches import fingerprints

    if path == "parsed":  # not a proven text: the whole module is parsed
        monkeypatch.setattr(fingerprints, "SOURCE_TEXTS", {})
    owner = getattr(importlib.import_module(SERIALIZERS), cls)
    assert fingerprint_unimported(SERIALIZERS, f"{cls}.validate") == fingerprint_installed(owner.validate)


def test_the_source_fingerprint_follows_import_semantics(lazy_module):
    name, path = lazy_module
    path.write_text(
        LAZY_SOURCE + "\n\nclass Target(\n    object,\n):\n    def run(self, value):\n        return value * 2\n",
        encoding="utf-8",
    )  # redefined below, with a header on three lines: the last definition wins, as at import time
    found = fingerprint_unimported(name, "Target.run")
    assert name not in sys.modules
    assert found == fingerprint_installed(__import__(name).Target.run)
    assert fingerprint_unimported(name, "Target.missing") is None
    assert fingerprint_unimported("sjp_no_such_module_anywhere", "Target.run") is None
    assert fingerprint_unimported("sjp_no_such_package.module", "Target.run") is None
    with pytest.raises(SourceUnavailable):
        fingerprint_unimported("sys", "anything")


HOSTILE_QUALNAMES = ["", ".", "Target.", ".run", "Target..run", "Target.run(", "T[a-z]+.run", "Tärget.rün",
                     "Target\r\n.run", "Target.run.x", "decorate", "9" * 400, "\x00"]  # fmt: skip


@pytest.mark.parametrize("qualname", HOSTILE_QUALNAMES)
def test_a_hostile_qualname_finds_nothing_and_raises_nothing(lazy_module, qualname):
    name, _ = lazy_module
    found = fingerprint_unimported(name, qualname)
    assert found is None or qualname == "decorate"
    assert name not in sys.modules
    assert fingerprint_unimported(SERIALIZERS, qualname.replace("Target", "TokenVerifySerializer")) is None


def test_an_edited_serializer_not_imported_yet_is_judged_from_its_source_as_if_imported(monkeypatch):
    """W031's verdict for a lazy target does not wait for the import: the source says it changed."""
    from simplejwt_patches.conf import get_options
    from simplejwt_patches.pins import find_pin
    from simplejwt_patches.proven import PROVEN
    from simplejwt_patches.selection import select
    from simplejwt_patches.versions import simplejwt_version

    pin = find_pin(simplejwt_version())
    assert pin is not None
    monkeypatch.setitem(PROVEN[pin.simplejwt], "TokenRefreshSerializer.validate", "0" * 16)  # as if edited
    monkeypatch.delitem(sys.modules, SERIALIZERS)  # as before the project's first import (restored after)
    chosen = select(simplejwt_version(), get_options().unknown_version)
    assert SERIALIZERS not in sys.modules  # judged without importing it
    assert [(c.fixer_id, c.callables) for c in chosen.changed] == [(FIXER, ("TokenRefreshSerializer.validate",))]
    assert {c.fixer.id: c.skip for c in chosen.choices}[FIXER] == (
        f"TokenRefreshSerializer.validate changed (last proven on {pin.simplejwt})"
    )
    assert (
        chosen.fingerprints["TokenVerifySerializer.validate"] == PROVEN[pin.simplejwt]["TokenVerifySerializer.validate"]
    )
