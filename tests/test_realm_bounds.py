"""Trusted issuers (``ISSUERS``) under the rules ``SIMPLE_JWT["JWK_URL"]`` follows: one deadline, safe URLs.

* One ``JWKS_TIMEOUT`` per request: a realm found by discovery fetches its document, then its key
  set; both (and any wait for another request's fetch of the document) share one deadline, so a
  cold request returns within ``JWKS_TIMEOUT`` + ``deadline.MARGIN``, not one timeout per fetch.
* No password from an ``ISSUERS`` URL in any check message (a mistyped scheme included); plain
  http to a host that is not loopback is ``W060``; a discovered ``jwks_uri`` that is not http(s) or
  downgrades https to http fails that realm closed (``jwks_uri``, ``E108`` in ``check --deploy``).

Real servers on loopback (``tests.idp.FakeKeycloak``, TLS by trustme), requests through DRF.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from django.core import checks
from django.test import override_settings
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from simplejwt_patches.deadline import MARGIN
from simplejwt_patches.failures import JWKSFailure
from tests.conftest import last_exception, register_sensitive_token
from tests.helpers import SCHEDULING, find_in_chain
from tests.idp import FakeKeycloak, Mode

pytestmark = pytest.mark.django_db
FIXER = "backend.decode.issuer-selection"


@pytest.fixture(scope="module")
def realm_idp() -> Iterator[FakeKeycloak]:
    with FakeKeycloak(realm="bounded") as idp:
        yield idp


@pytest.fixture
def realm(realm_idp: FakeKeycloak, api: Any, fresh_backend: Any) -> Iterator[FakeKeycloak]:
    """``realm_idp`` trusted by discovery only, its user created, every token it mints sensitive."""
    from django.contrib.auth import get_user_model

    realm_idp.reset()
    get_user_model().objects.get_or_create(username=realm_idp.subject)
    patches = {
        "ISSUERS": {realm_idp.issuer: {"DISCOVERY_URL": realm_idp.discovery_url}},
        "AUTHORIZED_PARTIES": ["acme-web"],
        "JWKS_TIMEOUT": 1,
    }
    with override_settings(SIMPLE_JWT_PATCHES=patches):
        fresh_backend()
        yield realm_idp
    realm_idp.reset()


def _mint(idp: FakeKeycloak) -> str:
    return register_sensitive_token(idp.mint())


# -- one deadline for the discovery document and the key set ---------------------------------------


@pytest.mark.fixer(FIXER)
def test_a_cold_request_waits_one_jwks_timeout_for_discovery_and_key_set_together(realm, api):
    realm.discovery_delay, realm.mode, realm.hang_seconds = 0.8, Mode.HANG, 0.8  # each alone within 1 s
    started = time.perf_counter()
    response = api(_mint(realm))
    took = time.perf_counter() - started
    assert response.status_code == 401
    assert took <= 1 + MARGIN + SCHEDULING, f"{took:.2f} s: discovery and key set each got a JWKS_TIMEOUT of their own"
    failure = find_in_chain(last_exception(), JWKSFailure)
    assert failure.kind == "timeout"  # the key set got what discovery left of the one deadline
    assert len(realm.discovery_requests()) == 1 and len(realm.jwks_requests()) == 1


@pytest.mark.fixer(FIXER)
def test_discovery_and_key_set_within_one_jwks_timeout_together_are_200(realm, api):
    realm.discovery_delay, realm.mode, realm.hang_seconds = 0.3, Mode.HANG, 0.3
    started = time.perf_counter()
    assert api(_mint(realm)).status_code == 200
    assert time.perf_counter() - started <= 1 + MARGIN + SCHEDULING
    realm.mode = Mode.OK
    assert api(_mint(realm)).status_code == 200 and len(realm.requests) == 2  # warm: no more requests


@pytest.mark.fixer(FIXER)
def test_a_request_queued_behind_another_requests_cold_fetches_waits_one_jwks_timeout(realm):
    from rest_framework_simplejwt import state
    from rest_framework_simplejwt.exceptions import TokenBackendError

    realm.discovery_delay, realm.mode, realm.hang_seconds = 0.9, Mode.HANG, 0.8
    took: dict[str, float] = {}
    outcome: dict[str, BaseException | None] = {}

    def decode(name: str) -> None:
        started = time.perf_counter()
        try:
            state.token_backend.decode(_mint(realm))
            outcome[name] = None
        except TokenBackendError as exc:
            outcome[name] = exc
        took[name] = time.perf_counter() - started

    first = threading.Thread(target=decode, args=("first",), daemon=True)
    first.start()
    for _ in range(100):  # until the first request's discovery fetch is in flight (it ends within 1 s)
        if realm.discovery_requests() or not first.is_alive():
            break
        time.sleep(0.01)
    decode("second")  # waits for the first one's document, then for its key set fetch
    first.join(3)
    assert max(took.values()) <= 1 + MARGIN + SCHEDULING, took  # was 1.7 s and 200 for each (a timeout each)
    assert isinstance(outcome["second"], TokenBackendError)  # the key set did not arrive within the deadline
    assert len(realm.discovery_requests()) == 1


def test_waiting_for_another_requests_discovery_fetch_ends_with_the_requests_deadline(realm_idp):
    from simplejwt_patches.conf import build_options
    from simplejwt_patches.deadline import request_deadline
    from simplejwt_patches.discovery import Discovery

    realm_idp.reset()
    realm_idp.discovery_delay = 1.6  # the first request's fetch; the second's deadline is 0.3 s
    options = build_options({"JWKS_TIMEOUT": 2})
    doc = Discovery(realm_idp.issuer, realm_idp.discovery_url)
    first = threading.Thread(target=doc.jwks_uri, args=(options,), daemon=True)
    first.start()
    for _ in range(100):  # until the first fetch is in flight (it ends within 2 s)
        if realm_idp.discovery_requests() or not first.is_alive():
            break
        time.sleep(0.01)
    started = time.perf_counter()
    with request_deadline(0.3), pytest.raises(JWKSFailure) as waited:
        doc.jwks_uri(options)
    assert time.perf_counter() - started <= 0.3 + MARGIN + SCHEDULING  # without: the first fetch's 1.6 s
    assert waited.value.kind == "timeout" and "being fetched by another request" in waited.value.detail
    first.join(3)
    assert doc.jwks_uri(options) == realm_idp.jwks_url and len(realm_idp.discovery_requests()) == 1
    realm_idp.reset()


# -- the discovered jwks_uri: http(s) only, never a downgrade ---------------------------------------


@pytest.fixture(scope="module")
def tls_realm() -> Iterator[tuple[FakeKeycloak, Path]]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    with FakeKeycloak(realm="tls", ssl_context=server_ctx) as idp, ca.cert_pem.tempfile() as pem:
        yield idp, Path(pem)


@pytest.mark.fixer(FIXER)
def test_a_discovered_jwks_uri_downgrading_https_to_http_fails_the_realm_closed(tls_realm, realm_idp, api,
                                                                                 fresh_backend):  # fmt: skip
    from django.contrib.auth import get_user_model

    from simplejwt_patches.realm_checks import check_realms_live
    from tests.helpers import doctor

    https_idp, pem = tls_realm
    https_idp.reset()
    realm_idp.reset()
    https_idp.discovery_jwks_uri = realm_idp.jwks_url  # plain http (the same keys: only the scheme is wrong)
    get_user_model().objects.get_or_create(username=https_idp.subject)
    patches = {"ISSUERS": {https_idp.issuer: {}}, "AUTHORIZED_PARTIES": ["acme-web"], "JWKS_CA_BUNDLE": str(pem)}
    with override_settings(SIMPLE_JWT_PATCHES=patches):
        fresh_backend()
        assert api(_mint(https_idp)).status_code == 401
        failure = find_in_chain(last_exception(), JWKSFailure)
        assert failure.kind == "jwks_uri" and "plain http" in failure.detail and realm_idp.jwks_url in failure.detail
        assert realm_idp.requests == []  # the key set is never fetched over plain http
        (message,) = check_realms_live()
        assert message.id == "simplejwt_patches.E108" and https_idp.issuer in message.msg
        assert "plain http" in message.msg
        code, text = doctor(token=_mint(https_idp))
        assert (
            code == 1
            and "401: jwks_invalid: the identity provider's discovery document names an unusable or insecure jwks_uri"
            in text
        ), text
        https_idp.discovery_jwks_uri = None  # the document fixed: its https jwks_uri is used
        fresh_backend()
        assert api(_mint(https_idp)).status_code == 200
    assert realm_idp.requests == []
    https_idp.reset()


@pytest.mark.fixer(FIXER)
@pytest.mark.parametrize("jwks_uri", ["file:///etc/passwd", "ftp://127.0.0.1/certs", "https://u:Zq9pw@127.0.0.1/c"])
def test_a_discovered_jwks_uri_that_is_not_http_is_refused(realm, api, jwks_uri):
    realm.discovery_jwks_uri = jwks_uri
    assert api(_mint(realm)).status_code == 401
    failure = find_in_chain(last_exception(), JWKSFailure)
    assert failure.kind == "jwks_uri" and "the discovery document at" in failure.detail
    assert "Zq9pw" not in failure.detail and realm.jwks_requests() == []


# -- ISSUERS URLs in check output ------------------------------------------------------------------


def _all_messages(patches: dict[str, Any]) -> list[checks.CheckMessage]:
    with override_settings(SIMPLE_JWT_PATCHES=patches):
        return [m for m in checks.run_checks() if str(m.id or "").startswith("simplejwt_patches.")]


def test_a_plain_http_issuers_url_to_a_remote_host_is_w060_naming_the_issuer():
    issuers = {
        "https://sso.example.com/realms/a": {"JWK_URL": "http://sso.example.com/realms/a/certs"},
        "http://sso.example.com/realms/b": {},  # its discovery URL, derived from the issuer, is plain http
        "https://sso.example.com/realms/c": {"DISCOVERY_URL": "http://127.0.0.1:8080/realms/c/.well-known/x"},
        "https://sso.example.com/realms/d": {"JWK_URL": "https://sso.example.com/realms/d/certs"},
        "https://sso.example.com/realms/e": {"DISCOVERY_URL": "http://[::1]:8080/realms/e"},
    }
    w060 = [m for m in _all_messages({"ISSUERS": issuers}) if m.id == "simplejwt_patches.W060"]
    assert len(w060) == 2 and all(isinstance(m, checks.Warning) for m in w060), w060
    assert "ISSUERS']['https://sso.example.com/realms/a']: its JWK_URL is plain http" in w060[0].msg
    assert "ISSUERS']['http://sso.example.com/realms/b']: its DISCOVERY_URL is plain http" in w060[1].msg


SECRET = "Zq9sEcr3t"
schemes = st.sampled_from(["https://", "http://", "htps://", "https//", "https:/", "https:", "", "HTTPS://",
                           "ftp://", "https:\\\\", " https://", "https://\r\n", "ht tps://", "hꓔtps://"])  # fmt: skip
tails = st.sampled_from(["/certs", "//x", "/a@b", "?x=//y", "#f", "/\r\nX: 1", "/é", ":99999/x", ":abc", "", "/a b"])
hosts = st.sampled_from(["sso.example.com", "127.0.0.1", "[::1]", "[::1", "", "bücher.example", "h//x"])


@hsettings(max_examples=25, deadline=None)
@given(scheme=schemes, user=st.sampled_from(["svc", "", "a/b", "x#"]), extra=st.text(max_size=8), host=hosts,
       tail=tails, key=st.sampled_from(["JWK_URL", "DISCOVERY_URL", "both", "issuer"]))  # fmt: skip
@example(scheme="htps://", user="svc", extra="", host="sso.example.com", tail="/certs", key="JWK_URL")
@example(scheme="https//", user="svc", extra="", host="sso.example.com", tail="/d", key="DISCOVERY_URL")
@example(scheme="https:/", user="svc", extra="", host="h", tail="//c", key="JWK_URL")
@example(scheme="", user="svc", extra="//", host="h", tail="/c", key="JWK_URL")
@example(scheme="htps:/", user="svc", extra="a//b", host="h", tail="/c", key="issuer")
def test_no_password_in_an_issuers_url_ever_reaches_a_check_message(scheme, user, extra, host, tail, key):
    import simplejwt_patches

    url = f"{scheme}{user}:{SECRET}{extra}@{host}{tail}"
    if key == "issuer":
        issuers: dict[str, Any] = {url: {}}
    else:
        keys = ["JWK_URL", "DISCOVERY_URL"] if key == "both" else [key]
        issuers = {"https://sso.example.com/realms/a": dict.fromkeys(keys, url)}
    messages = _all_messages({"ISSUERS": issuers})
    shown = "\n".join(f"{m.msg} {m.hint or ''}" for m in messages)
    assert SECRET not in shown
    try:
        userinfo = "@" in urlsplit(url).netloc
    except ValueError:
        userinfo = False
    if userinfo:  # the E031 rule: refused, never trusted, never silent
        assert any(m.id == "simplejwt_patches.E060" and "carries credentials" in m.msg for m in messages), shown
    with override_settings(SIMPLE_JWT_PATCHES={"ISSUERS": issuers}):
        assert SECRET not in str(simplejwt_patches.status())


def test_the_several_realms_recipe_as_written_is_w060_for_its_plain_http_discovery_urls():
    """docs/recipes.md says its ``http://keycloak:8080`` discovery URLs are W060: they are."""
    from tests.test_recipes import BLOCKS

    block = BLOCKS["Several Keycloak realms"]
    with override_settings(SIMPLE_JWT={**block["SIMPLE_JWT"]}):
        messages = _all_messages(dict(block["SIMPLE_JWT_PATCHES"]))
    w060 = [m.msg for m in messages if m.id == "simplejwt_patches.W060"]
    assert len(w060) == 2 and all("its DISCOVERY_URL is plain http (http://keycloak:8080/" in m for m in w060)
    assert not [m for m in messages if m.id == "simplejwt_patches.E060"]
    with override_settings(SILENCED_SYSTEM_CHECKS=["simplejwt_patches.W060"]):
        silenced = [m for m in _all_messages(dict(block["SIMPLE_JWT_PATCHES"])) if m.id == "simplejwt_patches.W060"]
        assert len(silenced) == 2 and all(m.is_silenced() for m in silenced)
