"""Tests for the fake Keycloak in tests/idp.py (plain pytest, no Django needed)."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import jwt
import jwt.api_jwk
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.idp import FakeKeycloak, Mode, RecordedRequest, closed_port_url, generate_rsa_key

UA = {"User-Agent": "test"}


def public_key(jwk: dict[str, Any]) -> Any:
    """``jwt.PyJWK(jwk).key`` (PyJWT 2.0.0 only has it as ``jwt.api_jwk.PyJWK``)."""
    return getattr(jwt, "PyJWK", jwt.api_jwk.PyJWK)(jwk).key


@pytest.fixture
def idp() -> Iterator[FakeKeycloak]:
    with FakeKeycloak() as server:
        yield server


def fetch(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=UA if headers is None else headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def raw_get(url: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """GET without urllib's default User-Agent and without following redirects."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    conn.request("GET", parts.path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def sig_jwk(idp: FakeKeycloak, kid: str | None = None) -> dict[str, Any]:
    kid = kid or idp.active_kid
    return next(k for k in idp.jwks()["keys"] if k["kid"] == kid and k["use"] == "sig")


def test_urls(idp: FakeKeycloak) -> None:
    assert idp.base_url.startswith("http://127.0.0.1:")
    assert idp.issuer == f"{idp.base_url}/realms/demo"
    assert idp.jwks_url == f"{idp.issuer}/protocol/openid-connect/certs"
    assert idp.discovery_url == f"{idp.issuer}/.well-known/openid-configuration"


def test_discovery_document(idp: FakeKeycloak) -> None:
    idp.mode = Mode.SERVER_ERROR  # modes only affect the certs path
    status, headers, body = fetch(idp.discovery_url)
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["issuer"] == idp.issuer
    assert doc["jwks_uri"] == idp.jwks_url
    assert doc["authorization_endpoint"].startswith(idp.issuer)
    assert doc["token_endpoint"] == f"{idp.issuer}/protocol/openid-connect/token"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]


def test_jwks_shape(idp: FakeKeycloak) -> None:
    status, headers, body = fetch(idp.jwks_url)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    keys = json.loads(body)["keys"]
    assert json.loads(body) == idp.jwks()
    sig = [k for k in keys if k["use"] == "sig"]
    enc = [k for k in keys if k["use"] == "enc"]
    assert len(sig) == 1 and len(enc) == 1
    assert sig[0]["alg"] == "RS256" and enc[0]["alg"] == "RSA-OAEP"
    assert sig[0]["kid"] == idp.active_kid and sig[0]["kid"] != enc[0]["kid"]
    for key in keys:
        assert key["kty"] == "RSA" and len(key["kid"]) == 43
        assert "=" not in key["n"] and key["e"] == "AQAB"
        assert {"x5c", "x5t", "x5t#S256"} <= key.keys()
    cert = x509.load_der_x509_certificate(base64.b64decode(sig[0]["x5c"][0]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "demo"


def test_waf_mode(idp: FakeKeycloak) -> None:
    idp.mode = Mode.WAF
    assert raw_get(idp.jwks_url).status == 403
    assert raw_get(idp.jwks_url, {"User-Agent": "Python-urllib/3.11"}).status == 403
    status, _, body = fetch(idp.jwks_url, headers={})  # urllib's default User-Agent
    assert status == 403 and b"Forbidden" in body
    assert fetch(idp.jwks_url)[0] == 200
    assert raw_get(idp.jwks_url, {"User-Agent": "my-app/1.0"}).status == 200


@pytest.mark.parametrize(
    "mode, status",
    [
        (Mode.OK, 200),
        (Mode.FORBIDDEN, 403),
        (Mode.NOT_FOUND, 404),
        (Mode.SERVER_ERROR, 500),
        (Mode.EMPTY, 200),
        (Mode.MALFORMED, 200),
    ],
)
def test_fault_mode_status(idp: FakeKeycloak, mode: Mode, status: int) -> None:
    idp.mode = mode
    assert fetch(idp.jwks_url)[0] == status
    assert idp.jwks_requests()[-1].status == status


def test_empty_and_malformed(idp: FakeKeycloak) -> None:
    idp.mode = Mode.EMPTY
    assert json.loads(fetch(idp.jwks_url)[2]) == {"keys": []}
    idp.mode = Mode.MALFORMED
    status, headers, body = fetch(idp.jwks_url)
    assert status == 200 and headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_redirect_mode(idp: FakeKeycloak) -> None:
    idp.mode = Mode.REDIRECT
    response = raw_get(idp.jwks_url, UA)
    assert response.status == 302
    assert response.getheader("Location") == f"{idp.base_url}/elsewhere/certs"
    status, _, body = fetch(idp.jwks_url)  # urllib follows the redirect
    assert status == 200 and json.loads(body) == idp.jwks()
    idp.redirect_to = "http://127.0.0.1:9/somewhere"
    assert raw_get(idp.jwks_url, UA).getheader("Location") == "http://127.0.0.1:9/somewhere"


def test_close_mode(idp: FakeKeycloak) -> None:
    idp.mode = Mode.CLOSE
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        fetch(idp.jwks_url)
    assert idp.jwks_requests()[-1].status == 0


def test_hang_is_bounded(idp: FakeKeycloak) -> None:
    idp.mode = Mode.HANG
    idp.hang_seconds = 0.3
    started = time.monotonic()
    status, _, body = fetch(idp.jwks_url)
    elapsed = time.monotonic() - started
    assert status == 200 and json.loads(body) == idp.jwks()
    assert 0.25 <= elapsed < idp.hang_seconds + 1


def test_hang_times_out_client(idp: FakeKeycloak) -> None:
    idp.mode = Mode.HANG
    idp.hang_seconds = 0.8
    with pytest.raises((urllib.error.URLError, TimeoutError)):
        fetch(idp.jwks_url, timeout=0.2)


def test_stop_releases_hanging_request() -> None:
    idp = FakeKeycloak().start()
    idp.mode = Mode.HANG
    idp.hang_seconds = 30
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(r=fetch(idp.jwks_url, timeout=10)))
    worker.start()
    deadline = time.monotonic() + 1
    while not idp.jwks_requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert idp.jwks_requests()
    started = time.monotonic()
    idp.stop()
    worker.join(timeout=3)
    assert not worker.is_alive()
    assert time.monotonic() - started < 1.5
    assert result["r"][0] == 200
    idp.stop()  # idempotent


def test_rotate_keeps_old_key(idp: FakeKeycloak) -> None:
    old = idp.active_kid
    old_token = idp.mint()
    new = idp.rotate()
    assert new != old and idp.active_kid == new
    kids = [k["kid"] for k in json.loads(fetch(idp.jwks_url)[2])["keys"] if k["use"] == "sig"]
    assert set(kids) == {old, new}
    assert jwt.get_unverified_header(idp.mint())["kid"] == new
    jwt.decode(old_token, public_key(sig_jwk(idp, old)), algorithms=["RS256"], audience="account")
    newest = idp.rotate(keep_old=False)
    assert [k["kid"] for k in idp.jwks()["keys"] if k["use"] == "sig"] == [newest]
    assert jwt.get_unverified_header(idp.mint(kid=old))["kid"] == old  # retired key still signs


def test_mint_verifies_with_published_jwk(idp: FakeKeycloak) -> None:
    token = idp.mint()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] == idp.active_kid
    published = json.loads(fetch(idp.jwks_url)[2])["keys"]
    jwk = next(k for k in published if k["kid"] == header["kid"])
    claims = jwt.decode(token, public_key(jwk), algorithms=["RS256"], audience="account", issuer=idp.issuer)
    assert claims["sub"] == idp.subject
    assert claims["azp"] == "acme-web" and claims["typ"] == "Bearer"
    assert claims["aud"] == ["acme-api", "account"]  # an Audience mapper naming the API, then Keycloak's default
    assert claims["exp"] - claims["iat"] == 300
    assert claims["preferred_username"] == "alice"
    assert "default-roles-demo" in claims["realm_access"]["roles"]
    assert claims["resource_access"]["account"]["roles"] == ["manage-account", "view-profile"]


