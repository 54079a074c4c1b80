"""Tests that hunt (issue 8): hypothesis at every trust boundary, through DRF's real request path.

Counts come from the environment so that CI's ``fuzz`` sessions feed 10,000 tokens and 5,000 key-set
responses (``SJP_FUZZ_TOKENS``, ``SJP_FUZZ_KEYSETS``) while each matrix cell runs a short version.
Every example asserts: never a 500 (only 200 or 401), and - through the autouse leak detector -
never a token or a secret header value in any log record.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.helpers import craft
from tests.strategies import (
    cache_controls,
    hostile_json,
    key_set_bodies,
    setting_values,
    token_claims,
    token_headers,
)

pytestmark = pytest.mark.django_db

TOKENS = int(os.environ.get("SJP_FUZZ_TOKENS", "50"))
KEYSETS = int(os.environ.get("SJP_FUZZ_KEYSETS", "30"))


def fuzz(examples: int) -> hsettings:
    """Bounded count, no deadline (a cold JWKS fetch per example), no example database on disk."""
    return hsettings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)


STATS: dict[str, int] = {"tokens": 0, "keysets": 0}


_BASE: dict[str, dict[str, object]] = {}


def _raw_token(idp, header: dict[str, str], claims: dict[str, str], signed: bool) -> str:
    import base64
    import json

    if idp.active_kid not in _BASE:
        _BASE.clear()
        _BASE[idp.active_kid] = json.loads(base64.urlsafe_b64decode(idp.mint(expires_in=3600).split(".")[1] + "==="))
    base_claims = _BASE[idp.active_kid]
    claims_text = json.dumps({k: v for k, v in base_claims.items() if k not in claims})[:-1]
    claims_text += "".join(f", {json.dumps(k)}: {v}" for k, v in claims.items()) + "}"
    header_text = '{"alg": "RS256", "typ": "JWT", "kid": ' + json.dumps(idp.active_kid)
    header_text += "".join(f", {json.dumps(k)}: {v}" for k, v in header.items()) + "}"
    token = craft(idp, header=header_text, claims=claims_text)
    if not signed:
        token = token.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    return token


@fuzz(TOKENS)
@given(header=token_headers, claims=token_claims, signed=st.booleans())
def test_any_token_is_200_or_401(api, idp, header, claims, signed):
    response = api(_raw_token(idp, header, claims, signed))
    STATS["tokens"] += 1
    assert response.status_code in (200, 401), (response.status_code, header, claims, response.content[:300])


_TOKENS: dict[str, str] = {}


def _token(idp) -> str:
    """One valid token per signing key (minting is an RSA signature: not per example)."""
    if idp.active_kid not in _TOKENS:
        _TOKENS.clear()
        _TOKENS[idp.active_kid] = idp.mint(expires_in=3600)
    return _TOKENS[idp.active_kid]


@fuzz(KEYSETS)
@given(data=st.data(), cache_control=cache_controls)
def test_any_key_set_response_is_200_or_401(api, idp, fresh_backend, data, cache_control):
    good = [k for k in idp.jwks()["keys"] if k.get("use") == "sig"]
    body = data.draw(key_set_bodies(good_keys=good))
    idp.jwks_body = body
    idp.cache_control = cache_control
    fresh_backend()  # a new client: a cold fetch of this body
    response = api(_token(idp))
    STATS["keysets"] += 1
    assert response.status_code in (200, 401), (response.status_code, body[:200], response.content[:300])


@fuzz(min(KEYSETS, 300))
@given(entry=st.one_of(setting_values, st.fixed_dictionaries({"v": st.sampled_from([1, 2]), "body": setting_values,
                                                             "mac": setting_values})))  # fmt: skip
def test_any_shared_cache_entry_is_ignored_unless_authentic(api, idp, fresh_backend, entry):
    """Finding 10 and 11: wrong field types gave a 500; whoever writes the cache could plant a key."""
    from django.core.cache import caches

    from simplejwt_patches.shared_cache import SharedCache

    caches_conf = {**settings.CACHES, "fuzz": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=caches_conf, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "fuzz"}):
        try:
            caches["fuzz"].set(SharedCache.key(idp.jwks_url), entry, timeout=60)
        except Exception:  # noqa: BLE001 - a value the cache itself cannot store is no entry
            pytest.skip("unpicklable value")
        fresh_backend()
        response = api(_token(idp))
    assert response.status_code == 200, response.content[:300]


class _Planted:
    """A pickle that creates ``marker`` when loaded: a code execution, if it ever happens."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "a"))


