"""Run nox sessions one by one with a progress line each; nox's output goes to .nox/logs/<session>.log.

    python .ci/run_sessions.py lint -t package -t matrix -j upstream ...

Arguments are session names, or ``-t TAG`` for every session with that tag (in ``nox --list`` order);
``-j TAG`` selects them too, and runs them :data:`SLOTS` at a time from one queue, each on one core
(``SJP_PYTEST_WORKERS=1`` for our own suite, which otherwise takes both): a session starts as soon as
another ends, so there is no idle tail of a two-worker run, of a session's serial set-up, or of a
pair waiting for its slower half. Much of a matrix cell's time is spent waiting (an IdP that hangs
until ``JWKS_TIMEOUT``, a lock's expiry), so three sessions keep two cores about as busy as one
session on two workers would.
Prints ``[i/N] name ... ok (Ns)`` per session as it ends, the ``known failure: ...`` lines an upstream session
logged, and, for a failed session, its log. Every session runs even after a failure; the exit status
is 1 if any failed. Results go to .nox/sessions.json for .ci/summary.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOX = [str(ROOT / ".venv" / "bin" / "nox"), "--no-color", "--noxfile", str(ROOT / "noxfile.py")]
LOGS = ROOT / ".nox" / "logs"
#: One session may not take longer than this (the whole CI run has 30 minutes).
SESSION_TIMEOUT = 900
#: Sessions of one ``-j`` group run at once (``SJP_SESSION_SLOTS`` overrides).
SLOTS = int(os.environ.get("SJP_SESSION_SLOTS", "3"))
#: Lines of a session's log shown again in the progress output even when it passes.
ECHO = ("known failure:", "unexplained failure:")


def listed() -> list[dict[str, object]]:
    out = subprocess.run([*NOX, "--list", "--json"], capture_output=True, text=True, timeout=120, check=True)
    return list(json.loads(out.stdout))


def selection(argv: list[str]) -> list[tuple[str, bool]]:
    """``(session, run in parallel)`` in the order given, each session once."""
    sessions = listed()
    names: dict[str, bool] = {}
    args = iter(argv)
    for arg in args:
        if arg in ("-t", "--tag", "-j"):
            tag = next(args, None)
            chosen = [str(s["session"]) for s in sessions if tag in (s.get("tags") or [])]
            if not chosen:
                raise SystemExit(f"no nox session has the tag {tag!r}")
            for name in chosen:
                names.setdefault(name, arg == "-j")
        elif any(s["session"] == arg for s in sessions):
            names.setdefault(arg, False)
        else:
            raise SystemExit(f"no nox session named {arg!r}")
    return list(names.items())


def groups(chosen: list[tuple[str, bool]]) -> list[list[str]]:
    """Consecutive parallel sessions as one group (run from one queue), every other session alone."""
    out: list[list[str]] = []
    open_group = False  # whether out[-1] is a parallel group
    for name, parallel in chosen:
        if parallel and open_group:
            out[-1].append(name)
        else:
            out.append([name])
        open_group = parallel
    return out


def run_one(name: str, paired: bool = False) -> tuple[bool, float]:
    log = LOGS / f"{name}.log"
    start = time.monotonic()
    env = {**os.environ, "SJP_PYTEST_WORKERS": "1"} if paired else dict(os.environ)
    with log.open("w") as out:
        try:
            code = subprocess.run(
                [*NOX, "-s", name], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=SESSION_TIMEOUT, check=False, cwd=ROOT, env=env,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            out.write(f"\nrun_sessions: {name} killed after {SESSION_TIMEOUT} s\n")
            code = -1
    return code == 0, time.monotonic() - start


def main(argv: list[str]) -> int:
    chosen = selection(argv)
    parallel = dict(chosen)
    names = [name for name, _ in chosen]
    LOGS.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, object]] = {}
    width = max(len(n) for n in names)
    started = time.monotonic()
    printing = threading.Lock()

    def report(name: str, ok: bool, took: float) -> None:
        with printing:
            results[name] = {"ok": ok, "seconds": round(took, 1)}
            print(f"[{len(results):>{len(str(len(names)))}}/{len(names)}] {name:<{width}} ... ", end="")
            print(f"{'ok' if ok else 'FAILED'} ({took:.0f}s{', one core' if parallel[name] else ''})", flush=True)
            log = LOGS / f"{name}.log"
            text = log.read_text(errors="replace")
            for line in text.splitlines():
                if any(marker in line for marker in ECHO):
                    print("      " + line.removeprefix("nox > "))
            if not ok:
                print(f"---- {log.relative_to(ROOT)} ----")
                print(text.rstrip())
                print(f"---- end of {log.relative_to(ROOT)} ----", flush=True)

    for group in groups(chosen):
        if not parallel[group[0]]:
            report(group[0], *run_one(group[0]))
            continue
        with ThreadPoolExecutor(max_workers=max(1, SLOTS)) as pool:
            futures = {pool.submit(run_one, name, True): name for name in group}
            for future in as_completed(futures):
                report(futures[future], *future.result())
    (ROOT / ".nox" / "sessions.json").write_text(json.dumps(results, indent=2))
    failed = [n for n, r in results.items() if not r["ok"]]
    total = time.monotonic() - started
    print(
        f"{len(names) - len(failed)} of {len(names)} sessions ok in {total:.0f}s"
        + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
