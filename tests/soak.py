"""A bad day for a busy API, measured (``make soak``, the ``soak`` nox session, tests/test_soak.py).

One fleet of real servers running tests/project -- gunicorn (gthread) and uvicorn -- with
``JWKS_SHARED_CACHE`` on a real redis-server, in front of the loopback Keycloak-shaped IdP
(tests/idp.py). A bounded, open-loop load generator sends requests at a steady rate (count and time
bounded, loopback only): valid tokens of several users, plus hostile ones (random kids signed by a
foreign key, garbage). A chaos schedule runs meanwhile: key rotations (the issuer signs with the new
key at once), the IdP answering 403, hanging, refusing connections; Redis paused (SIGSTOP/SIGCONT)
and restarted; gunicorn workers killed (the arbiter respawns them).

Every valid token answered 401/503 is classified against the README's "declared fail-closed
windows" (computed from the schedule and the IdP's own request log); :func:`verdict` lists what
breaks the promises: any 5xx, any valid token rejected outside a window, any hostile token
accepted, any request slower than ``JWKS_TIMEOUT`` + :data:`MARGIN`.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.idp import FakeKeycloak, Mode, generate_rsa_key
from tests.servers import ROOT, Served, free_port, migrate, project_env, serve

__all__ = ["FLEET_RETRY", "MARGIN", "SLACK", "Config", "render", "run", "verdict"]

#: Seconds a request may take beyond JWKS_TIMEOUT: a fetch that waited for the fleet's lock holder
#: before fetching itself, Redis operations timing out while it is paused, queueing in a busy worker.
MARGIN = 2.5
#: Scheduling slack of the window arithmetic (2 shared cores run the fleet, the IdP and the load).
SLACK = 0.75
#: The fleet's retry after a refused budget (simplejwt_patches.refetch.FLEET_RETRY).
FLEET_RETRY = 0.25

#: Seconds the IdP takes to answer a key-set request on a good day (Keycloak: tens of ms); when hanging.
IDP_LATENCY = 0.05
IDP_HANG = 5.0

#: One 60 s cycle of the chaos schedule: (offset, action, argument); longer runs repeat it.
CYCLE: tuple[tuple[float, str, Any], ...] = (
    (3, "rotate", None),
    (11, "idp", (Mode.FORBIDDEN, 4.0)),
    (13, "rotate", None),  # during the 403s: declared window 2
    (17, "redis_pause", 3.0),
    (22, "rotate", None),
    (25, "kill_worker", None),
    (30, "idp", (Mode.HANG, 4.0)),
    (36, "redis_restart", None),
    (38, "rotate", None),
    (46, "idp", ("refuse", 3.0)),
    (51, "kill_worker", None),
    (53, "rotate", None),
)


@dataclass
class Config:
    duration: float = 60.0
    rate: float = 60.0  # requests per second, all servers together
    clients: int = 12
    users: int = 5
    random_kids: float = 0.10  # share of requests with a random kid
    garbage: float = 0.05  # share of requests with a garbage token
    cooldown: float = 5.0
    timeout: float = 2.0
    lifespan: float = 20.0
    gunicorn_workers: int = 4
    gunicorn_threads: int = 4
    uvicorn_workers: int = 2
    chaos: bool = True
    seed: int = 18
    package: str | None = None  # another simplejwt_patches to serve (the harness's before/after run)


@dataclass
class Sample:
    sent: float
    latency: float
    status: int  # 0: no HTTP answer
    kind: str  # valid | random_kid | garbage
    generation: int  # the issuer's key (rotation count) that signed a valid token
    target: str
    pid: int | None = None


@dataclass
class Events:
    start: float = 0.0
    rotations: list[float] = field(default_factory=list)
    outages: list[tuple[float, float, str]] = field(default_factory=list)
    redis: list[tuple[float, float, str]] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)


class Redis:
    """A redis-server of the soak's own on a fixed loopback port: pause, resume, restart."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (make soak installs Debian's)")
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="sjp-soak-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):  # bounded: ~5 s
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Soak:
    def __init__(self, config: Config, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.rng = random.Random(config.seed)
        self.events = Events()
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.idp = FakeKeycloak(realm="soak")
        self.idp.hang_seconds = IDP_LATENCY
        # ETags: expiry and background refreshes are conditional, demand refetches never are, so the
        # IdP's log shows which fetches spent the refetch budget (declared window 3).
        self.idp.etags = True
        self.foreign = generate_rsa_key()
        self.users = [f"user-{i}" for i in range(config.users)]
        self.generation = 0
        self.tokens: list[str] = []
        self.rss: dict[int, list[tuple[float, int]]] = {}  # pid -> (seconds since the load began, KiB)
        self.jwks_size: list[tuple[int, int]] = []  # (signing keys, JSON bytes) the IdP publishes: start, end
        self.servers: list[Served] = []
        self.redis = Redis()

    # -- the fleet ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        c = self.config
        patches = {
            "JWKS_SHARED_CACHE": "jwks", "JWKS_TIMEOUT": c.timeout, "JWKS_REFETCH_COOLDOWN": c.cooldown,
            "JWKS_CACHE_LIFESPAN": c.lifespan, "JWKS_REFRESH_AHEAD": 0,
        }  # fmt: skip
        env = project_env(self.workdir / "db.sqlite3", self.idp.jwks_url, self.idp.issuer,
                          SJP_PATCHES=json.dumps(patches), SJP_REDIS=self.redis.url, SJP_REDIS_TIMEOUT="0.3",
                          SJP_AUTH="rest_framework_simplejwt.authentication.JWTAuthentication")  # fmt: skip
        if c.package:  # a tree of tests/ and that simplejwt_patches, served from there
            env["PYTHONPATH"] = str(self.tree)
        return env

    def start(self) -> None:
        self.tree = ROOT
        if self.config.package:
            self.tree = self.workdir / "tree"
            shutil.copytree(self.config.package, self.tree / "simplejwt_patches")
            (self.tree / "tests").symlink_to(ROOT / "tests")
        self.idp.start()
        self.idp_port = int(self.idp.base_url.rsplit(":", 1)[1])
        self.redis.start()
        self.rotate_tokens()
        env = self.env()
        migrate(env, *self.users, cwd=self.tree)
        c = self.config
        self.servers = [
            serve("gunicorn", env, self.workdir / "gunicorn.log",
                  spec=("gunicorn", "gthread", c.gunicorn_workers, False), threads=c.gunicorn_threads, cwd=self.tree),
            serve("uvicorn", env, self.workdir / "uvicorn.log", spec=("uvicorn", "asgi", c.uvicorn_workers, False),
                  cwd=self.tree),
        ]  # fmt: skip

    def stop(self) -> None:
        for served in self.servers:
            try:
                served.stop(20)
            except AssertionError:
                pass
        self.idp.stop()
        self.redis.close()

    def workers(self) -> list[int]:
        return [pid for served in self.servers for pid in children(served.proc.pid)]

    def sample_rss(self) -> None:
        at = time.monotonic() - self.events.start
        for pid in self.workers():
            kib = rss_kib(pid)
            if kib is not None:
                self.rss.setdefault(pid, []).append((at, kib))

    def sample_jwks(self) -> None:
        """The IdP's key set (it keeps every rotated key published): what each worker legitimately holds more of."""
        keys = self.idp.jwks()["keys"]
        signing = sum(1 for k in keys if k.get("use") == "sig")
        self.jwks_size.append((signing, len(json.dumps({"keys": keys}).encode())))

    # -- tokens ---------------------------------------------------------------------------------
    def rotate_tokens(self) -> None:
        tokens = [self.idp.mint({"sub": user}) for user in self.users]
        with self.lock:
            self.tokens = tokens

    def token(self) -> tuple[str, str, int]:
        draw = self.rng.random()
        c = self.config
        if draw < c.random_kids:
            hostile = self.idp.mint({"sub": self.users[0]}, kid=f"kid-{uuid.uuid4().hex}", key=self.foreign)
            return hostile, "random_kid", -1
        if draw < c.random_kids + c.garbage:
            junk = self.rng.choice(["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", uuid.uuid4().hex * 3])
            return junk, "garbage", -1
        with self.lock:
            return self.rng.choice(self.tokens), "valid", self.generation

    # -- chaos ----------------------------------------------------------------------------------
    def schedule(self) -> list[tuple[float, str, Any]]:
        if not self.config.chaos:
            return [(self.config.duration / 2, "rotate", None)]
        cycles = max(1, math.ceil(self.config.duration / 60))
        return [(60 * i + at, action, arg) for i in range(cycles) for at, action, arg in CYCLE
                if 60 * i + at < self.config.duration - 5]  # fmt: skip

    def chaos(self, stop: threading.Event) -> None:
        """The schedule, each action in its own thread (an outage and a rotation overlap)."""
        threads = []
        for at, action, arg in self.schedule():
            if stop.wait(max(0.0, self.events.start + at - time.monotonic())):
                break
            thread = threading.Thread(target=self.act, args=(action, arg, stop), name=f"soak-{action}", daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=30)

    def act(self, action: str, arg: Any, stop: threading.Event) -> None:
        now = time.monotonic()
        if action == "rotate":
            self.idp.rotate()
            with self.lock:
                self.generation += 1
                self.events.rotations.append(now)
            self.rotate_tokens()
        elif action == "idp":
            mode, seconds = arg
            if mode == "refuse":
                self.idp.stop()
                stop.wait(seconds)
                self.idp.start(self.idp_port)
            elif mode is Mode.HANG:
                self.idp.hang_seconds = IDP_HANG
                stop.wait(seconds)
                self.idp.hang_seconds = IDP_LATENCY
            else:
                self.idp.mode = mode
                stop.wait(seconds)
                self.idp.mode = Mode.HANG
            with self.lock:
                self.events.outages.append((now, time.monotonic(), str(getattr(mode, "value", mode))))
        elif action == "redis_pause":
            self.redis.signal(signal.SIGSTOP)
            stop.wait(arg)
            self.redis.signal(signal.SIGCONT)
            with self.lock:
                self.events.redis.append((now, time.monotonic(), "paused"))
        elif action == "redis_restart":
            self.redis.stop()
            self.redis.start()
            with self.lock:
                self.events.redis.append((now, time.monotonic(), "restarted"))
        elif action == "kill_worker":
            pids = children(self.servers[0].proc.pid)
            if pids:
                os.kill(self.rng.choice(pids), signal.SIGKILL)
                with self.lock:
                    self.events.kills.append(now)

    # -- load -----------------------------------------------------------------------------------
    def send(self, target: Served, token: str) -> tuple[int, int | None]:
        host, port = target.base_url.rsplit("/", 1)[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=self.config.timeout + MARGIN + 5)
        try:
            conn.request("GET", "/api/pid", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()
        pid = None
        if response.status == 200:
            try:
                pid = int(json.loads(body)["pid"])
            except (ValueError, KeyError, TypeError):
                pid = None
        return response.status, pid

    def client(self, jobs: queue.Queue[float | None]) -> None:
        for _ in range(10**7):  # bounded by the job count
            due = jobs.get()
            if due is None:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            token, kind, generation = self.token()
            target = self.servers[int(due * 1000) % len(self.servers)]
            sent = time.monotonic()
            status, pid = self.send(target, token)
            sample = Sample(sent - self.events.start, time.monotonic() - sent, status, kind, generation,
                            target.name, pid)  # fmt: skip
            with self.lock:
                self.samples.append(sample)

    def run(self) -> None:
        c = self.config
        for user_token in self.tokens:  # warm-up: every worker has the set before the clock starts
            for served in self.servers:
                for _ in range(c.gunicorn_workers * 3):
                    self.send(served, user_token)
        self.idp.reset()
        self.idp.etags = True
        self.idp.mode = Mode.HANG  # with IDP_LATENCY: every answer takes that long
        jobs: queue.Queue[float | None] = queue.Queue()
        self.events.start = start = time.monotonic() + 0.5
        self.sample_rss()
        self.sample_jwks()
        count = int(c.duration * c.rate)
        for i in range(count):
            jobs.put(start + i / c.rate)
        for _ in range(c.clients):
            jobs.put(None)
        stop = threading.Event()
        chaos = threading.Thread(target=self.chaos, args=(stop,), name="soak-chaos", daemon=True)
        clients = [
            threading.Thread(target=self.client, args=(jobs,), name=f"soak-client-{i}", daemon=True)
            for i in range(c.clients)
        ]
        chaos.start()
        for thread in clients:
            thread.start()
        for _ in range(int(c.duration) + 1):
            if stop.wait(1.0):
                break
            if int(time.monotonic() - start) % 5 == 0:
                self.sample_rss()
        for thread in clients:
            thread.join(timeout=c.timeout + MARGIN + 30)
        stop.set()
        chaos.join(timeout=30)
        self.sample_rss()
        self.sample_jwks()


# -- figures ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def window_of(sample: Sample, soak: Soak, demand: list[float]) -> str | None:
    """Which declared fail-closed window (README) covers a rejected valid token, if any."""
    c, ev = soak.config, soak.events
    t = sample.sent
    rotated = ev.rotations[sample.generation - 1] - ev.start if sample.generation > 0 else None
    if rotated is None:
        return None  # the warm-up key: always in the cached set
    budget = math.ceil(c.cooldown) + FLEET_RETRY  # the fleet's budget key lives whole seconds
    before = [f for f in demand if f <= rotated + SLACK]
    spent_until = before[-1] + budget + SLACK if before and before[-1] + budget >= rotated else None
    for begin, end, _ in ev.outages:
        begin, end = begin - ev.start, end - ev.start
        reached = rotated >= begin - SLACK or (spent_until is not None and spent_until >= begin)
        if reached and rotated <= end and t <= end + budget + SLACK:
            return "rotated during an outage"
    if spent_until is not None and t <= spent_until:
        return "rotated while the budget was spent"
    held = c.timeout + 5  # the refresh lock's expiry; the budget key's (ceil(cooldown)) is shorter here
    orphans = [end - ev.start for begin, end, kind in ev.redis if kind == "paused"] + [k - ev.start for k in ev.kills]
    for since in orphans:
        if (
            since - held - SLACK <= rotated <= since + held + SLACK
            and t <= since + held + budget + 2 * c.timeout + SLACK
        ):
            return "rotated while the fleet's lock or budget was orphaned"
    return None


def conditional(headers: dict[str, str]) -> bool:
    return any(name.lower() in ("if-none-match", "if-modified-since") for name in headers)


def figures(soak: Soak) -> dict[str, Any]:
    c, ev = soak.config, soak.events
    requests = soak.idp.jwks_requests()
    fetches = sorted(r.monotonic - ev.start for r in requests)
    demand = sorted(r.monotonic - ev.start for r in requests if not conditional(r.headers))
    samples = sorted(soak.samples, key=lambda s: s.sent)
    answered = [s for s in samples if s.status]
    valid = [s for s in samples if s.kind == "valid"]
    rejected = [s for s in valid if s.status in (401, 403, 503)]
    windows = [window_of(s, soak, demand) for s in rejected]
    outside = [s for s, w in zip(rejected, windows, strict=True) if w is None]
    kills = [k - ev.start for k in ev.kills]
    dropped = [s for s in samples if s.status == 0]
    dropped_outside = [s for s in dropped if not any(k - 0.5 <= s.sent <= k + 2 for k in kills)]
    spans = []  # seconds from each rotation to the last rejection of its key's tokens
    for i, r in enumerate(ev.rotations, 1):
        last = [s.sent for s in rejected if s.generation == i]
        spans.append(round(max(last) - (r - ev.start), 2) if last else 0.0)
    per_rotation = []
    for i, r in enumerate(ev.rotations, 1):
        first: dict[int, float] = {}
        for s in valid:
            if s.generation == i and s.status == 200 and s.pid is not None:
                first.setdefault(s.pid, s.sent)
        if first:
            until = max(first.values())
            per_rotation.append(sum(1 for f in fetches if r - ev.start <= f <= until + 0.05))
    growth = [kib[-1][1] - kib[1][1] for kib in soak.rss.values() if len(kib) >= 3]  # after the first 5 s
    # The plateau: workers sampled before the load began (the warmed ones) and alive at the end, from
    # the middle of the run to its end. A respawned worker's first minutes are its own warm-up
    # (imports, the first request of each kind, the allocator reaching its high-water mark).
    half = c.duration / 2
    warmed = {pid: kib for pid, kib in soak.rss.items() if kib[0][0] <= 0 and kib[-1][0] >= c.duration}
    plateau = [
        kib[-1][1] - min(kib, key=lambda s: abs(s[0] - half))[1]
        for kib in warmed.values()
        if any(abs(s[0] - half) <= 5 for s in kib)
    ]
    latencies = [s.latency for s in answered]
    return {
        "config": asdict(c),
        "requests": len(samples),
        "valid": len(valid),
        "http_5xx": sum(1 for s in samples if s.status >= 500),
        "valid_rejected": len(rejected),
        "valid_rejected_outside_windows": len(outside),
        "valid_rejected_in_windows": {w: windows.count(w) for w in sorted({w for w in windows if w})},
        "hostile_accepted": sum(1 for s in samples if s.kind != "valid" and s.status == 200),
        "dropped_by_killed_workers": len(dropped) - len(dropped_outside),
        "dropped_otherwise": len(dropped_outside),
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round(max(latencies, default=0.0) * 1000, 1),
        },
        "latency_bound_s": c.timeout + MARGIN,
        "slow": sum(1 for s in answered if s.latency > c.timeout + MARGIN),
        "rotations": len(ev.rotations),
        "jwks_fetches": len(fetches),
        "demand_refetches": len(demand),
        "fetches_per_rotation": per_rotation,
        "rejection_spans_s": spans,
        "fetches_per_lifespan": round(len(fetches) / (c.duration / c.lifespan), 2),
        "rss_growth_kib": {
            "workers": len(growth),
            "median": statistics.median(growth) if growth else 0,
            "max": max(growth, default=0),
        },
        "rss_growth_second_half_kib": {
            "workers": len(plateau),
            "median": statistics.median(plateau) if plateau else 0,
            "max": max(plateau, default=0),
        },
        "jwks_signing_keys": [n for n, _ in soak.jwks_size],
        "jwks_bytes": [b for _, b in soak.jwks_size],
        "events": {
            "outages": [(round(b - ev.start, 1), round(e - ev.start, 1), k) for b, e, k in ev.outages],
            "redis": [(round(b - ev.start, 1), round(e - ev.start, 1), k) for b, e, k in ev.redis],
            "kills": [round(k, 1) for k in kills],
            "rotations": [round(r - ev.start, 1) for r in ev.rotations],
        },
        "outside_windows_sample": [asdict(s) for s in outside[:10]],
    }


def verdict(result: dict[str, Any]) -> list[str]:
    """The promises a run broke (empty: none)."""
    broken = []
    if result["http_5xx"]:
        broken.append(f"{result['http_5xx']} HTTP 5xx answers")
    if result["valid_rejected_outside_windows"]:
        broken.append(f"{result['valid_rejected_outside_windows']} valid tokens rejected outside a declared window")
    if result["hostile_accepted"]:
        broken.append(f"{result['hostile_accepted']} hostile tokens accepted")
    if result["slow"]:
        broken.append(f"{result['slow']} requests slower than {result['latency_bound_s']} s")
    if result["dropped_otherwise"]:
        broken.append(f"{result['dropped_otherwise']} requests unanswered outside a killed worker's last moments")
    return broken


def run(config: Config) -> dict[str, Any]:
    """One soak run; the figures (see :func:`figures`)."""
    workdir = Path(tempfile.mkdtemp(prefix="sjp-soak-"))
    soak = Soak(config, workdir)
    try:
        soak.start()
        soak.run()
        result = figures(soak)
        result["log_tail"] = {s.name: s.log_text()[-1500:] for s in soak.servers}
        return result
    finally:
        soak.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def render(data: dict[str, Any]) -> str:
    """The README's soak table from bench/soak.json (one column per labelled run)."""
    labels = sorted(data, key=lambda label: (label != "simplejwt-patches", label))
    rows = [
        ("seconds / requests (valid)", lambda r: f"{r['config']['duration']:g} / {r['requests']} ({r['valid']})"),
        ("HTTP 5xx", lambda r: str(r["http_5xx"])),
        ("valid tokens rejected outside declared windows", lambda r: str(r["valid_rejected_outside_windows"])),
        ("valid tokens rejected inside declared windows", lambda r: ", ".join(
            f"{n} {w}" for w, n in r["valid_rejected_in_windows"].items()) or "0"),
        ("hostile tokens accepted", lambda r: str(r["hostile_accepted"])),
        ("latency p50 / p99 / max", lambda r: "{p50} / {p99} / {max} ms".format(**r["latency_ms"])),
        ("requests slower than the bound", lambda r: f"{r['slow']} (bound {r['latency_bound_s']:g} s)"),
        ("unanswered (in a killed worker) / otherwise", lambda r: f"{r['dropped_by_killed_workers']} / "
                                                                   f"{r['dropped_otherwise']}"),
        ("JWKS fetches per rotation (fleet)", lambda r: " ".join(map(str, r["fetches_per_rotation"])) or "-"),
        ("JWKS fetches / per lifespan (fleet)", lambda r: f"{r['jwks_fetches']} / {r['fetches_per_lifespan']:g}"),
        ("worker RSS growth after warm-up, median / max",
         lambda r: "{median:g} / {max:g} KiB ({workers} workers)".format(**r["rss_growth_kib"])),
        ("worker RSS growth in the second half (warmed workers), median / max",
         lambda r: "{median:g} / {max:g} KiB ({workers} workers)".format(**r["rss_growth_second_half_kib"])
         if "rss_growth_second_half_kib" in r else "-"),
        ("IdP key set, start -> end (signing keys, JSON)",
         lambda r: "{} -> {} keys, {:.0f} -> {:.0f} KiB".format(
             *r["jwks_signing_keys"], *(b / 1024 for b in r["jwks_bytes"])
         ) if len(r.get("jwks_signing_keys", ())) == 2 else "-"),
    ]  # fmt: skip
    lines = [
        "| measure | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for title, cell in rows:
        lines.append(f"| {title} | " + " | ".join(cell(data[label]) for label in labels) + " |")
    meta = data[labels[0]].get("meta", {})
    lines.append("")
    lines.append(f"{meta.get('date', '?')}, {meta.get('machine', '?')}, Python {meta.get('python', '?')}.")
    return "\n".join(lines)


def summary(data: dict[str, Any]) -> str:
    """The README's one-paragraph account of the last ``make soak`` run (bench/soak.json's own run)."""
    r = data["simplejwt-patches"]
    c, lat = r["config"], r["latency_ms"]
    per_rotation = r["fetches_per_rotation"]
    ones = sum(1 for n in per_rotation if n == 1)
    half = r.get("rss_growth_second_half_kib")
    rss = (
        f"worker RSS growth over the second half {half['median'] / 1024:.1f} MB median "
        f"({half['max'] / 1024:.1f} MB max, {half['workers']} warmed workers)"
        if half
        else "worker RSS growth not measured"
    )
    return (
        f"`make soak` ({c['duration']:g} s; {c['gunicorn_workers']} gunicorn and {c['uvicorn_workers']} uvicorn "
        f"workers on a real Redis; {r['rotations']} key rotations, IdP 403 / hang / refuse, Redis paused and "
        f"restarted, workers killed; {c['random_kids']:.0%} random-kid tokens): **{r['requests']} requests, "
        f"{r['http_5xx']} HTTP 5xx, {r['valid_rejected_outside_windows']} valid tokens rejected outside the "
        f"declared windows, {r['hostile_accepted']} hostile tokens accepted**; latency p99 {lat['p99']:g} ms, "
        f"max {lat['max']:g} ms; 1 JWKS fetch for the fleet on {ones} of {len(per_rotation)} rotations; {rss} "
        f"({r['meta']['date']}; the rejections inside the windows, and the rest: "
        "[Benchmarks and soak](docs/benchmarks.md#soak))."
    )