@st.composite
def _raw_cache_values(draw, url: str, marker: str, forged_keys: list[dict[str, object]]) -> bytes:
    """Bytes an attacker who can write Redis (but lacks SECRET_KEY) may put at the package's keys."""
    import json
    import pickle
    import time

    kind = draw(st.sampled_from(["bytes", "code", "pickle", "forged", "forged", "prefix"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "code":
        return pickle.dumps(_Planted(marker), protocol=draw(st.integers(min_value=0, max_value=5)))
    if kind == "pickle":
        old_format = st.fixed_dictionaries({"v": st.just(2), "body": st.text(max_size=20), "mac": st.text(max_size=64)})
        return pickle.dumps(draw(st.one_of(setting_values, old_format)))
    now = time.time()
    body = {"url": url, "generation": draw(st.integers(min_value=0, max_value=2**60)), "fetched": now,
            "expires": now + 300, "lifetime": 300.0, "etag": None, "last_modified": None,
            "payload": {"keys": forged_keys}}  # fmt: skip
    text = json.dumps(body) if kind == "forged" else draw(st.text(max_size=60))
    mac = draw(st.one_of(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(str.encode),
                         st.binary(min_size=64, max_size=64), st.binary(max_size=70)))  # fmt: skip
    return b"sjp-jwks-3\n" + mac + b"\n" + text.encode("utf-8", "surrogatepass")


CODE_RUNS = {"runs": 0, "forgeries": 0}
_ATTACKER: dict[str, object] = {}


@fuzz(min(KEYSETS, 300))
@given(data=st.data(), keys=st.lists(st.sampled_from(["", ":lock", ":demand"]), min_size=1, max_size=3, unique=True))
def test_raw_bytes_and_pickles_in_redis_never_run_or_plant_a_key(api, idp, redis, fresh_backend, data, keys,
                                                                 tmp_path_factory):  # fmt: skip
    """Issue 16: Django's RedisCache unpickled whatever the cache held, before the seal was checked."""
    import json

    from django.core.cache import caches
    from jwt.algorithms import RSAAlgorithm

    from simplejwt_patches.shared_cache import SharedCache
    from tests.idp import generate_rsa_key

    if "key" not in _ATTACKER:  # one RSA key for the whole run
        _ATTACKER["key"] = generate_rsa_key()
    attacker = _ATTACKER["key"]
    marker = str(tmp_path_factory.getbasetemp() / "fuzz-code-ran")
    planted = {**json.loads(RSAAlgorithm.to_jwk(attacker.public_key())), "kid": "planted", "use": "sig"}
    forged_keys = [*[k for k in idp.jwks()["keys"] if k.get("use") == "sig"], planted]
    conf = {**settings.CACHES, "fuzzredis": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                             "LOCATION": redis}}  # fmt: skip
    with override_settings(CACHES=conf, SIMPLE_JWT_PATCHES={"JWKS_SHARED_CACHE": "fuzzredis", "JWKS_TIMEOUT": 1}):
        cache = caches["fuzzredis"]
        raw = cache._cache.get_client(None, write=True)
        key = SharedCache.key(idp.jwks_url)
        for suffix in keys:
            raw.set(cache.make_key(key + suffix), data.draw(_raw_cache_values(idp.jwks_url, marker, forged_keys)),
                    ex=60)  # fmt: skip
        fresh_backend()
        response = api(_token(idp))
        forged = api(idp.mint(kid="planted", key=attacker))
    CODE_RUNS["runs"] += os.path.exists(marker)
    CODE_RUNS["forgeries"] += forged.status_code == 200
    assert CODE_RUNS == {"runs": 0, "forgeries": 0}
    assert response.status_code == 200, response.content[:300]
    assert forged.status_code == 401


@fuzz(min(KEYSETS * 10, 300))
@given(raw=st.dictionaries(st.sampled_from([s.key for s in __import__("simplejwt_patches.conf").conf.SCHEMA]),
                           setting_values, max_size=4))  # fmt: skip
def test_any_settings_value_gives_check_messages_never_an_exception(raw):
    import math

    from simplejwt_patches.checks import check_disable, check_settings
    from simplejwt_patches.conf import SCHEMA, build_options

    options = build_options(raw)
    for s in SCHEMA:
        value = options.value(s.key)
        if isinstance(value, float):
            assert math.isfinite(value) and value >= 0, s.key
    with override_settings(SIMPLE_JWT_PATCHES=raw):
        messages = check_settings() + check_disable()
    assert all(m.id.startswith("simplejwt_patches.") for m in messages)


#: Members the usable-key rule types (strings, then lists of strings), and names it must ignore.
_TYPED = ("kid", "kty", "alg", "use", "crv", "n", "e", "x", "y", "k", "x5u", "x5t", "x5t#S256", "key_ops", "x5c")
_huge = st.integers(min_value=17_000, max_value=20_000).map(lambda n: "A" * n)  # 9 of them fit JWKS_MAX_BYTES
_member_values = st.one_of(
    hostile_json, _huge, st.lists(_huge, max_size=1), st.dictionaries(st.text(max_size=3), _huge, max_size=1)
)


def _must_drop(member: str, value: object) -> bool:
    """Whether this member value makes any entry unusable: a wrong JSON type, or a string too long."""
    from simplejwt_patches.keys import MAX_MEMBER_CHARS, MAX_NAME_CHARS

    if member not in _TYPED:
        return False
    if value is None:
        return member in ("kid", "kty")
    if member in ("key_ops", "x5c"):
        return not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    if not isinstance(value, str):
        return True
    return len(value) > (MAX_NAME_CHARS if member in ("kid", "kty", "alg", "use", "crv") else MAX_MEMBER_CHARS)


@fuzz(KEYSETS)
@given(
    data=st.data(),
    edits=st.lists(
        st.dictionaries(st.sampled_from([*_TYPED, "d", "oth", "ext", "x-vendor"]), _member_values, min_size=1,
                        max_size=3),
        min_size=1, max_size=3,
    ),
)  # fmt: skip
def test_any_json_in_any_member_keeps_the_good_key(api, idp, fresh_backend, caplog, data, edits):
    """Issue 16 point 15: one entry whose kty is a list or an object made every token a 401, unlogged.

    Each hostile entry is the good key under another kid with some members replaced by any JSON;
    the good key still verifies (200) and every entry a member makes unusable gets one WARNING line.
    """
    import json
    import logging

    good = next(k for k in idp.jwks()["keys"] if k.get("kid") == idp.active_kid)  # the key _token signs with
    hostile = [{**good, "kid": f"hostile-{i}", **edit} for i, edit in enumerate(edits)]
    position = data.draw(st.integers(min_value=0, max_value=len(hostile)))
    entries = [*hostile[:position], good, *hostile[position:]]
    idp.jwks_body = json.dumps({"keys": entries}).encode()
    fresh_backend()
    caplog.clear()
    with caplog.at_level(logging.DEBUG, "simplejwt_patches"):
        response = api(_token(idp))
    STATS["keysets"] += 1
    assert response.status_code == 200, (response.status_code, edits, response.content[:300])
    lines = [r for r in caplog.records if r.name == "simplejwt_patches.jwks" and "is not used" in r.getMessage()]
    indexes = [int(r.getMessage().split("key #", 1)[1].split(" ", 1)[0]) for r in lines]
    assert len(indexes) == len(set(indexes)), [r.getMessage()[:200] for r in lines]  # one line per entry
    assert position not in indexes
    for index in range(len(entries)):
        edit = edits[index if index < position else index - 1] if index != position else {}
        if any(_must_drop(m, v) for m, v in edit.items()):
            (line,) = [r for r, i in zip(lines, indexes, strict=True) if i == index]
            assert line.levelno == logging.WARNING, line.getMessage()[:200]
