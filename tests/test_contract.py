"""Contract tests for the patching machinery (in the spirit of dd-trace-py's contrib tests).

Every fixer goes through apply/apply/revert/apply sequences; nothing is ever double-wrapped,
revert restores the original objects by identity, and only where the attribute is still ours.
Import orders that need a fresh interpreter are in ``test_enablement.py``.
"""

from __future__ import annotations

import ast
import threading
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import wrapt

import simplejwt_patches
from simplejwt_patches import patcher
from simplejwt_patches.catalog import REGISTRY
from simplejwt_patches.pins import PINS, find_pin
from simplejwt_patches.registry import DIAGNOSTICS, FUNCTIONAL, SECURITY, Fixer, Patch, Registry, also, fixer
from simplejwt_patches.versions import simplejwt_version

MARK = "_self_simplejwt_patches_fixers"  # the fixer ids one wrapper runs


def targets() -> dict[tuple[int, str], tuple[Any, str, list[str]]]:
    """(owner, attribute) -> the fixer ids the current pin applies there, in order."""
    pin = find_pin(simplejwt_version())
    assert pin is not None
    out: dict[tuple[int, str], tuple[Any, str, list[str]]] = {}
    for fid in pin.fixers:
        for patch in REGISTRY.get(fid).patches:
            owner_path, _, attr = patch.path.rpartition(".")
            owner = import_module(patch.module)
            for part in owner_path.split("."):
                owner = getattr(owner, part)
            out.setdefault((id(owner), attr), (owner, attr, []))[2].append(fid)
    return out


def layers(owner: Any, attr: str) -> tuple[list[str], Any]:
    """The fixer ids our wrappers on ``owner.attr`` run (outermost first) and the object under them."""
    obj = vars(owner)[attr]
    ids = []
    while isinstance(obj, wrapt.FunctionWrapper) and getattr(obj, MARK, None):
        ids.extend(reversed(getattr(obj, MARK)))  # one wrapper per target runs the chain of its fixers
        obj = obj.__wrapped__
    return ids, obj


@pytest.fixture
def originals() -> dict[tuple[int, str], Any]:
    simplejwt_patches.revert()
    return {key: vars(owner)[attr] for key, (owner, attr, _) in targets().items()}


SEQUENCES = [
    "apply",
    "apply apply",
    "apply revert",
    "apply revert apply",
    "apply apply revert apply",
    "revert apply",
    "revert revert apply apply",
    "apply revert revert",
]


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_sequences_never_double_wrap_and_revert_restores_identity(sequence, originals):
    for step in sequence.split():
        getattr(simplejwt_patches, step)()
    last = sequence.split()[-1]
    for key, (owner, attr, fids) in targets().items():
        ids, under = layers(owner, attr)
        if last == "apply":
            assert sorted(ids) == sorted(fids), (attr, ids)
            assert len(ids) == len(set(ids))
            assert under is originals[key]
        else:
            assert ids == []
            assert vars(owner)[attr] is originals[key]
    assert simplejwt_patches.status().applied is (last == "apply")


def test_one_wrapper_per_target_runs_its_fixers_in_installation_order(originals):
    simplejwt_patches.apply()
    for key, (owner, attr, fids) in targets().items():
        top = vars(owner)[attr]
        assert isinstance(top, wrapt.FunctionWrapper) and top.__wrapped__ is originals[key], attr  # no stacking
        installed = [c.fixer_id for c in patcher.changes() if c.owner is owner and c.attribute == attr]
        assert list(patcher.fixers_on(top)) == installed  # each fixer joining the target is one undo step
        assert installed == [i for i in REGISTRY.ids() if i in fids], attr  # registration order, innermost first


class Target:
    """A callable for the chain tests below (``tests.test_contract:Target.run``)."""

    def run(self, value: str, *, suffix: str = "") -> str:
        return value + suffix


def _recording(name: str, calls: list[str]) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        calls.append(f"{name}>")
        result = wrapped(*args, **{**kwargs, "suffix": kwargs.get("suffix", "") + name})
        calls.append(f"<{name}")
        return f"{result}|{name}"

    return wrapper


