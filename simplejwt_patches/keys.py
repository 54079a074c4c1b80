"""The one rule for "usable signing key", applied to whatever JSON a JWKS endpoint returns.

:func:`usable_signing_keys` is the only place that decides which entries of a key set may verify
a token; the key source, the transport's PyJWT < 2.5 filter and the doctor all call it. Any JSON
yields the usable keys it contains: an unusable entry is dropped with one line saying why, and
the number of keys and the nesting depth are bounded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .failures import JWKSFailure

__all__ = [
    "MAX_DEPTH",
    "MAX_KEYS",
    "MAX_MEMBER_CHARS",
    "MAX_NAME_CHARS",
    "Dropped",
    "check_depth",
    "log_dropped",
    "usable_signing_keys",
]

logger = logging.getLogger("simplejwt_patches.jwks")

#: A key set holds a handful of keys; more than this is a broken or hostile response.
MAX_KEYS = 100
#: A JWK is at most 3 levels deep (set -> keys -> x5c); anything deeper is not a key set.
MAX_DEPTH = 16

#: Longest ``kid``, ``kty``, ``alg``, ``use`` or ``crv`` accepted (real ones are under 100 characters).
MAX_NAME_CHARS = 1024
#: Longest other string member (``n`` of a 16384-bit RSA key is 2,731 characters).
MAX_MEMBER_CHARS = 16_384

_ASYMMETRIC = frozenset({"RSA", "EC", "OKP"})
#: RFC 7517/7518 members whose value must be a string when present (names, then key material).
_NAMES = ("kid", "kty", "alg", "use", "crv")
_STRINGS = (*_NAMES, "n", "e", "x", "y", "k", "d", "p", "q", "dp", "dq", "qi", "x5u", "x5t", "x5t#S256")
#: Members whose value must be a list of strings when present.
_STRING_LISTS = ("key_ops", "x5c")


@dataclass(frozen=True)
class Dropped:
    """A key-set entry that cannot verify tokens, and why."""

    index: int
    kid: str | None  # shown only when it is a short string
    why: str
    expected: bool = False  # e.g. Keycloak's encryption key: not worth a warning


def check_depth(value: Any) -> None:
    """Raise :class:`JWKSFailure` (malformed) when ``value`` nests deeper than :data:`MAX_DEPTH`."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        current, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH:
            raise JWKSFailure("malformed", f"the JSON nests deeper than {MAX_DEPTH} levels")
        if seen > 1_000_000:  # bounded by the body size cap anyway
            raise JWKSFailure("malformed", "the JSON has too many values")
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)


def _short(value: Any) -> str | None:
    """``value`` when it is a short, printable string (safe inside one log line), else ``None``."""
    return value if isinstance(value, str) and 0 < len(value) <= 100 and value.isprintable() else None


def _json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for log lines (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _bad_member(entry: dict[str, Any]) -> str | None:
    """Why a standard member present in ``entry`` has an unusable type or size, or ``None``.

    ``null`` counts as absent for the optional members (some serialisers write ``"alg": null``);
    a ``kty`` must be there.
    """
    for name in _STRINGS:
        value = entry.get(name)
        if value is None and (name != "kty" or name not in entry):
            continue
        if not isinstance(value, str):
            return f"{name} is {_json_type(value)}, not a string"
        limit = MAX_NAME_CHARS if name in _NAMES else MAX_MEMBER_CHARS
        if len(value) > limit:
            return f"{name} is longer than {limit} characters"
    for name in _STRING_LISTS:
        value = entry.get(name)
        if value is None:
            continue
        if not isinstance(value, list):
            return f"{name} is {_json_type(value)}, not a list of strings"
        if not all(isinstance(item, str) for item in value):
            return f"{name} holds a value that is not a string"
    return None


def _why_unusable(entry: Any, seen: set[str]) -> tuple[str, bool] | None:
    """``(why, expected)`` when ``entry`` cannot verify tokens; decided by types first, so that any
    JSON value in any member (a list, an object, NaN, a huge string) is a reason, never a crash."""
    if not isinstance(entry, dict):
        return f"not a JSON object ({_json_type(entry)})", False
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return "kid is not a non-empty string", False
    bad = _bad_member(entry)
    if bad is not None:
        return bad, False
    use = entry.get("use")
    if use is not None and use != "sig":
        return f"use is {use[:100]!r}, not a signing key", use == "enc"
    kty = entry.get("kty")
    if kty not in _ASYMMETRIC:  # a string or absent: _bad_member refused every other type
        shown = "absent" if kty is None else repr(kty[:100])
        return f"kty {shown} is not an asymmetric key type (RSA, EC, OKP)", False
    alg = entry.get("alg")
    if alg is not None and (alg == "none" or alg.startswith("HS")):
        return f"alg {alg[:100]!r} cannot sign with a public key", False
    if kid in seen:
        return "a key with the same kid came first", False
    return None


def usable_signing_keys(payload: Any) -> tuple[dict[str, Any], list[Dropped]]:
    """``(kid -> PyJWK, dropped entries)`` for a parsed key set.

    Raises :class:`JWKSFailure` (``malformed``) when ``payload`` is not a JSON object with a
    ``keys`` list; an empty result is for the caller to refuse (``no_usable_key``).
    """
    from jwt.api_jwk import PyJWK  # not re-exported by PyJWT 2.0.x

    if not isinstance(payload, dict):
        raise JWKSFailure("malformed", f"the key set is a JSON {type(payload).__name__}, not an object")
    entries = payload.get("keys")
    if not isinstance(entries, list):
        raise JWKSFailure("malformed", f"'keys' is {type(entries).__name__}, not a list")
    usable: dict[str, Any] = {}
    dropped: list[Dropped] = []
    for index, entry in enumerate(entries):
        kid = _short(entry.get("kid")) if isinstance(entry, dict) else None
        if index >= MAX_KEYS:
            dropped.append(Dropped(index, kid, f"more than {MAX_KEYS} keys"))
            continue
        why = _why_unusable(entry, set(usable))
        if why is None:
            try:
                usable[entry["kid"]] = PyJWK(entry)
                continue
            except Exception as exc:  # noqa: BLE001 - PyJWT raises many types for a bad JWK
                why = (f"PyJWT cannot load it ({type(exc).__name__})", False)
        dropped.append(Dropped(index, kid, why[0], why[1]))
    return usable, dropped


def log_dropped(dropped: list[Dropped], url: str) -> None:
    """One line per dropped entry: DEBUG for expected ones (encryption keys), WARNING otherwise."""
    for d in dropped:
        logger.log(
            logging.DEBUG if d.expected else logging.WARNING,
            "JWKS %s: key #%d (kid %s) is not used: %s",
            url,
            d.index,
            d.kid if d.kid is not None else "-",
            d.why,
        )
