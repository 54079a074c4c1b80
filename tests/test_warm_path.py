"""The warm path (issue 17, point 5): the key lookup reads a token's kid from its header segment
only, and answers every malformed token exactly as when PyJWT reads the whole token first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches.patches import pyjwk_client
from tests.helpers import _b64, craft

pytestmark = pytest.mark.django_db


def _swap(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


def _variants(idp: Any) -> dict[str, str]:
    """Tokens whose header names the cached kid, each wrong in another way (or not at all)."""
    good = idp.mint()
    header, payload, signature = good.split(".")
    last = header[-1]
    sibling = {"J": "K", "9": "8", "0": "1"}.get(last, "A")  # same first bits, other trailing bits
    kid = idp.active_kid
    nested = "[" * 300 + "]" * 300
    return {
        "valid": good,
        "header padded (not what was signed)": _swap(good, 0, header + "=" * (-len(header) % 4)),
        "payload not base64url": _swap(good, 1, "!!!!"),
        "payload padded wrongly": _swap(good, 1, payload + "==="),
        "payload not JSON": _swap(good, 1, _b64(b"\xff\xfe not json")),
        "signature cut": _swap(good, 2, signature[:-7]),
        "signature not base64url": _swap(good, 2, signature[:-2] + "*+"),
        "header with other trailing bits": _swap(good, 0, header[:-1] + sibling),
        "two segments": f"{header}.{payload}",
        "one segment": header,
        "kid not a string": craft(idp, header=json.dumps({"alg": "RS256", "kid": [kid]})),
        "no kid": craft(idp, header=json.dumps({"alg": "RS256"})),
        "unknown kid": craft(idp, header=json.dumps({"alg": "RS256", "kid": kid + "-other"})),
        "unsupported crit": craft(idp, header=json.dumps({"alg": "RS256", "kid": kid, "crit": ["x-sjp"]})),
        "b64 false": craft(idp, header=json.dumps({"alg": "RS256", "kid": kid, "b64": False})),
        "alg none": craft(idp, header=json.dumps({"alg": "none", "kid": kid})),
        "signed, header nested 300 deep": craft(idp, header=f'{{"alg": "RS256", "kid": "{kid}", "x": {nested}}}'),
        "signed, header of 2 KiB": craft(idp, header=json.dumps({"alg": "RS256", "kid": kid, "x": "x" * 2048})),
        "header a JSON list": _swap(good, 0, _b64(json.dumps(["RS256", kid]).encode())),
    }


def _answers(api: Any, tokens: dict[str, str]) -> dict[str, tuple[int, Any]]:
    return {name: (r.status_code, r.json()) for name, r in ((n, api(t)) for n, t in tokens.items())}


@pytest.mark.fixer("pyjwt.client.key-source")
def test_every_token_gets_the_answer_it_gets_when_pyjwt_reads_the_whole_token(api, idp, monkeypatch):
    tokens = _variants(idp)
    with override_settings(SIMPLE_JWT_PATCHES={**settings.SIMPLE_JWT_PATCHES, "EXPOSE_ERROR_DETAIL": True}):
        assert api(tokens["valid"]).status_code == 200  # the key set is cached: the warm path
        fast = _answers(api, tokens)
        monkeypatch.setattr(pyjwk_client, "cached_kid", lambda token, keyset: None)  # always PyJWT's header
        whole = _answers(api, tokens)
    assert fast == whole
    assert {code for code, _ in fast.values()} == {200, 401}
    for name in ("valid", "signed, header nested 300 deep", "signed, header of 2 KiB"):
        assert fast[name][0] == 200, name
    for name in ("header padded (not what was signed)", "payload not base64url", "payload not JSON", "signature cut",
                 "two segments", "one segment", "no kid", "unknown kid"):  # fmt: skip
        assert fast[name][0] == 401, name  # what else PyJWT refuses depends on its version (crit, b64, alg)
    assert len(idp.jwks_requests()) <= 2  # the cold fetch and at most one demand refetch (the unknown kid)


@pytest.mark.fixer("pyjwt.client.key-source")
def test_warm_requests_read_the_header_segment_only(api, idp, monkeypatch):
    import jwt

    calls: list[object] = []
    original = jwt.get_unverified_header

    def counting(token: Any) -> Any:
        calls.append(token)
        return original(token)

    monkeypatch.setattr(jwt, "get_unverified_header", counting)
    assert api(idp.mint()).status_code == 200  # cold: nothing cached, PyJWT reads the header
    cold = len(calls)
    assert cold >= 1
    for _ in range(3):
        assert api(idp.mint()).status_code == 200
    assert len(calls) == cold  # warm: the kid came from the header segment
    unknown = craft(idp, header=json.dumps({"alg": "RS256", "kid": "not-published"}))
    assert api(unknown).status_code == 401
    assert len(calls) > cold  # a kid the set does not hold: PyJWT reads the header, as before


def test_cached_kid_is_bounded_and_refuses_what_is_not_a_plain_header(idp):
    keys = {"k": object()}

    class Fresh:
        expires_mono = float("inf")

    fresh = Fresh()
    fresh.keys = keys  # type: ignore[attr-defined]
    header = _b64(json.dumps({"alg": "RS256", "kid": "k"}).encode())
    assert pyjwk_client.cached_kid(f"{header}.e30.sig", fresh) == "k"
    assert pyjwk_client.cached_kid(f"{header}.e30.sig".encode(), fresh) == "k"
    assert pyjwk_client.cached_kid(f"{header}.e30.sig", None) is None  # nothing cached
    expired = Fresh()
    expired.expires_mono = float("-inf")
    expired.keys = keys  # type: ignore[attr-defined]
    assert pyjwk_client.cached_kid(f"{header}.e30.sig", expired) is None  # PyJWT reads the header of an expired set
    odd = [_b64(text.encode()) for text in ("{}", "[1]", '{"kid": 1}', '{"kid": NaN, "alg": "x"}', '"k"')]
    hostile = [header, header + "=.e30.s", "é" + header + ".e30.s", "A" * 2000 + ".e30.s", 12, None, "\r\n.e30.s",
               "A.e30.s", *(segment + ".e30.s" for segment in odd)]  # fmt: skip
    for token in hostile:
        assert pyjwk_client.cached_kid(token, fresh) is None, token
    for i in range(pyjwk_client._KIDS_MAX * 2):  # a flood of made-up headers
        pyjwk_client.cached_kid(f"{_b64(json.dumps({'kid': f'k{i}'}).encode())}.e30.s", fresh)
    assert len(pyjwk_client._kids) <= pyjwk_client._KIDS_MAX