def test_mint_overrides_and_removal(idp: FakeKeycloak) -> None:
    token = idp.mint({"sub": None, "aud": ["demo-api", "account"], "extra": 1}, expires_in=-10, now=1_700_000_000)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "sub" not in claims
    assert claims["aud"] == ["demo-api", "account"] and claims["extra"] == 1
    assert claims["iat"] == 1_700_000_000 and claims["exp"] == 1_699_999_990
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, public_key(sig_jwk(idp)), algorithms=["RS256"], audience="account")


def test_mint_with_foreign_key(idp: FakeKeycloak) -> None:
    forged = idp.mint(key=generate_rsa_key())
    assert jwt.get_unverified_header(forged)["kid"] == idp.active_kid
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public_key(sig_jwk(idp)), algorithms=["RS256"], audience="account")
    pem_token = idp.mint(key=idp.signing_key_pem(), kid="made-up")
    assert jwt.get_unverified_header(pem_token)["kid"] == "made-up"
    jwt.decode(pem_token, public_key(sig_jwk(idp)), algorithms=["RS256"], audience="account")


def test_requests_recorded_and_reset(idp: FakeKeycloak) -> None:
    fetch(idp.discovery_url, headers={"User-Agent": "rec/1", "X-Trace-Id": "abc"})
    fetch(idp.jwks_url + "?x=1")
    idp.mode = Mode.FORBIDDEN
    fetch(idp.jwks_url)
    first, second, third = idp.requests
    assert isinstance(first, RecordedRequest)
    assert first.method == "GET" and first.path.endswith("/.well-known/openid-configuration")
    assert first.headers["X-Trace-Id"] == "abc" and first.headers["User-Agent"] == "rec/1"
    assert second.path.endswith("/certs?x=1") and second.status == 200
    assert third.status == 403 and first.monotonic <= second.monotonic <= third.monotonic
    assert idp.jwks_requests() == [second, third]
    kid = idp.active_kid
    idp.reset()
    assert idp.requests == [] and idp.mode is Mode.OK and idp.active_kid == kid


def test_unknown_path_is_404(idp: FakeKeycloak) -> None:
    assert fetch(f"{idp.base_url}/nope")[0] == 404
    assert json.loads(fetch(idp.issuer)[2])["realm"] == "demo"


def test_closed_port_url_refuses() -> None:
    url = closed_port_url()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/realms/demo/protocol/openid-connect/certs")
    with pytest.raises(urllib.error.URLError) as info:
        fetch(url, timeout=2)
    assert isinstance(info.value.reason, ConnectionRefusedError)


def test_https() -> None:
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with FakeKeycloak(realm="tls", ssl_context=server_ctx) as idp:
        assert idp.jwks_url.startswith("https://127.0.0.1:")
        status, _, body = fetch(idp.discovery_url, context=client_ctx)
        assert status == 200 and json.loads(body)["issuer"] == idp.issuer
        with pytest.raises(urllib.error.URLError):  # untrusted certificate
            fetch(idp.jwks_url, context=ssl.create_default_context())
        assert fetch(idp.jwks_url, context=client_ctx)[0] == 200
