"""The sealed values of the shared cache's coordination keys: the refresh lock (or, ``unsent``, the lock
a holder whose fetch was not sent hands over) and the demand budget.

Whoever can write the cache could otherwise plant a lock that keeps cold workers from ever fetching,
or a budget key without expiry that turns off rotation pick-up for the fleet. Their values are
therefore sealed like the entries (Django's ``salted_hmac`` keyed from ``SECRET_KEY``, a key in
``SECRET_KEY_FALLBACKS`` accepted) over the kind, the URL, the wall-clock time the key was taken and
a random nonce. A value is read as plain bytes (never unpickled) and parsed only after its MAC
verifies; :func:`open_mark` gives its taken-at time, and the caller breaks a key whose seal fails or
whose taken-at is further from now than the key may live.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from typing import Any

__all__ = ["open_mark", "seal_mark", "secret_keys"]

_PREFIX = b"sjp-mark-1\n"
_SALT = "simplejwt_patches.jwks.shared-cache.mark"
_KINDS = ("lock", "demand", "unsent")


def secret_keys() -> list[Any]:
    """``SECRET_KEY`` first, then ``SECRET_KEY_FALLBACKS`` (Django 4.1+): Django's own key rotation."""
    from django.conf import settings

    return [settings.SECRET_KEY, *(getattr(settings, "SECRET_KEY_FALLBACKS", None) or [])]


def _mac(body: str, url: str, secret: Any) -> bytes:
    from django.utils.crypto import salted_hmac

    return salted_hmac(_SALT, f"{url}\n{body}", secret=secret, algorithm="sha256").hexdigest().encode()


def seal_mark(kind: str, url: str, taken: float | None = None) -> bytes:
    """The value stored at ``kind``'s key for ``url``: taken now (``time.time()``) unless ``taken`` says when."""
    assert kind in _KINDS
    when = time.time() if taken is None else taken
    body = f"{kind}\n{when:.6f}\n{secrets.token_hex(16)}"
    return _PREFIX + _mac(body, url, secret_keys()[0]) + b"\n" + body.encode()


def open_mark(kind: str, value: Any, url: str) -> float | None:
    """When the ``kind`` key for ``url`` holding ``value`` was taken (wall clock), or ``None`` when the
    value is not one this fleet sealed (planted, another kind or URL, or written by an older release)."""
    if not isinstance(value, bytes) or not value.startswith(_PREFIX) or len(value) > 256:
        return None
    mac, _, raw = value[len(_PREFIX) :].partition(b"\n")
    try:
        body = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if len(mac) != 64 or not any(hmac.compare_digest(mac, _mac(body, url, s)) for s in secret_keys()):
        return None
    parts = body.split("\n")
    if len(parts) != 3 or parts[0] != kind:
        return None
    try:
        taken = float(parts[1])
    except ValueError:  # pragma: no cover - sealed by this package, so always a number
        return None
    return taken if math.isfinite(taken) else None
