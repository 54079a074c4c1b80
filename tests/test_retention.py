"""Memory the key source keeps does not grow with requests, unknown kids, rotations or failed fetches.

``make soak``'s workers grow in RSS after warm-up; this module pins down that none of it is Python
memory our package keeps (docs/benchmarks.md, "Soak"). Through DRF's real request path against the
loopback IdP, a cycle of the soak's mix -- valid tokens, random kids, garbage, a key rotation (the
IdP publishing only the new key, so the set itself stays the same size), demand refetches and
failed ones (the IdP answering 403) -- runs a few times to warm up, then under ``tracemalloc``: the
bytes still allocated at the end whose traceback passes through ``simplejwt_patches`` may only be
what the bounded structures hold (the current key set, the last failure, the kid memo of at most
``_KIDS_MAX`` headers), whatever the number of cycles. Time is frozen and moved past the cooldown
(no sleep); the bound counts bytes, not time.
"""

from __future__ import annotations

import gc
import inspect
import json
import logging
import sys
import tracemalloc
import types
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from freezegun import freeze_time

import simplejwt_patches
from simplejwt_patches.patches import pyjwk_client
from tests.conftest import register_sensitive_token
from tests.helpers import _b64
from tests.idp import Mode, generate_rsa_key

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]

PACKAGE = str(Path(simplejwt_patches.__file__).resolve().parent)
#: Bytes three more cycles (~110 requests, 9 failed fetches, 3 rotations) may add; seen: under 1 KiB
#: on Python 3.11+. On 3.10 each code object keeps a spare frame, allocated before tracing began and
#: replaced by a traced one whenever an exception's traceback holds the frame at its return: 17-29 KiB
#: that look like growth and level off (a leak of the failures alone adds hundreds of KiB).
BOUND = 8 * 1024 if sys.version_info >= (3, 11) else 48 * 1024
#: Exceptions, tracebacks, frames and objects of our and PyJWT's types three more cycles may add.
OBJECTS = 8


@pytest.fixture(scope="module")
def foreign_key():
    return generate_rsa_key()


STDLIB = str(Path(json.__file__).resolve().parent.parent)


def owner(traceback: tracemalloc.Traceback) -> str:
    """The innermost frame outside the standard library: who asked for the memory."""
    for frame in reversed(traceback):  # oldest first
        if not frame.filename.startswith(STDLIB) or "site-packages" in frame.filename:
            return frame.filename
    return STDLIB


def _lines(function: Any) -> tuple[str, range]:
    lines, first = inspect.getsourcelines(function)
    return str(Path(inspect.getfile(function)).resolve()), range(first, first + len(lines))


#: The kid memo of the warm path (at most ``_KIDS_MAX`` headers, asserted on its own).
MEMO = [_lines(pyjwk_client.cached_kid), _lines(pyjwk_client._header_kid)]


def ours(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still allocated that simplejwt_patches asked for, but for the kid memo."""
    total = 0
    for trace in snapshot.traces:
        if not owner(trace.traceback).startswith(PACKAGE):
            continue
        if any(f.filename == name and f.lineno in lines for f in trace.traceback for name, lines in MEMO):
            continue
        total += trace.size
    return total


def kept_objects() -> Counter[str]:
    """Live exceptions, tracebacks, frames, and objects of simplejwt_patches' and PyJWT's types."""
    gc.collect()
    found: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)  # never isinstance(): a lazy object (Django's admin site) would set itself up
        if issubclass(kind, BaseException) or kind in (types.TracebackType, types.FrameType):
            found[kind.__name__] += 1
        elif str(getattr(kind, "__module__", "")).startswith(("simplejwt_patches", "jwt")):
            found[kind.__name__] += 1
    return found


def test_kept_memory_does_not_grow_with_requests_kids_rotations_or_failures(api, idp, foreign_key):
    idp.etags = True
    foreign = idp.mint(kid="kid-foreign", key=foreign_key)
    statuses: dict[str, set[int]] = {"valid": set(), "random_kid": set(), "garbage": set(), "failing": set()}

    def random_kid() -> str:
        # A header naming a kid nobody publishes, on a foreign token's claims and signature (never reached).
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": f"kid-{uuid.uuid4().hex}"}).encode())
        return register_sensitive_token(header + foreign[foreign.index(".") :])

    def cycle(clock) -> None:
        idp.rotate(keep_old=False)  # a new kid; the set keeps its size
        valid = idp.mint()
        clock.tick(2)  # past the cooldown: the rotated kid's demand refetch
        for i in range(20):
            statuses["valid"].add(api(valid).status_code)
            if i % 3 == 0:
                statuses["random_kid"].add(api(random_kid()).status_code)
            if i % 8 == 0:
                statuses["garbage"].add(api(f"garbage-{uuid.uuid4().hex}").status_code)
        idp.mode = Mode.FORBIDDEN
        for _ in range(3):  # failed demand refetches: each failure is the cause of the refusals after it
            clock.tick(2)
            for _ in range(3):
                statuses["failing"].add(api(random_kid()).status_code)
        idp.mode = Mode.OK

    # No log records: the suite's handlers (the leak detector, pytest's capture) keep every record
    # and its arguments, which would count as memory kept by the code that logged.
    logging.disable(logging.CRITICAL)
    try:
        with (
            override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_REFETCH_COOLDOWN": 1}),
            freeze_time("2030-01-01 00:00:00") as clock,
        ):
            cycle(clock)  # warm-up: every path taken once
            for _ in range(pyjwk_client._KIDS_MAX + 50):  # a flood of random kids: the memo wraps around
                statuses["random_kid"].add(api(random_kid()).status_code)
            # Traced from here: what the first cycles allocate replaces what was there before tracing
            # (on Python 3.10 a code object's spare frame too), which would read as growth.
            tracemalloc.start(8)
            try:
                for _ in range(2):
                    cycle(clock)
                gc.collect()
                first = ours(tracemalloc.take_snapshot())
                objects = kept_objects()
                for _ in range(3):
                    cycle(clock)
                gc.collect()
                later = ours(tracemalloc.take_snapshot())
                grown = kept_objects() - objects
            finally:
                tracemalloc.stop()
    finally:
        logging.disable(logging.NOTSET)
    assert sum(r.status == 403 for r in idp.jwks_requests()) == 6 * 3  # every failing phase fetched, 3 times
    assert statuses == {"valid": {200}, "random_kid": {401}, "garbage": {401}, "failing": {401}}, statuses
    assert later - first < BOUND, f"simplejwt_patches kept {later - first} more bytes over 3 more cycles"
    assert sum(grown.values()) <= OBJECTS, grown
    assert len(pyjwk_client._kids) <= pyjwk_client._KIDS_MAX
