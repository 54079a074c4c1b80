"""Issue 8: the doctor never tracebacks, whatever the token and whatever the key set.

Tokens are built from arbitrary JSON headers and claims (NaN, ±inf, huge and negative numbers,
deep nesting, wrong types, empty, unicode and CR/LF strings) and signed with the loopback IdP's
real key, or left unsigned, or are garbage; key sets are served by the loopback IdP. Every run must
end with exit 0 or 1, print ✓/✗ lines (or one JSON object), and never print the token.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import sys

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import register_sensitive_token
from tests.helpers import doctor, newest_cell_only

pytestmark = pytest.mark.django_db

#: Examples per property; the ``fuzz-*`` nox sessions raise them (SJP_FUZZ_DOCTOR_TOKENS/_KEYSETS).
DOCTOR_TOKENS = int(os.environ.get("SJP_FUZZ_DOCTOR_TOKENS", "50"))
DOCTOR_KEYSETS = int(os.environ.get("SJP_FUZZ_DOCTOR_KEYSETS", "50"))


def fuzz(examples: int) -> settings:
    """Bounded count, no deadline (each run fetches the key set), no example database on disk."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def dumps(value: object) -> str:
    """JSON as a hostile issuer may write it: NaN and Infinity literals allowed."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


_KEYS: dict[bytes, object] = {}  # loading a PEM key is slow; a fuzz run signs thousands of tokens


def craft(idp, header_json: str, claims_json: str, how: str = "signed") -> str:
    """A JWT from raw JSON texts; ``signed`` with the IdP's real RS256 key, ``unsigned`` or ``garbage``."""
    signing_input = (
        f"{b64(header_json.encode('utf-8', 'surrogatepass'))}.{b64(claims_json.encode('utf-8', 'surrogatepass'))}"
    )
    if how == "signed":
        pem = idp.signing_key_pem()
        key = _KEYS.get(pem)
        if key is None:
            key = _KEYS[pem] = serialization.load_pem_private_key(pem, password=None)
        signature = b64(key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))
    elif how == "unsigned":
        signature = ""
    else:
        signature = b64(b"not a signature at all")
    return register_sensitive_token(f"{signing_input}.{signature}")


def run(*args: str, token: str | None = None, stdin: str | None = None, monkeypatch=None) -> tuple[int, str]:
    """The command in-process; redaction is judged by :func:`assert_report` (any token text here)."""
    return doctor(*args, token=token, stdin=stdin, monkeypatch=monkeypatch, redacted=False)


def _said(value: object, keys: bool, depth: int = 0) -> list[str]:
    """Every string the report says: values, and keys where the token supplied them."""
    assert depth < 100
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _said(v, keys, depth + 1)]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in ([k] if keys else []) + _said(v, keys, depth + 1)]
    return []


def assert_report(code: int, text: str, token: str, as_json: bool) -> None:
    """The output's structure holds whatever the token; the token is never said (fixed labels aside)."""
    raw = token.strip()
    if as_json:
        data = json.loads(text)  # strict JSON below: no NaN/Infinity literals
        json.dumps(data, allow_nan=False)
        assert data["ok"] is (code == 0)
        assert all(c["ok"] in (True, False, None) for c in data["checks"])
        said = "\n".join(t for k, v in data.items() for t in _said(v, keys=k == "token"))
    else:
        lines = text.rstrip().splitlines()
        assert lines[-1] == ("result: OK" if code == 0 else "result: FAILED")
        if len(raw) >= 8:  # a shorter token is redacted wherever it occurs (even in a ✓)
            assert any(line.startswith(("✓", "✗")) for line in lines)
        said = "\n".join(lines[:-1])
    if len(raw) >= 12:
        assert raw not in said
        signature = raw.split(".")[-1]
        if len(signature) >= 16:
            assert signature not in said


# -- fixed regressions from issue 8 ---------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("garbage", ["result: .", 'x.", "ok": .y', "simplejwt_doctor", '{"ok": false}.checks"'])
def test_redaction_never_cuts_through_the_reports_structure(alice, idp, fresh_backend, garbage, as_json):
    """Found by fuzz-5.5.1: the token ``result: .`` was redacted out of the last line (``[redacted]FAILED``)."""
    code, text = run(*(["--json"] if as_json else []), token=garbage)
    assert code == 1
    assert_report(code, text, garbage, as_json)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", ["1e999", "-1e999", "NaN", "1" + "0" * 400, "true", '"soon"', "[]"])