def test_a_chain_runs_like_a_stack_and_reverts_one_fixer_at_a_time(originals):
    pristine = vars(Target)["run"]
    calls: list[str] = []
    names = ("inner", "middle", "outer")
    fixers = [
        Fixer(f"test.{n}", FUNCTIONAL, REGISTRY.get("pyjwt.client.transport").simplejwt,
              (Patch(__name__, "Target.run", ("self", "value"), _recording(n, calls)),), (), "doc")
        for n in names
    ]  # fmt: skip
    before = len(patcher.changes())
    try:
        assert [patcher._install(fx).state for fx in fixers] == ["applied"] * 3
        top = vars(Target)["run"]
        assert top.__wrapped__ is pristine and patcher.fixers_on(top) == tuple(f"test.{n}" for n in names)
        assert Target().run("v") == "voutermiddleinner|inner|middle|outer"
        assert calls == ["outer>", "middle>", "inner>", "<inner", "<middle", "<outer"]
        assert patcher._install(fixers[1]).state == "skipped"  # already in the chain: not wrapped twice
        mine = patcher.changes()[before:]
        assert [c.fixer_id for c in mine] == [f"test.{n}" for n in names]
        assert mine[2].undo() and patcher.fixers_on(vars(Target)["run"]) == ("test.inner", "test.middle")
        calls.clear()
        assert Target().run("v") == "vmiddleinner|inner|middle" and calls[0] == "middle>"
        assert mine[1].undo() and mine[0].undo() and vars(Target)["run"] is pristine
    finally:
        del patcher._changes[before:]
        Target.run = pristine


def test_chain_of_one_is_the_wrapper_itself():
    wrapper = _recording("only", [])
    assert patcher.chain([wrapper]) is wrapper
    with pytest.raises(ValueError):
        patcher.chain([])


def test_apply_twice_equals_once():
    first = [(c.fixer_id, c.installed) for c in patcher.changes()]
    simplejwt_patches.apply()
    assert [(c.fixer_id, c.installed) for c in patcher.changes()] == first


def test_concurrent_apply_patches_once(originals):
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait(timeout=5)
        simplejwt_patches.apply()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    for owner, attr, fids in targets().values():
        assert sorted(layers(owner, attr)[0]) == sorted(fids)


def test_revert_leaves_a_foreign_patch_alone(caplog):
    from rest_framework_simplejwt.authentication import JWTAuthentication

    ours = vars(JWTAuthentication)["get_validated_token"]
    foreign = wrapt.FunctionWrapper(ours, lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))
    JWTAuthentication.get_validated_token = foreign
    try:
        simplejwt_patches.revert()
        assert vars(JWTAuthentication)["get_validated_token"] is foreign
        assert any("replaced by someone else" in r.getMessage() for r in caplog.records)
        for owner, attr, _ in targets().values():
            if attr != "get_validated_token":
                assert layers(owner, attr)[0] == []
    finally:
        pristine = ours
        while hasattr(pristine, "__wrapped__"):  # 5.2.1: two fixers wrap get_validated_token
            pristine = pristine.__wrapped__
        JWTAuthentication.get_validated_token = pristine  # the pristine upstream function


def _fixer(fixer_id: str, module: str, path: str, params: tuple[str, ...]) -> Fixer:
    wrapper = lambda w, i, a, k: w(*a, **k)  # noqa: E731
    return Fixer(fixer_id, FUNCTIONAL, REGISTRY.get("pyjwt.client.transport").simplejwt,
                 (Patch(module, path, params, wrapper),), (), "doc")  # fmt: skip


def test_fixer_with_a_changed_signature_is_skipped_with_a_reason():
    fx = _fixer("test.shape", "rest_framework_simplejwt.tokens", "Token.__init__", ("self", "raw", "verify"))
    state = patcher._install(fx)
    assert state.state == "skipped"
    assert "expected them to start with ('self', 'raw', 'verify')" in state.reason


