"""W051: the shared cache's Redis client must time out, or a paused Redis holds every request.

With ``JWKS_SHARED_CACHE``, a request that needs the key set makes round trips to that cache: a read,
and, for a refresh, the lock, the publish and the unlock. ``JWKS_TIMEOUT`` bounds the fetch from the
IdP, not these. redis-py waits for a reply as long as its ``socket_timeout`` says, which is forever by
default. It connects for as long as ``socket_connect_timeout`` says, which by default is the operating
system's SYN retries, about two minutes on Linux. So a Redis that stops answering (a failover, a paused
process, a network partition) holds every worker thread that reaches it. A round trip that times out
instead marks the cache down, and each process fetches the key set alone until the cache answers again
(docs/resilience.md).

The timeouts are read where Django's ``RedisCache`` and django-redis take them: ``OPTIONS``
(``socket_timeout`` / ``socket_connect_timeout``, django-redis' ``SOCKET_TIMEOUT`` /
``SOCKET_CONNECT_TIMEOUT`` and ``CONNECTION_POOL_KWARGS``) and the ``LOCATION`` URL's query. Nothing is
connected.
"""

from __future__ import annotations

import math
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
    "socket_connect_timeout": "connects for as long as the operating system retries",
}


def _seconds(value: Any, text: bool = False) -> float | None:
    """A timeout in seconds, or ``None`` for one that is missing or not a positive finite number (a string
    only where redis-py parses one, ``text``: a URL's query; in ``OPTIONS`` it fails at the first connect)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str) if text else (int, float)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def redis_timeouts(conf: dict[str, Any]) -> dict[str, float | None]:
    """Each of :data:`TIMEOUTS` as the cache ``conf`` (one ``CACHES`` entry) sets it, else ``None``."""
    options = conf.get("OPTIONS")
    options = options if isinstance(options, dict) else {}
    pool = options.get("CONNECTION_POOL_KWARGS")
    pool = pool if isinstance(pool, dict) else {}
    location = conf.get("LOCATION")
    urls = [location] if isinstance(location, str) else location if isinstance(location, (list, tuple)) else []
    query: dict[str, list[str]] = {}
    for url in urls[:16]:
        if isinstance(url, str):
            for name, values in parse_qs(urlsplit(url).query).items():
                query.setdefault(name, values)
    found: dict[str, float | None] = {}
    for name, upper in TIMEOUTS.items():
        given = [_seconds(options.get(name)), _seconds(options.get(upper)), _seconds(pool.get(name))]
        given += [_seconds(value, text=True) for value in (query.get(name) or [])[:1]]
        found[name] = next((s for s in given if s is not None), None)
    return found


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
    problems = []
    for name, seconds in redis_timeouts(conf).items():
        if seconds is None:
            problems.append(f"no {name} (redis-py then {_UNBOUNDED[name]})")
        elif seconds >= options.timeout:
            problems.append(f"{name} = {seconds:g} s, not below JWKS_TIMEOUT = {options.timeout:g} s")
    if not problems:
        return []
    spelled = (
        '"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.3'
        if kind == "django-redis"
        else ('"socket_timeout": 0.3, "socket_connect_timeout": 0.3')
    )
    return [
        checks.Warning(
            f"{SETTING}['JWKS_SHARED_CACHE'] = {alias!r}: the Redis cache has {'; '.join(problems)}. Every request "
            "that needs the key set makes round trips to it, outside JWKS_TIMEOUT: a Redis that stops answering "
            "holds them all.",
            hint=f"Set CACHES[{alias!r}]['OPTIONS'] = {{{spelled}}}: a round trip that times out marks the cache "
            "down, and each process then fetches the key set alone until it answers again.",
            obj=SETTING,
            id="simplejwt_patches.W051",
        )
    ]
