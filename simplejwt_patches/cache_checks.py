"""W051: the shared cache's Redis client must time out, or a paused Redis holds every request.

With ``JWKS_SHARED_CACHE``, a request that needs the key set makes round trips to that cache: a read,
and, for a refresh, the lock, the publish and the unlock. ``JWKS_TIMEOUT`` bounds the fetch from the
IdP, not these. redis-py waits for a reply as long as its ``socket_timeout`` says, which is forever by
default. It connects within ``socket_connect_timeout``, else within ``socket_timeout``, else for as long
as the operating system's SYN retries last (about two minutes on Linux). So a Redis that stops answering
(a failover, a paused process, a network partition) holds every worker thread that reaches it. A round
trip that times out instead marks the cache down, and each process fetches the key set alone until the
cache answers again (docs/resilience.md).

The timeouts are read as each backend hands them to redis-py, for every server of ``LOCATION`` (the
first takes the writes, the others the reads): a URL's query first; then, for django-redis,
``CONNECTION_POOL_KWARGS`` over ``SOCKET_TIMEOUT`` / ``SOCKET_CONNECT_TIMEOUT``, and for Django's
``RedisCache`` its ``OPTIONS`` as they are (django-redis' upper-case spelling there makes redis-py refuse
the connection, which W051 says too). Nothing is connected, and no URL is echoed (it may hold a password).
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core import checks

from .conf import SETTING, get_options

__all__ = ["check_shared_cache_timeouts", "redis_timeouts"]

TAG = "simplejwt_patches"
#: The two timeouts, by redis-py's name, with django-redis' upper-case spelling.
TIMEOUTS = {"socket_timeout": "SOCKET_TIMEOUT", "socket_connect_timeout": "SOCKET_CONNECT_TIMEOUT"}
_UNBOUNDED = {
    "socket_timeout": "waits for a reply forever",
    "socket_connect_timeout": "connects for as long as the operating system retries",  # with no socket_timeout either
}


def _seconds(value: Any, text: bool = False) -> float | None:
    """A timeout in seconds, or ``None`` for one that is missing or not a positive finite number (a string
    only where redis-py parses one, ``text``: a URL's query; in ``OPTIONS`` it fails at the first connect)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str) if text else (int, float)):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _servers(location: Any, kind: str) -> list[str]:
    """The server URLs of ``LOCATION`` as the backend splits a string (Django's ``RedisCache`` on ``,`` and
    ``;``, django-redis on ``,``): the first takes the writes, the others the reads (of other code than
    this package's), so every one of them must time out."""
    if isinstance(location, str):
        parts: list[Any] = re.split("[;,]" if kind == "redis" else ",", location)
    elif isinstance(location, (list, tuple)):
        parts = list(location)
    else:
        parts = []
    return [part.strip() for part in parts[:16] if isinstance(part, str) and part.strip()]


def _query(url: str) -> dict[str, str]:
    try:
        return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    except ValueError:  # a URL redis-py refuses too (the cache then fails at its first use)
        return {}


def redis_timeouts(conf: dict[str, Any], kind: str) -> list[dict[str, float | None]]:
    """Each server's effective ``socket_timeout`` and ``socket_connect_timeout`` (``None``: none), as the
    ``kind`` of backend (``"redis"``: Django's ``RedisCache``; ``"django-redis"``) passes them to redis-py:
    the URL's query wins; then django-redis' ``CONNECTION_POOL_KWARGS`` over its ``SOCKET_*`` options, or
    Django's ``OPTIONS`` as they are; redis-py connects within ``socket_timeout`` when no connect timeout
    is given."""
    options = conf.get("OPTIONS")
    options = options if isinstance(options, dict) else {}
    pool = options.get("CONNECTION_POOL_KWARGS")
    pool = pool if isinstance(pool, dict) else {}
    base: dict[str, float | None] = {}
    for name, upper in TIMEOUTS.items():
        if kind == "django-redis":
            pooled = _seconds(pool.get(name))
            base[name] = pooled if pooled is not None else _seconds(options.get(upper))
        else:
            base[name] = _seconds(options.get(name))
    found = []
    for url in _servers(conf.get("LOCATION"), kind) or [""]:
        query = _query(url)
        server = {name: _seconds(query[name], text=True) if name in query else base[name] for name in TIMEOUTS}
        if server["socket_connect_timeout"] is None:
            server["socket_connect_timeout"] = server["socket_timeout"]
        found.append(server)
    return found


def _problems(conf: dict[str, Any], kind: str, timeout: float) -> list[str]:
    servers = redis_timeouts(conf, kind)
    problems: list[str] = []
    for index, server in enumerate(servers):
        where = "" if len(servers) == 1 else f" on server {index + 1} of {len(servers)} in LOCATION"
        for name, seconds in server.items():
            if seconds is None:
                problems.append(f"no {name}{where} (redis-py then {_UNBOUNDED[name]})")
            elif seconds >= timeout:
                problems.append(f"{name} = {seconds:g} s{where}, not below JWKS_TIMEOUT = {timeout:g} s")
    options = conf.get("OPTIONS")
    sentinel = options.get("SENTINEL_KWARGS") if isinstance(options, dict) and options.get("SENTINELS") else None
    if kind == "django-redis" and isinstance(sentinel, dict) and _seconds(sentinel.get("socket_timeout")) is None:
        problems.append("SENTINEL_KWARGS without socket_timeout (given, they replace the socket options for the "
                        "sentinels, which are then asked with no timeout at every new connection)")  # fmt: skip
    if kind == "redis" and isinstance(options, dict):
        foreign = sorted(str(k)[:40] for k in options if k in TIMEOUTS.values() or k == "CONNECTION_POOL_KWARGS")
        if foreign:
            problems.append(f"OPTIONS {', '.join(foreign)}: django-redis' spelling, which Django's RedisCache hands "
                            "to redis-py as they are (redis-py refuses them: the cache fails)")  # fmt: skip
    return list(dict.fromkeys(problems))


@checks.register(TAG)
def check_shared_cache_timeouts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W051: a Redis ``JWKS_SHARED_CACHE`` without both socket timeouts, or with one not below ``JWKS_TIMEOUT``."""
    from django.utils.module_loading import import_string

    from .cache_store import backend_kind

    options = get_options()
    alias = options.shared_cache
    conf = (getattr(settings, "CACHES", None) or {}).get(alias) if alias else None
    if not isinstance(conf, dict):
        return []
    try:  # the class only: nothing is built or connected (E050 reports a backend that cannot be imported)
        kind = backend_kind(import_string(str(conf.get("BACKEND", ""))))
    except Exception:  # noqa: BLE001 - E050's to report
        return []
    if kind not in ("redis", "django-redis"):
        return []
    problems = _problems(conf, kind, options.timeout)
    if not problems:
        return []
    value = f"{min(0.3, options.timeout / 2):g}"  # a hint that passes the check it comes with
    names = ("SOCKET_TIMEOUT", "SOCKET_CONNECT_TIMEOUT") if kind == "django-redis" else tuple(TIMEOUTS)
    spelled = ", ".join(f'"{name}": {value}' for name in names)
    return [
        checks.Warning(
            f"{SETTING}['JWKS_SHARED_CACHE'] = {alias!r}: the Redis cache has {'; '.join(problems)}. Every request "
            "that needs the key set makes round trips to it, outside JWKS_TIMEOUT: a Redis that stops answering "
            "holds them all.",
            hint=f"Set CACHES[{alias!r}]['OPTIONS'] = {{{spelled}}} (and no URL query or CONNECTION_POOL_KWARGS "
            "that overrides them): a round trip that times out marks the cache down, and each process then fetches "
            "the key set alone until it answers again.",
            obj=SETTING,
            id="simplejwt_patches.W051",
        )
    ]