@pytest.mark.parametrize("target", ["rest_framework_simplejwt.tokens:Token.no_such_method", "no_such_module_sjp:X.y"])
def test_missing_target_is_skipped_not_raised(target):
    module, _, path = target.partition(":")
    fx = _fixer("test.missing", module, path, ("self",))
    state = patcher._install(fx)
    assert state.state == "skipped" and "cannot resolve" in state.reason


def test_failed_setattr_is_not_recorded_as_applied():
    fx = _fixer("test.builtin", "builtins", "int.bit_length", ("self",))
    before = len(patcher.changes())
    state = patcher._install(fx)
    assert state.state in ("failed", "skipped")
    assert len(patcher.changes()) == before


def test_registry_rejects_duplicates_and_missing_docstrings():
    registry = Registry()

    @fixer("x.one", target="m:A.b", params=("self",), simplejwt=">=5", kind=FUNCTIONAL, registry=registry)
    def one(wrapped, instance, args, kwargs):
        """Documented."""

    with pytest.raises(ValueError, match="duplicate"):

        @fixer("x.one", target="m:A.c", params=("self",), simplejwt=">=5", kind=FUNCTIONAL, registry=registry)
        def again(wrapped, instance, args, kwargs):
            """Documented too."""

    with pytest.raises(ValueError, match="docstring"):

        @fixer("x.two", target="m:A.d", params=("self",), simplejwt=">=5", kind=FUNCTIONAL, registry=registry)
        def undocumented(wrapped, instance, args, kwargs):
            pass


def test_pin_patch_sets_are_derived_from_the_fixer_ranges():
    for pin in PINS:
        assert pin.fixers == tuple(fx.id for fx in REGISTRY if pin.version in fx.simplejwt), pin.simplejwt
    assert {f for pin in PINS for f in pin.fixers} == set(REGISTRY.ids()), "a fixer no pinned release uses"


def test_a_fixer_may_require_only_fixers_at_least_as_critical():
    registry = Registry()

    @fixer("x.diag", target="m:A.b", params=("self",), simplejwt=">=5", kind=DIAGNOSTICS, registry=registry)
    def diag(wrapped, instance, args, kwargs):
        """Documented."""

    @fixer("x.sec", target="m:A.c", params=("self",), simplejwt=">=5", kind=SECURITY, requires=("x.diag",),
           registry=registry)  # fmt: skip
    def sec(wrapped, instance, args, kwargs):
        """Documented."""

    with pytest.raises(ValueError, match=r"security fixer .x\.sec. must not require diagnostics fixer .x\.diag."):
        registry.validate()
    REGISTRY.validate()  # the shipped registry obeys the rule
    for fx in REGISTRY:
        if fx.kind == SECURITY:
            assert all(REGISTRY.get(r).kind == SECURITY for r in fx.requires), fx.id


def test_also_adds_a_patch_to_the_same_fixer():
    registry = Registry()

    @fixer("x.two-targets", target="m:A.b", params=("self",), simplejwt=">=5", kind=SECURITY, registry=registry)
    def first(wrapped, instance, args, kwargs):
        """Documented."""

    @also("x.two-targets", target="m:B.c", params=("self",), registry=registry)
    def second(wrapped, instance, args, kwargs):
        """Documented."""

    assert registry.get("x.two-targets").targets == ("m:A.b", "m:B.c")


def test_every_fixer_has_a_docstring_saying_why():
    for fx in REGISTRY:
        assert "Why:" in fx.doc, fx.id


def _fixer_marks() -> set[str]:
    found: set[str] = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "fixer"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "mark"
            ):
                found.update(a.value for a in node.args if isinstance(a, ast.Constant))
    return found


def test_every_fixer_has_its_own_test():
    missing = set(REGISTRY.ids()) - _fixer_marks()
    assert not missing, f"fixers without a @pytest.mark.fixer test: {sorted(missing)}"


def test_docs_compatibility_table_is_generated_from_the_pins():
    from simplejwt_patches.pins import markdown_table
    from tests.docs import section

    assert section("pin-table") == markdown_table().strip()