def test_absurd_times_on_a_validly_signed_token(alice, idp, fresh_backend, claim, literal):
    claims = dumps(json.loads(json.dumps({**json.loads(_claims_json(idp)), claim: 0}))).replace(
        f'"{claim}": 0', f'"{claim}": {literal}'
    )
    token = craft(idp, dumps({"alg": "RS256", "typ": "JWT", "kid": idp.active_kid}), claims)
    for args in ((), ("--json",)):
        code, text = run(*args, token=token)
        assert_report(code, text, token, bool(args))  # the verdict differs by release (PyJWT 2.4 ignores iat)
        if not args:
            assert any(line.startswith(("✗ expiry", "✗ clock")) for line in text.splitlines()), text
            if claim == "exp" and literal in ("1e999", "-1e999", "NaN"):
                assert code == 1


def _claims_json(idp) -> str:
    import jwt

    return json.dumps(jwt.decode(idp.mint(), options={"verify_signature": False}))


@pytest.mark.parametrize(
    "alg", [["RS256"], "none", "None", "HS256", "HS512", {"alg": "RS256"}, None, 256, "", "RS256\r\nX: y"]
)
def test_hostile_alg_headers(alice, idp, fresh_backend, alg):
    header = {"typ": "JWT", "kid": idp.active_kid} if alg is None else {"alg": alg, "typ": "JWT", "kid": idp.active_kid}
    for how in ("signed", "unsigned"):
        token = craft(idp, dumps(header), _claims_json(idp), how)
        code, text = run(token=token)
        assert code == 1
        assert_report(code, text, token, False)
        assert "✗ algorithm:" in text
        assert "✓ signature" not in text  # never verified with the token's own algorithm


def test_hs256_signed_with_the_public_key_is_rejected(alice, idp, fresh_backend):
    """The classic confusion attack: HS256 keyed with the RSA public key PEM."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization as ser

    public = (
        ser.load_pem_private_key(idp.signing_key_pem(), password=None)
        .public_key()
        .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(dumps({"alg": "HS256", "typ": "JWT", "kid": idp.active_kid}).encode())
    body = b64(_claims_json(idp).encode())
    mac = b64(hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest())
    token = register_sensitive_token(f"{header}.{body}.{mac}")
    code, text = run(token=token)
    assert code == 1 and "✗ algorithm:" in text and "✓ signature" not in text
    assert "✗ verdict: the API would answer 401" in text


@pytest.mark.parametrize(
    "key",
    [
        {"kid": "k1", "kty": "XYZ", "use": "sig", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
        {"kid": "k1", "kty": "RSA", "use": "sig", "alg": "RS256", "n": 12345, "e": "AQAB"},
        {"kid": "k1", "kty": "RSA", "use": "sig", "alg": "RS256", "n": "AQAB", "e": ""},
        {"kid": "k1", "kty": "RSA", "use": "sig", "alg": "RS256"},
        {"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
    ],
    ids=["kty-wrong", "n-number", "e-empty", "no-n-e", "only-enc"],
)
def test_a_broken_jwks_is_never_healthy(idp, key):
    idp.jwks_body = json.dumps({"keys": [key]}).encode()
    code, text = run()
    assert code == 1
    assert "✗ JWKS" in text and "problem: no_usable_key" in text
    fix = text.split("problem: no_usable_key", 1)[1].splitlines()[1]
    assert fix.strip().startswith("fix:")
    jcode, jtext = run("--json")
    assert jcode == 1 and json.loads(jtext)["jwks"]["problem"] == "no_usable_key"


# -- token files and standard input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01binary\x00", "binary data"),
        (b"\xff\xfe\xfa not utf-8", "not UTF-8"),
        (b"a" * (64 * 1024 + 10), "more than 65536 bytes"),
        (b"   \n", "the token is empty"),
    ],
    ids=["binary", "non-utf8", "huge", "blank"],
)
def test_bad_token_files_are_command_errors(idp, tmp_path, monkeypatch, data, message):
    path = tmp_path / "token.bin"
    path.write_bytes(data)
    with pytest.raises(CommandError, match=message):
        call_command("simplejwt_doctor", "--token-file", str(path), stdout=io.StringIO())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    with pytest.raises(CommandError, match=message):
        call_command("simplejwt_doctor", "-", stdout=io.StringIO())
    with pytest.raises(CommandError, match="cannot read --token-file"):
        call_command("simplejwt_doctor", "--token-file", str(tmp_path / "missing"), stdout=io.StringIO())


@newest_cell_only  # the subprocess; the hunts in-process run on every pin
def test_no_traceback_from_a_real_subprocess(idp, tmp_path):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.project.settings", "PYTHONPATH": str(root),
           "SJP_JWK_URL": idp.jwks_url, "SJP_ISSUER": idp.issuer}  # fmt: skip
    path = tmp_path / "token.bin"
    path.write_bytes(b"\xff\x00garbage")
    done = subprocess.run(
        [sys.executable, "-m", "django", "simplejwt_doctor", "--token-file", str(path)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "CommandError: --token-file: binary data" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "django", "simplejwt_doctor", "--auth-class", "no.such.Class"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr and "--auth-class" in done.stderr


# -- property-based -------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 10**400, -1, 0, 2**63, 1e308]),
    st.text(max_size=30),
    st.sampled_from(["", "\r\n", "Bearer x", "ü€😀", "a\nb", "RS256", "none", "sub"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
deep = st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n)


def header_strategy(kid: str) -> st.SearchStrategy[str]:
    header = st.fixed_dictionaries(
        {},
        optional={
            "alg": st.one_of(st.sampled_from(["RS256", "RS512", "none", "HS256", "ES256", ""]), json_values),
            "kid": st.one_of(st.just(kid), json_values),
            "typ": json_values,
            "crit": json_values,
        },
    ).map(dumps)
    return st.one_of(header, json_values.map(dumps), deep, st.text(max_size=40))


def claims_strategy(base: dict) -> st.SearchStrategy[str]:
    names = ["exp", "nbf", "iat", "iss", "aud", "sub", "typ", "jti", "azp"]
    overrides = st.dictionaries(st.one_of(st.sampled_from(names), st.text(max_size=6)), json_values, max_size=5)
    claims = overrides.map(lambda o: dumps({**base, **o}))
    return st.one_of(claims, json_values.map(dumps), deep, st.just(""))


_BASE: dict[str, dict[str, object]] = {}


def _base_claims(idp) -> dict[str, object]:
    """The IdP's usual claims, minted once per signing key (an RSA signature per example is slow)."""
    import jwt

    if idp.active_kid not in _BASE:
        _BASE.clear()
        _BASE[idp.active_kid] = jwt.decode(idp.mint(expires_in=3600), options={"verify_signature": False})
    return _BASE[idp.active_kid]


