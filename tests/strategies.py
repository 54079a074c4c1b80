"""Hypothesis strategies for every trust boundary: hostile JSON values, tokens, key sets, headers.

Every strategy reaches the values the first round never generated: NaN, +-inf, huge and negative
numbers, deep nesting, wrong JSON types, empty, unicode and CR/LF strings.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "cache_controls",
    "hostile_json",
    "hostile_numbers",
    "hostile_scalars",
    "hostile_strings",
    "json_text",
    "jwk_entries",
    "key_set_bodies",
    "setting_values",
    "token_claims",
    "token_headers",
]

hostile_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 1e19, -1e19, 1e308, 10**30, 2**63, -(2**63), 0.5, 1e-300]),
)
hostile_strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\r\n", "a\r\nInjected: 1", "\x00", "é", "𝕏", "none", "RS256", "HS256", "1e999", "123"]),
)
hostile_scalars = st.one_of(hostile_numbers, hostile_strings, st.none(), st.booleans())
hostile_json = st.recursive(
    hostile_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_strings, children, max_size=4),
    max_leaves=8,
)


@st.composite
def json_text(draw: st.DrawFn, value: st.SearchStrategy[Any] = hostile_json) -> str:
    """JSON text as a hostile peer writes it: NaN/Infinity literals, 1e999, or very deep nesting."""
    kind = draw(st.sampled_from(["value", "value", "value", "deep", "literal"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=50, max_value=5_000))
        return "[" * depth + "]" * depth
    if kind == "literal":
        return draw(st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-0", "1" * 400, '"\\ud800"']))
    return json.dumps(draw(value))


#: Claims a token may carry, each possibly replaced by a hostile value (raw JSON text).
CLAIMS = ("exp", "nbf", "iat", "iss", "aud", "sub", "typ", "jti", "azp")
token_claims = st.dictionaries(st.sampled_from(CLAIMS), json_text(), max_size=4)
token_headers = st.dictionaries(st.sampled_from(("alg", "kid", "typ", "crit", "jku", "x5u")), json_text(), max_size=3)

_jwk_fields = st.sampled_from(("kid", "kty", "alg", "use", "n", "e", "crv", "x", "y", "k", "x5c", "key_ops"))
jwk_entries = st.one_of(
    hostile_json,
    st.dictionaries(_jwk_fields, hostile_json, max_size=6),
    st.fixed_dictionaries(
        {"kid": hostile_json, "kty": st.sampled_from(["RSA", "EC", "oct", "OKP", "", "rsa"]), "alg": hostile_json}
    ),
)


@st.composite
def key_set_bodies(draw: st.DrawFn, good_keys: list[dict[str, Any]] | None = None) -> bytes:
    """A JWKS response body: garbage, a hostile ``keys`` value, or hostile keys around the good ones."""
    kind = draw(st.sampled_from(["entries", "entries", "around-good", "keys-value", "text", "bytes"]))
    if kind == "text":
        return draw(json_text()).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "keys-value":
        return ('{"keys": ' + draw(json_text()) + "}").encode("utf-8", "surrogatepass")
    entries = draw(st.lists(jwk_entries, max_size=4))
    if kind == "around-good" and good_keys:
        position = draw(st.integers(min_value=0, max_value=len(entries)))
        entries = [*entries[:position], *good_keys, *entries[position:]]
    return json.dumps({"keys": entries}).encode()


#: Cache-Control values an IdP or a proxy in front of it may send (no CR/LF: a header cannot carry one).
cache_controls = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.builds(lambda v: f"max-age={v}", st.one_of(hostile_numbers.map(str), hostile_strings.filter(str.isprintable))),
    st.sampled_from(["no-store", "no-cache", "max-age=nan", "max-age=inf", "max-age=-1", "max-age=1e999"]),
)

#: Any Python value a settings file may hold.
setting_values = st.one_of(
    hostile_json,
    st.tuples(hostile_scalars, hostile_scalars),
    st.frozensets(st.text(max_size=5), max_size=3),
    st.builds(object),
)
