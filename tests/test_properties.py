"""Property tests (hypothesis) for the pure helpers: Cache-Control bounds, redaction, describing tokens."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from simplejwt_patches.conf import build_options
from simplejwt_patches.diagnostics import fingerprint, redact
from simplejwt_patches.transport import cache_lifetime

OPTIONS = build_options({"JWKS_CACHE_MIN": 60, "JWKS_CACHE_MAX": 86400, "JWKS_CACHE_LIFESPAN": 300})


@settings(max_examples=200, deadline=None)
@given(max_age=st.integers(min_value=0, max_value=10**9), extra=st.sampled_from(["", "public, ", "private, "]))
def test_max_age_is_always_clamped(max_age: int, extra: str):
    lifetime, storable = cache_lifetime(f"{extra}max-age={max_age}", OPTIONS)
    assert OPTIONS.cache_min <= lifetime <= OPTIONS.cache_max and storable
    if OPTIONS.cache_min <= max_age <= OPTIONS.cache_max:
        assert lifetime == max_age


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=60))
def test_any_cache_control_header_gives_a_bounded_or_fallback_lifetime(header: str):
    lifetime, storable = cache_lifetime(header, OPTIONS)
    assert lifetime == OPTIONS.cache_lifespan or OPTIONS.cache_min <= lifetime <= OPTIONS.cache_max
    if "no-store" in header.lower():
        assert not storable and lifetime == OPTIONS.cache_min


segment = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=16, max_size=80)


@settings(max_examples=200, deadline=None)
@given(header=segment, payload=segment, signature=segment, before=st.text(max_size=30), after=st.text(max_size=30))
def test_redact_never_leaves_the_token_or_a_segment(header, payload, signature, before, after):
    token = f"{header}.{payload}.{signature}"
    text = redact(f"{before}{token}{after} sig={signature}", token)
    assert token not in text and signature not in text


@settings(max_examples=100, deadline=None)
@given(raw=st.text(max_size=200))
def test_fingerprint_never_raises_and_never_echoes_the_input(raw):
    info = fingerprint(raw)
    assert len(info["sha256"]) == 12
    if len(raw) >= 32:
        assert raw not in repr(info)


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        st.integers() | st.text(max_size=300) | st.floats(),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=30,
    )
)
def test_fingerprint_values_stay_small_whatever_the_token_carries(value):
    import base64
    import json

    def seg(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    info = fingerprint(f"{seg({'kid': value, 'alg': value})}.{seg({'iss': value, 'aud': value})}.sig")
    assert len(repr(info)) < 2_000