@fuzz(DOCTOR_TOKENS)
@given(data=st.data())
def test_any_token_gives_a_report(alice, idp, fresh_backend, monkeypatch, data):
    base = _base_claims(idp)
    header = data.draw(header_strategy(idp.active_kid), label="header")
    claims = data.draw(claims_strategy(base), label="claims")
    how = data.draw(st.sampled_from(["signed", "unsigned", "garbage"]), label="signature")
    token = craft(idp, header, claims, how)
    as_json = data.draw(st.booleans(), label="json")
    via = data.draw(st.sampled_from(["arg", "stdin"]), label="via")
    args = ("--json",) if as_json else ()
    if via == "stdin":
        code, text = run(*args, stdin=token, monkeypatch=monkeypatch)
    else:
        code, text = run(*args, token=token)
    assert_report(code, text, token, as_json)


@fuzz(DOCTOR_TOKENS)
@given(garbage=st.one_of(st.text(min_size=1, max_size=200), st.lists(st.text(max_size=30), max_size=5).map(".".join)))
def test_any_garbage_gives_a_report(alice, idp, fresh_backend, garbage):
    if not garbage.strip() or garbage.lstrip().startswith("-"):
        return  # empty: a CommandError by design; a leading dash is an option to argparse
    code, text = run(token=garbage)
    assert code == 1
    assert_report(code, text, garbage, False)


def jwk_strategy(real: dict) -> st.SearchStrategy[dict]:
    fields = {
        k: st.one_of(st.just(v), json_values) for k, v in real.items() if k in ("kid", "kty", "alg", "use", "n", "e")
    }
    return st.fixed_dictionaries({}, optional=fields)


@fuzz(DOCTOR_KEYSETS)
@given(data=st.data())
def test_any_key_set_gives_a_report(alice, idp, fresh_backend, data):
    real = idp.jwks()["keys"][-1]
    keys = data.draw(st.lists(jwk_strategy(real), max_size=3), label="keys")
    body = data.draw(
        st.one_of(
            st.just({"keys": keys}),
            st.just({"keys": [real, *keys]}),
            json_values,
        ).map(dumps),
        label="body",
    )
    idp.jwks_body = body.encode("utf-8", "surrogatepass")
    with_token = data.draw(st.booleans(), label="token")
    token = idp.mint() if with_token else None
    as_json = data.draw(st.booleans(), label="json")
    code, text = run(*(("--json",) if as_json else ()), token=token)
    if token is not None:
        assert_report(code, text, token, as_json)
    elif as_json:
        assert json.loads(text)["ok"] is (code == 0)
    else:
        assert "JWKS" in text and text.rstrip().endswith(("result: OK", "result: FAILED"))
    idp.jwks_body = None
