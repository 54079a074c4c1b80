"""``make bench``: simplejwt-patches against vanilla SimpleJWT, side by side in the same run.

Run inside a nox session (one per PyJWT version); results are merged into bench/results.json
under the PyJWT version and printed as a table. ``run.py apply_cost`` (``nox -t bench -- apply_cost``,
``make bench-apply``) measures only the ``apply()`` row and replaces that row alone, dated, in the
PyJWT version's last full run. Everything talks to the Keycloak-shaped IdP on
127.0.0.1 (tests/idp.py) and a redis-server on 127.0.0.1 started here.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import deadline  # noqa: E402
from tests.idp import FakeKeycloak, Mode, generate_rsa_key  # noqa: E402

APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "rest_framework_simplejwt"]
RESULTS = ROOT / "bench" / "results.json"
#: The layers of a warm request, innermost first (``warm_breakdown`` times each one on its own).
LAYERS = ("get_signing_key_from_jwt", "TokenBackend.decode", "Token.__init__", "get_validated_token", "authenticate")


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is required (make bench installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.mkdtemp(prefix="sjp-bench-redis-")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def per_call(call: Any, calls: int) -> float:
    """µs per call of ``call()`` over ``calls`` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, idp: FakeKeycloak) -> None:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        import simplejwt_patches

        self.idp = idp
        self.sjp = simplejwt_patches
        call_command("migrate", verbosity=0, run_syncdb=True)
        get_user_model().objects.get_or_create(username=idp.subject)
        self.results: dict[str, Any] = {}

    # -- helpers --------------------------------------------------------------------------------
    def backend(self, patched: bool, lifespan: float | None = None) -> Any:
        """A fresh TokenBackend as state.token_backend, in vanilla or patched mode."""
        from rest_framework_simplejwt import state
        from rest_framework_simplejwt.backends import TokenBackend
        from rest_framework_simplejwt.settings import api_settings

        (self.sjp.apply if patched else self.sjp.revert)()
        backend = TokenBackend("RS256", None, "", api_settings.AUDIENCE, api_settings.ISSUER, api_settings.JWK_URL, 0)
        if not patched and lifespan is not None and getattr(backend.jwks_client, "jwk_set_cache", None):
            backend.jwks_client.jwk_set_cache.lifespan = lifespan  # harness: vanilla SimpleJWT cannot set it
        state.token_backend = backend
        return backend

    def patches(self, **options: Any) -> Any:
        from django.test import override_settings

        return override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, **options})

    def request(self, token: str) -> Any:
        from rest_framework.test import APIRequestFactory

        return APIRequestFactory().get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")

    def fetches(self) -> int:
        return len(self.idp.jwks_requests())

    def wait_idle(self, backend: Any) -> None:
        from simplejwt_patches.clients import state_of

        state = state_of(backend.jwks_client)
        if state is not None and state.source is not None:
            state.source.wait_idle(10)

    # -- a. warm authenticate() ---------------------------------------------------------------
    def warm_authenticate(self, rounds: int = 9, calls: int = 1500) -> None:
        """Stateless (the IdP's users need no database row) and with the DB user lookup, both beside
        the floor: PyJWT's own ``jwt.decode`` of the same token with the same key and arguments."""
        from rest_framework_simplejwt.authentication import JWTAuthentication, JWTStatelessUserAuthentication

        token = self.idp.mint(expires_in=3600)
        for key, auth in (("warm_authenticate", JWTStatelessUserAuthentication()),
                          ("warm_authenticate_db", JWTAuthentication())):  # fmt: skip
            best = self.alternate(rounds, calls, lambda patched, auth=auth: self._authenticate(auth, token))
            vanilla, patched, floor = best["vanilla"], best["patched"], best["floor"]
            self.results[key] = {
                "vanilla_us": round(vanilla, 2), "patched_us": round(patched, 2), "floor_us": round(floor, 2),
                "ratio": round(patched / vanilla, 4), "target": "<= 1.00", "ok": patched / vanilla <= 1.00,
                "how": f"min over {rounds} alternating rounds of {calls} {type(auth).__name__}.authenticate() calls; "
                "floor: jwt.decode of the same token with the same key and arguments",
            }  # fmt: skip

    def _authenticate(self, auth: Any, token: str) -> Any:
        request = self.request(token)
        auth.authenticate(request)  # warm the key cache
        return lambda: auth.authenticate(request)

    def alternate(self, rounds: int, calls: int, make: Any) -> dict[str, float]:
        """µs per call of ``make(patched)()``, vanilla and patched in alternating order, and of the floor:
        the minimum over ``rounds``."""
        times: dict[str, list[float]] = {"vanilla": [], "patched": [], "floor": []}
        for r in range(rounds):
            for patched in (False, True) if r % 2 == 0 else (True, False):
                self.backend(patched)
                times["patched" if patched else "vanilla"].append(per_call(make(patched), calls))
            times["floor"].append(per_call(self.floor(), calls))
        return {k: min(v) for k, v in times.items()}

    def floor(self) -> Any:
        """The bare PyJWT decode SimpleJWT's ``TokenBackend.decode`` makes, with the key it looked up."""
        import jwt
        from rest_framework_simplejwt import state

        backend, token = state.token_backend, self.idp.mint(expires_in=3600)
        key = backend.jwks_client.get_signing_key_from_jwt(token).key
        leeway = backend.get_leeway() if hasattr(backend, "get_leeway") else backend.leeway
        options = {"verify_aud": backend.audience is not None, "verify_signature": True}
        algorithms = [backend.algorithm]

        def decode() -> Any:
            return jwt.decode(token, key, algorithms=algorithms, audience=backend.audience, issuer=backend.issuer,
                              leeway=leeway, options=options)  # fmt: skip

        return decode

    def warm_breakdown(self, rounds: int = 7, calls: int = 1000) -> None:
        """Where a warm stateless request's microseconds go: each layer SimpleJWT calls (``LAYERS``),
        timed on its own, vanilla and patched; the table shows what each adds to the one it calls."""
        from rest_framework_simplejwt import state
        from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
        from rest_framework_simplejwt.settings import api_settings

        token = self.idp.mint(expires_in=3600)
        raw = token.encode()
        auth = JWTStatelessUserAuthentication()
        token_class = api_settings.AUTH_TOKEN_CLASSES[0]
        layers: dict[str, Any] = {
            "get_signing_key_from_jwt": lambda: state.token_backend.jwks_client.get_signing_key_from_jwt(raw),
            "TokenBackend.decode": lambda: state.token_backend.decode(raw),
            "Token.__init__": lambda: token_class(raw),
            "get_validated_token": lambda: auth.get_validated_token(raw),
        }
        assert tuple(layers) == LAYERS[:-1]
        times: dict[str, dict[str, list[float]]] = {name: {"vanilla": [], "patched": []} for name in LAYERS}
        floors: list[float] = []
        for r in range(rounds):  # every layer in every round: the machine's load is the same for all of them
            for patched in (False, True) if r % 2 == 0 else (True, False):
                self.backend(patched)
                state.token_backend.decode(raw)  # the patched backend takes its client under management here
                mode = "patched" if patched else "vanilla"
                for name, call in layers.items():
                    call()
                    times[name][mode].append(per_call(call, calls))
                times["authenticate"][mode].append(per_call(self._authenticate(auth, token), calls))
            floors.append(per_call(self.floor(), calls))
        self.results["warm_breakdown"] = {
            "layers": {name: {mode: round(min(v), 2) for mode, v in t.items()} for name, t in times.items()},
            "floor_us": round(min(floors), 2),
            "how": f"each layer timed on its own, min over {rounds} alternating rounds of {calls} calls",
        }  # fmt: skip

    # -- h. several issuers (ISSUERS): warm path and memory per issuer (issue 19) ---------------
    def many_issuers(self, n: int = 10, rounds: int = 9, calls: int = 1500) -> None:
        """Warm ``authenticate()`` with ``n`` trusted issuers vs one, and the memory each warmed realm holds."""
        import tracemalloc

        from rest_framework_simplejwt.authentication import JWTAuthentication

        issuers = [f"https://realm-{i}.example/realms/acme" for i in range(n)]
        config = {iss: {"JWK_URL": f"{self.idp.jwks_url}?realm={i}", "AUDIENCE": "acme-api"}
                  for i, iss in enumerate(issuers)}  # fmt: skip
        tokens = [self.idp.mint({"iss": iss}, expires_in=3600) for iss in issuers]
        auth = JWTAuthentication()
        setups = {"single": {}, "one": {"ISSUERS": dict(list(config.items())[:1])}, "many": {"ISSUERS": config}}
        best: dict[str, list[float]] = {name: [] for name in setups}
        for r in range(rounds):
            for name in sorted(setups, reverse=r % 2 == 1):
                with self.patches(**setups[name]):
                    self.backend(True)
                    request = self.request(self.idp.mint(expires_in=3600) if name == "single" else tokens[0])
                    auth.authenticate(request)
                    started = time.perf_counter()
                    for _ in range(calls):
                        auth.authenticate(request)
                    best[name].append((time.perf_counter() - started) / calls * 1e6)
        single, one, many = (min(best[k]) for k in ("single", "one", "many"))
        with self.patches(ISSUERS=config):
            self.backend(True)
            auth.authenticate(self.request(tokens[0]))  # the table and the first realm exist
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            for token in tokens[1:]:
                auth.authenticate(self.request(token))  # one key set fetched and held per realm
            grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
            tracemalloc.stop()
        self.results["many_issuers"] = {
            "single_issuer_us": round(single, 2), "one_issuer_us": round(one, 2), "many_issuers_us": round(many, 2),
            "ratio": round(many / one, 4), "ratio_to_single": round(many / single, 4),
            "kib_per_issuer": round(grown / (n - 1) / 1024, 1), "issuers": n, "target": "<= 1.02",
            "ok": many / one <= 1.02,
            "how": f"min over {rounds} alternating rounds of {calls} authenticate() calls; ratio: {n} ISSUERS vs one; "
            "memory: tracemalloc growth per realm warmed (its backend, client, key source and key set)",
        }  # fmt: skip

    # -- b. random kids -----------------------------------------------------------------------
    def random_kids(self, n: int = 1000) -> None:
        from rest_framework_simplejwt.authentication import JWTAuthentication

        foreign = generate_rsa_key()
        tokens = [self.idp.mint(kid=f"kid-{uuid.uuid4().hex}", key=foreign).encode() for _ in range(n)]
        out = {}
        for patched in (False, True):
            self.idp.reset()
            self.backend(patched)
            JWTAuthentication().get_validated_token(self.idp.mint().encode())  # the first, cold fetch counts too
            before, started = 0, time.perf_counter()
            for token in tokens:
                try:
                    JWTAuthentication().get_validated_token(token)
                except Exception:  # noqa: BLE001 - every one is rejected
                    pass
            out["patched" if patched else "vanilla"] = {
                "fetches": self.fetches() - before, "seconds": round(time.perf_counter() - started, 2)
            }  # fmt: skip
        self.results["random_kids"] = {
            **out, "target": "patched <= 2 fetches", "ok": out["patched"]["fetches"] <= 2,
            "how": f"one valid token (cold fetch, counted) then {n} tokens with random kids",
        }  # fmt: skip

    # -- b2. rotation pick-up -----------------------------------------------------------------
    def rotation(self, window: float = 3.0, pause: float = 0.05) -> None:
        """The IdP rotates right after a cold fetch; the new kid's token is retried every ``pause``
        seconds until accepted (at most ``window`` s): rejections and seconds until it is accepted."""
        from rest_framework_simplejwt.authentication import JWTAuthentication

        out = {}
        for patched in (False, True):
            self.idp.reset()
            self.backend(patched)
            auth = JWTAuthentication()
            auth.authenticate(self.request(self.idp.mint()))  # the cold fetch
            self.idp.rotate()
            token = self.idp.mint()
            rejected, accepted_after, started = 0, None, time.perf_counter()
            while time.perf_counter() - started < window:
                try:
                    auth.authenticate(self.request(token))
                    accepted_after = time.perf_counter() - started
                    break
                except Exception:  # noqa: BLE001 - rejected: the new kid is not known yet
                    rejected += 1
                    time.sleep(pause)
            out["patched" if patched else "vanilla"] = {
                "rejected": rejected, "fetches": self.fetches(),
                "seconds_to_accept": None if accepted_after is None else round(accepted_after, 3),
            }  # fmt: skip
        p = out["patched"]
        self.results["rotation_pickup"] = {
            **out, "window_s": window, "target": "patched: 0 rejected", "ok": p["rejected"] == 0,
            "how": f"rotate right after the cold fetch; retry the new kid's token every {pause:g} s for up to "
            f"{window:g} s",
        }  # fmt: skip

    # -- c. IdP down / hanging with an expired cache -------------------------------------------
    def outage(self, mode: Mode, n_patched: int = 500, n_vanilla: int = 5) -> None:
        from rest_framework_simplejwt.authentication import JWTAuthentication

        tokens = [self.idp.mint(expires_in=3600) for _ in range(max(n_patched, n_vanilla))]
        out = {}
        for patched in (False, True):
            self.idp.reset()
            self.idp.hang_seconds = 2.0
            with self.patches(JWKS_CACHE_LIFESPAN=1, JWKS_TIMEOUT=5):
                backend = self.backend(patched, lifespan=1)
                auth = JWTAuthentication()
                auth.authenticate(self.request(tokens[0]))
                self.idp.mode = mode
                time.sleep(1.1)  # expire the 1 s cache (benchmark, not a test)
                latencies, ok = [], 0
                n = n_patched if patched else n_vanilla
                for token in tokens[:n]:
                    started = time.perf_counter()
                    try:
                        auth.authenticate(self.request(token))
                        ok += 1
                    except Exception:  # noqa: BLE001 - counted as a failure
                        pass
                    latencies.append((time.perf_counter() - started) * 1000)
                self.idp.mode = Mode.OK
                self.wait_idle(backend)
            out["patched" if patched else "vanilla"] = {
                "requests": n, "success_rate": round(ok / n, 4),
                "p50_ms": round(percentile(latencies, 50), 3), "p99_ms": round(percentile(latencies, 99), 3),
            }  # fmt: skip
        p = out["patched"]
        self.results[f"idp_{mode.value}_expired_cache"] = {
            **out, "target": "patched 100 %, p99 < 5 ms", "ok": p["success_rate"] == 1.0 and p["p99_ms"] < 5,
        }  # fmt: skip

    # -- d. 32 threads ------------------------------------------------------------------------
    def thundering_herd(self, threads: int = 32) -> None:
        from rest_framework_simplejwt.authentication import JWTAuthentication

        token = self.idp.mint(expires_in=3600).encode()
        out: dict[str, Any] = {}
        for patched in (False, True):
            for case in ("cold", "expired"):
                self.idp.reset()
                with self.patches(JWKS_CACHE_LIFESPAN=1):
                    backend = self.backend(patched, lifespan=1)
                    if case == "expired":
                        JWTAuthentication().get_validated_token(token)
                        time.sleep(1.1)
                    self.idp.mode, self.idp.hang_seconds = Mode.HANG, 0.2  # a slow IdP widens the race
                    before = self.fetches()
                    barrier, errors = threading.Barrier(threads), []

                    def work(barrier: threading.Barrier = barrier, errors: list[Exception] = errors) -> None:
                        barrier.wait(10)
                        try:
                            JWTAuthentication().get_validated_token(token)
                        except Exception as exc:  # noqa: BLE001
                            errors.append(exc)

                    pool = [threading.Thread(target=work) for _ in range(threads)]
                    for t in pool:
                        t.start()
                    for t in pool:
                        t.join(30)
                    self.wait_idle(backend)
                    self.idp.mode = Mode.OK
                out[f"{'patched' if patched else 'vanilla'}_{case}"] = {
                    "fetches": self.fetches() - before, "errors": len(errors)
                }  # fmt: skip
        self.results["threads_32"] = {
            **out, "target": "patched 1 fetch", "ok": out["patched_expired"]["fetches"] == 1
            and out["patched_cold"]["fetches"] == 1,
        }  # fmt: skip

    # -- e. 8 processes sharing Redis -----------------------------------------------------------
    def fleet(self, redis_url: str, processes: int = 8, lifespan: float = 2.0, duration: float = 5.0) -> None:
        import redis as redis_lib

        token = self.idp.mint(expires_in=3600)
        out = {}
        for patched in (False, True):
            redis_lib.Redis.from_url(redis_url).flushall()
            self.idp.reset()
            env = {
                **os.environ, "DJANGO_SETTINGS_MODULE": "tests.project.settings", "PYTHONPATH": str(ROOT),
                "SJP_JWK_URL": self.idp.jwks_url, "SJP_ISSUER": self.idp.issuer, "SJP_TOKEN": token,
                "SJP_APPS": ",".join([*APPS, "simplejwt_patches"] if patched else APPS),
                "SJP_REDIS": redis_url,
                "SJP_PATCHES": json.dumps({"JWKS_CACHE_LIFESPAN": lifespan, "JWKS_REFRESH_AHEAD": 0,
                                           "JWKS_SHARED_CACHE": "jwks"}),
                "SJP_VANILLA_LIFESPAN": str(lifespan),
            }  # fmt: skip
            procs = [
                subprocess.Popen([sys.executable, str(ROOT / "bench" / "worker.py"), str(duration)],
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(processes)
            ]  # fmt: skip
            for proc in procs:  # every process has set Django up (however loaded the machine is)
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            start_at = time.time() + 0.3
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"{start_at}\n")
                proc.stdin.flush()
            reports = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
            lifespans = int(duration // lifespan) + 1
            fetches = self.fetches()
            out["patched" if patched else "vanilla"] = {
                "fetches": fetches, "lifespans": lifespans, "fetches_per_lifespan": round(fetches / lifespans, 2),
                "validations": sum(r["ok"] for r in reports), "failures": sum(r["failed"] for r in reports),
            }  # fmt: skip
        self.results["fleet_8_processes_redis"] = {
            **out, "target": "patched 1 fetch per lifespan",
            "ok": out["patched"]["fetches_per_lifespan"] <= 1.0 and all(o["validations"] > 0 for o in out.values()),
            "how": f"{processes} processes validating for {duration:g} s, lifespan {lifespan:g} s, shared Redis cache",
        }  # fmt: skip

    # -- f. apply() ---------------------------------------------------------------------------
    def apply_cost(self, n: int = 200, processes: int = 15) -> None:
        times = []
        for _ in range(n):
            self.sjp.revert()
            started = time.perf_counter()
            self.sjp.apply()
            times.append((time.perf_counter() - started) * 1000)
        # The first call in a fresh interpreter whose INSTALLED_APPS omit the app, so nothing has
        # applied, fingerprinted or read upstream source yet. Imported beforehand, and timed apart:
        # the upstream modules the fixers wrap (the project imports them anyway) and the package's
        # own modules (``import_ms``: what adding the app costs at startup beyond ``apply()``).
        # Bytecode is cached as in an installed package (pip compiles at install; this machine may
        # set PYTHONDONTWRITEBYTECODE), and a warm-up process writes it. Median and worst of several.
        script = (
            "import time, json, django; django.setup(); "
            "import rest_framework_simplejwt.authentication, rest_framework_simplejwt.backends, "
            "rest_framework_simplejwt.tokens; "
            "t0 = time.perf_counter(); "
            "import simplejwt_patches, simplejwt_patches.patcher, simplejwt_patches.catalog, "
            "simplejwt_patches.selection; "
            "t1 = time.perf_counter(); simplejwt_patches.apply(); t2 = time.perf_counter(); "
            "assert simplejwt_patches.status().applied, 'nothing applied'; "
            "print(json.dumps([(t1 - t0) * 1000, (t2 - t1) * 1000]))"
        )
        apps = "django.contrib.auth,django.contrib.contenttypes,rest_framework,rest_framework_simplejwt"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        firsts, imports = [], []
        with tempfile.TemporaryDirectory(prefix="sjp-bench-pyc-") as pyc:
            env.update({"DJANGO_SETTINGS_MODULE": "tests.project.settings", "PYTHONPATH": str(ROOT),
                        "SJP_APPS": apps, "PYTHONPYCACHEPREFIX": pyc})  # fmt: skip
            for i in range(processes + 1):
                out = subprocess.run(
                    [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
                )
                if i == 0:
                    continue  # the warm-up process compiled the bytecode
                imported, first = json.loads(out.stdout.strip().splitlines()[-1])
                imports.append(imported)
                firsts.append(first)
        self.results["apply_cost"] = {
            "median_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3),
            "fresh_process_ms": round(statistics.median(firsts), 3), "fresh_process_max_ms": round(max(firsts), 3),
            "fresh_processes": processes, "import_ms": round(statistics.median(imports), 3), "target": "< 5 ms",
            "ok": statistics.median(times) < 5 and statistics.median(firsts) < 5,
        }  # fmt: skip


ONLY = ("apply_cost",)  # measures that can run alone: ``run.py apply_cost``


def main(argv: list[str]) -> int:
    if argv not in ([], list(ONLY)):
        raise SystemExit(f"usage: bench/run.py [{' | '.join(ONLY)}] (alone: one row, merged into {RESULTS.name})")
    only = bool(argv)
    redis_proc, redis_url = start_redis() if not only else (None, "")
    try:
        with FakeKeycloak(realm="acme") as idp:
            os.environ.update({
                "DJANGO_SETTINGS_MODULE": "tests.project.settings", "SJP_JWK_URL": idp.jwks_url,
                "SJP_ISSUER": idp.issuer, "SJP_DB": ":memory:",
            })  # fmt: skip
            import logging

            import django

            django.setup()
            logging.getLogger("simplejwt_patches").setLevel(logging.ERROR)  # the outages below warn by design
            import jwt
            import rest_framework_simplejwt  # noqa: F401

            from simplejwt_patches.versions import distribution_version

            bench = Bench(idp)
            if only:
                bench.apply_cost()
            else:
                measure_all(bench, redis_url)
            label = f"pyjwt-{jwt.__version__}"
            meta = {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
                "python": platform.python_version(),
                "simplejwt": str(distribution_version("djangorestframework-simplejwt")),
                "pyjwt": jwt.__version__,
                "django": django.get_version(),
            }
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if only:
        if label not in data:
            raise SystemExit(f"{RESULTS.name} has no full run of {label} to add the row to: run make bench")
        data[label]["results"]["apply_cost"] = {**bench.results["apply_cost"], "measured": meta["date"]}
    else:
        data[label] = {"meta": meta, "results": bench.results}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(render(data))
    return 0 if all(r.get("ok") for r in bench.results.values()) else 1


def measure_all(bench: Bench, redis_url: str) -> None:
    """Every row of ``make bench``, in order."""
    bench.warm_authenticate()
    bench.warm_breakdown()
    bench.many_issuers()
    bench.random_kids()
    bench.rotation()
    bench.outage(Mode.SERVER_ERROR)
    bench.outage(Mode.HANG)
    bench.thundering_herd()
    bench.fleet(redis_url)
    bench.results["deadline"] = deadline.measure(bench, redis_url)
    bench.apply_cost()


def render(data: dict[str, Any]) -> str:
    """Markdown table of every PyJWT run in results.json."""
    lines = []
    for label, run in sorted(data.items()):
        m, r = run["meta"], run["results"]
        lines.append(f"**{label}** — {m['date']}, {m['machine']}, Python {m['python']}, SimpleJWT {m['simplejwt']}, "
                     f"Django {m['django']}")  # fmt: skip
        lines.append("")
        lines.append("| measure | vanilla | patched | target | met |")
        lines.append("|---|---|---|---|---|")
        for key, title in (("warm_authenticate", "warm `authenticate()` per call, stateless"),
                           ("warm_authenticate_db", "warm `authenticate()` per call, DB user lookup")):  # fmt: skip
            w = r.get(key)
            if w is None:
                continue
            floor = f" (floor: `jwt.decode` {w['floor_us']} µs)" if "floor_us" in w else ""
            lines.append(f"| {title}{floor} | {w['vanilla_us']} µs | {w['patched_us']} µs (×{w['ratio']}) "
                         f"| {w['target']} | {'✓' if w['ok'] else '✗'} |")  # fmt: skip
        if "many_issuers" in r:
            m = r["many_issuers"]
            lines.append(f"| warm `authenticate()`, {m['issuers']} `ISSUERS` vs one (single `JWK_URL`: "
                         f"{m['single_issuer_us']} µs) | {m['one_issuer_us']} µs | {m['many_issuers_us']} µs "
                         f"(×{m['ratio']}; {m['kib_per_issuer']} KiB per issuer) | {m['target']} | "
                         f"{'✓' if m['ok'] else '✗'} |")  # fmt: skip
        k = r["random_kids"]
        lines.append(f"| IdP fetches for 1,000 random-kid tokens | {k['vanilla']['fetches']} | {k['patched']['fetches']} "
                     f"| {k['target']} | {'✓' if k['ok'] else '✗'} |")  # fmt: skip
        if "rotation_pickup" in r:
            o = r["rotation_pickup"]

            def pickup(x: dict[str, Any], window: float = o["window_s"]) -> str:
                after = x["seconds_to_accept"]
                return f"{x['rejected']} / " + (f"{after} s" if after is not None else f"not within {window:g} s")

            lines.append(f"| rotation pick-up: rejected / until the new kid is accepted | {pickup(o['vanilla'])} | "
                         f"{pickup(o['patched'])} | {o['target']} | {'✓' if o['ok'] else '✗'} |")  # fmt: skip
        for key, title in (("idp_server_error_expired_cache", "IdP down (500), cache expired"),
                           ("idp_hang_expired_cache", "IdP hanging, cache expired")):  # fmt: skip
            o = r[key]
            v, p = o["vanilla"], o["patched"]
            lines.append(
                f"| {title}: success / p99 | {v['success_rate']:.0%} / {v['p99_ms']} ms ({v['requests']} req) | "
                f"{p['success_rate']:.0%} / {p['p99_ms']} ms ({p['requests']} req) | {o['target']} | "
                f"{'✓' if o['ok'] else '✗'} |"
            )
        t = r["threads_32"]
        lines.append(f"| fetches, 32 threads, cold / expired cache | {t['vanilla_cold']['fetches']} / "
                     f"{t['vanilla_expired']['fetches']} | {t['patched_cold']['fetches']} / {t['patched_expired']['fetches']} "
                     f"| {t['target']} | {'✓' if t['ok'] else '✗'} |")  # fmt: skip
        f = r["fleet_8_processes_redis"]
        lines.append(f"| fetches per lifespan, 8 processes + Redis | {f['vanilla']['fetches_per_lifespan']} | "
                     f"{f['patched']['fetches_per_lifespan']} | {f['target']} | {'✓' if f['ok'] else '✗'} |")  # fmt: skip
        if "deadline" in r:
            d = r["deadline"]
            waits = ", ".join(f"{title} {seconds:g} s" for title, seconds in d["waits_s"].items())
            skipped = f" (not measured: {d['skipped']})" if d["skipped"] else ""
            lines.append(f"| slowest cold request per fault, `JWKS_TIMEOUT = 1`: {waits}{skipped} | – | "
                         f"{max(d['waits_s'].values()):g} s | {d['target']} | {'✓' if d['ok'] else '✗'} |")  # fmt: skip
        a = r["apply_cost"]
        fresh = f"{a['fresh_process_ms']} ms" + (
            f" (worst {a['fresh_process_max_ms']} ms of {a['fresh_processes']}; importing the package first: "
            f"{a['import_ms']} ms)"
            if "fresh_processes" in a
            else ""
        )
        alone = f" (measured alone, {a['measured']})" if "measured" in a else ""
        lines.append(f"| `apply()`, fingerprints checked{alone}: median of re-applies / first call in a fresh process | – | "
                     f"{a['median_ms']} ms / {fresh} "
                     f"| {a['target']} | {'✓' if a['ok'] else '✗'} |")  # fmt: skip
        lines.append("")
        if "warm_breakdown" in r:
            lines.extend(breakdown(r["warm_breakdown"]))
    return "\n".join(lines)


def breakdown(run: dict[str, Any]) -> list[str]:
    """The warm path layer by layer: what each layer adds to the one it calls (µs per call)."""
    layers, floor = run["layers"], run["floor_us"]
    lookup, decode, init, validated, authenticate = (layers[name] for name in LAYERS)
    rows = [
        ("key lookup (`PyJWKClient.get_signing_key_from_jwt`)", lambda m: lookup[m]),
        ("`jwt.decode`: the floor, the same in both", lambda m: floor),
        ("`TokenBackend.decode` around them", lambda m: decode[m] - lookup[m] - floor),
        ("`Token.__init__` (claim checks)", lambda m: init[m] - decode[m]),
        ("`get_validated_token`", lambda m: validated[m] - init[m]),
        ("`authenticate` (header parsing, `TokenUser`)", lambda m: authenticate[m] - validated[m]),
        ("**total**", lambda m: authenticate[m]),
    ]
    lines = [f"Where a warm stateless `authenticate()` spends its µs ({run['how']}):", "",
             "| layer | vanilla | patched |", "|---|---|---|"]  # fmt: skip
    for title, share in rows:
        lines.append(f"| {title} | {share('vanilla'):.2f} µs | {share('patched'):.2f} µs |")
    lines.append("")
    return lines


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
