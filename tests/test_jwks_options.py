"""JWKS client options reach SimpleJWT's client, through the real request path.

Headers, timeout, CA bundle / SSL context (trustme), proxy, cache lifespan, redirects, size cap,
key rotation, ``override_settings`` and scope (other PyJWKClient users untouched).
"""

from __future__ import annotations

import logging
import ssl
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import trustme
from django.test import override_settings
from freezegun import freeze_time

from simplejwt_patches.clients import state_of
from simplejwt_patches.failures import JWKSResponseTooLarge
from tests.conftest import SECRET_HEADER_VALUE, last_exception
from tests.helpers import find_in_chain
from tests.idp import FakeKeycloak, Mode
from tests.proxy import RecordingProxy

pytestmark = pytest.mark.django_db


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES=options)


def jwt_settings(**overrides: object) -> override_settings:
    from django.conf import settings

    return override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, **overrides})


@pytest.mark.fixer("pyjwt.client.transport")
def test_configured_headers_are_merged_over_defaults(api, idp):
    with patches(
        JWKS_HEADERS={"User-Agent": "acme-api/1.0", "X-Api-Key": SECRET_HEADER_VALUE}, JWKS_SECRET_HEADERS=["x-api-key"]
    ):
        assert api(idp.mint()).status_code == 200
    (fetch,) = idp.jwks_requests()
    assert fetch.headers["User-Agent"] == "acme-api/1.0"
    assert fetch.headers["X-Api-Key"] == SECRET_HEADER_VALUE
    assert "json" in fetch.headers["Accept"]


def test_secret_headers_are_masked_in_the_fetch_log(api, idp, caplog):
    with (
        patches(JWKS_HEADERS={"Authorization": SECRET_HEADER_VALUE}),
        caplog.at_level(logging.DEBUG, "simplejwt_patches"),
    ):
        assert api(idp.mint()).status_code == 200
    assert idp.jwks_requests()[0].headers["Authorization"] == SECRET_HEADER_VALUE
    fetch_logs = [r.getMessage() for r in caplog.records if "JWKS fetched" in r.getMessage()]
    assert fetch_logs and "'Authorization': '***'" in fetch_logs[0]
    assert all(SECRET_HEADER_VALUE not in r.getMessage() for r in caplog.records)


def test_timeout_bounds_a_hanging_idp(api, idp):
    idp.mode = Mode.HANG
    idp.hang_seconds = 1.0
    with patches(JWKS_TIMEOUT=0.2):
        response = api(idp.mint())
    assert response.status_code == 401
    find_in_chain(last_exception(), TimeoutError)


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[FakeKeycloak, trustme.CA, Path]]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    with FakeKeycloak(realm="acme", ssl_context=server_ctx) as https_idp, ca.cert_pem.tempfile() as pem:
        yield https_idp, ca, Path(pem)


@pytest.fixture
def https_idp(tls, fresh_backend, alice):
    https_idp, _, _ = tls
    https_idp.reset()
    with jwt_settings(JWK_URL=https_idp.jwks_url, ISSUER=https_idp.issuer):
        fresh_backend()
        yield https_idp


def _with_tls_subject(https_idp: FakeKeycloak, idp: FakeKeycloak) -> str:
    from tests.conftest import register_sensitive_token

    return register_sensitive_token(https_idp.mint({"sub": idp.subject}))


def test_unknown_ca_is_rejected_with_the_tls_error_as_cause(api, idp, https_idp):
    assert api(_with_tls_subject(https_idp, idp)).status_code == 401
    find_in_chain(last_exception(), ssl.SSLCertVerificationError)


def test_ca_bundle_trusts_the_idp(api, idp, https_idp, tls):
    with patches(JWKS_CA_BUNDLE=str(tls[2])):
        assert api(_with_tls_subject(https_idp, idp)).status_code == 200


def test_ssl_context_object_trusts_the_idp(api, idp, https_idp, tls):
    ctx = ssl.create_default_context()
    tls[1].configure_trust(ctx)
    with patches(JWKS_SSL_CONTEXT=ctx):
        assert api(_with_tls_subject(https_idp, idp)).status_code == 200


TLS_CA: list[trustme.CA] = []


def make_context() -> ssl.SSLContext:
    """Dotted-path factory for JWKS_SSL_CONTEXT."""
    ctx = ssl.create_default_context()
    TLS_CA[0].configure_trust(ctx)
    return ctx


def test_ssl_context_factory_by_dotted_path(api, idp, https_idp, tls):
    TLS_CA[:] = [tls[1]]
    with patches(JWKS_SSL_CONTEXT="tests.test_jwks_options.make_context"):
        assert api(_with_tls_subject(https_idp, idp)).status_code == 200


def test_configured_proxy_is_used(api, idp):
    with RecordingProxy() as proxy, patches(JWKS_PROXY=proxy.url):
        assert api(idp.mint()).status_code == 200
    assert proxy.seen == [idp.jwks_url]
    assert len(idp.jwks_requests()) == 1


def test_environment_proxy_is_honoured_by_default_and_bypassed_with_empty_string(api, idp, monkeypatch, fresh_backend):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with RecordingProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        assert api(idp.mint()).status_code == 200
        assert proxy.seen == [idp.jwks_url]
        fresh_backend()
        with patches(JWKS_PROXY=""):
            assert api(idp.mint()).status_code == 200
        assert proxy.seen == [idp.jwks_url]  # not used the second time
    assert len(idp.jwks_requests()) == 2


@pytest.mark.fixer("pyjwt.client.key-source")
def test_cache_lifespan_is_configurable(api, idp):
    with patches(JWKS_CACHE_LIFESPAN=60, JWKS_REFRESH_AHEAD=0, JWKS_STALE_IF_ERROR=0), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 1
        clock.tick(59)
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 1
        clock.tick(2)
        assert api(idp.mint()).status_code == 200
        assert len(idp.jwks_requests()) == 2


def test_cache_hits_are_logged(api, idp, caplog):
    with caplog.at_level(logging.DEBUG, "simplejwt_patches"):
        assert api(idp.mint()).status_code == 200
        assert api(idp.mint()).status_code == 200
    messages = [r.getMessage() for r in caplog.records]
    assert sum("JWKS fetched" in m and "cache=miss" in m for m in messages) == 1
    assert any("JWKS cache hit" in m for m in messages)


def test_key_rotation_is_picked_up(api, idp):
    with freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        new_kid = idp.rotate()
        clock.tick(31)  # past PyJWT 2.14+'s unknown-kid cooldown
        assert api(idp.mint(kid=new_kid)).status_code == 200
    assert len(idp.jwks_requests()) == 2


def test_override_settings_reaches_an_existing_client(api, idp):
    from rest_framework_simplejwt import state as sj_state

    base = {"JWKS_CACHE_LIFESPAN": 10, "JWKS_REFRESH_AHEAD": 0}
    with patches(**base, JWKS_HEADERS={"X-Trace": "first"}), freeze_time() as clock:
        assert api(idp.mint()).status_code == 200
        with patches(**base, JWKS_HEADERS={"X-Trace": "second"}):
            clock.tick(11)
            assert api(idp.mint()).status_code == 200  # served while the refresh runs
            assert state_of(sj_state.token_backend.jwks_client).source.wait_idle(5)
    assert [r.headers.get("X-Trace") for r in idp.jwks_requests()] == ["first", "second"]


def test_redirects_are_refused_naming_the_target(api, idp):
    idp.mode = Mode.REDIRECT
    assert api(idp.mint()).status_code == 401
    error = find_in_chain(last_exception(), urllib.error.HTTPError)
    assert error.code == 302
    assert "/elsewhere/certs" in str(error.msg) and "refused" in str(error.msg)


def test_redirects_can_be_allowed(api, idp):
    idp.mode = Mode.REDIRECT
    with patches(JWKS_FOLLOW_REDIRECTS=True):
        assert api(idp.mint()).status_code == 200


def test_allowed_redirects_never_downgrade_https_to_http(api, idp, https_idp, tls, fresh_backend):
    """Finding 7 of issue 8: with JWKS_FOLLOW_REDIRECTS, an https JWK_URL redirected to http was followed."""
    from simplejwt_patches.failures import JWKSFailure

    https_idp.mode = Mode.REDIRECT
    token = _with_tls_subject(https_idp, idp)
    with patches(JWKS_CA_BUNDLE=str(tls[2]), JWKS_FOLLOW_REDIRECTS=True):
        https_idp.redirect_to = idp.jwks_url  # plain http, publishing the same keys
        assert api(token).status_code == 401
        error = find_in_chain(last_exception(), urllib.error.HTTPError)
        assert "https to" in str(error.msg) and "refused" in str(error.msg)
        assert find_in_chain(last_exception(), JWKSFailure).kind == "redirect"
        assert idp.jwks_requests() == []  # the http URL was never contacted
        https_idp.redirect_to = None  # https -> https (its own /elsewhere/certs) is still followed
        fresh_backend()  # a new client: no cooldown from the refused attempt
        assert api(token).status_code == 200


def test_oversized_response_is_refused(api, idp):
    with patches(JWKS_MAX_BYTES=100):
        assert api(idp.mint()).status_code == 401
    find_in_chain(last_exception(), JWKSResponseTooLarge)


def test_keycloak_encryption_key_does_not_break_the_key_set(api, idp):
    assert {k["alg"] for k in idp.jwks()["keys"]} == {"RS256", "RSA-OAEP"}
    assert api(idp.mint()).status_code == 200


def test_other_pyjwkclient_users_are_untouched(idp, api):
    import jwt

    assert api(idp.mint()).status_code == 200  # SimpleJWT's client is managed
    idp.mode = Mode.WAF
    other = jwt.PyJWKClient(idp.jwks_url)
    with pytest.raises((jwt.PyJWKClientError, urllib.error.URLError)):
        other.get_signing_key_from_jwt(idp.mint())
    assert state_of(other) is None
    assert idp.jwks_requests()[-1].headers.get("User-Agent", "").startswith("Python-urllib")


def test_mocked_clients_are_not_managed(fresh_backend):
    backend = fresh_backend()
    backend.jwks_client = mock.MagicMock()
    backend.jwks_client.get_signing_key_from_jwt.return_value.key = "k"
    assert backend.get_verifying_key("a.b.c") == "k"
    assert state_of(backend.jwks_client) is None
