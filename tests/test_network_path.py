"""The network path as attack surface (issue 16, points 4-7 and 14): credentials in URLs and proxies,
redirects to other origins, headers http.client cannot send, IPv6 hosts in every output.

Real servers on loopback throughout (the Keycloak-shaped IdP, a second one as redirect target, a
recording proxy); the passwords below are registered with the log-leak detector, so any log record
of any test here that quotes one fails the test.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from simplejwt_patches import signals
from simplejwt_patches.conf import build_options
from simplejwt_patches.deadline import MARGIN
from simplejwt_patches.failures import JWKSFailure
from tests.conftest import SECRET_HEADER_VALUE, SENSITIVE, last_exception
from tests.helpers import SCHEDULING, doctor, find_in_chain, use_simple_jwt
from tests.idp import FakeKeycloak, Mode
from tests.proxy import RecordingProxy
from tests.strategies import hostile_strings

pytestmark = pytest.mark.django_db

PASSWORD = "sjp-url-password-5d1e9"
PROXY_PASSWORD = "sjp-proxy-password-77c2"
API_KEY = "sjp-api-key-0b7f41"
SENSITIVE.update({PASSWORD, PROXY_PASSWORD, API_KEY})
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "NO_PROXY")  # fmt: skip


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES={"JWKS_TIMEOUT": 2, **options})


def jwt_settings(**overrides: object) -> override_settings:
    from django.conf import settings

    return override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, **overrides})


def check(*args: str) -> str:
    """``manage.py check [args]``: everything it reports (errors raise SystemCheckError)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check", *args, stdout=out, stderr=err)
    except SystemCheckError as exc:
        return str(exc) + out.getvalue() + err.getvalue()
    return out.getvalue() + err.getvalue()


@pytest.fixture
def failed() -> Iterator[list[dict[str, Any]]]:
    """Every ``jwks_fetch_failed`` signal sent during the test."""
    got: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        got.append(kwargs)

    signals.jwks_fetch_failed.connect(receiver, weak=False)
    yield got
    signals.jwks_fetch_failed.disconnect(receiver)


@pytest.fixture
def no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _with_userinfo(url: str, port: bool = True) -> str:
    url = url.replace("http://", f"http://sjp-user:{PASSWORD}@")
    return url if port else url.replace(url.split("@", 1)[1].split("/", 1)[0], "localhost")


# -- point 4: credentials in JWK_URL ------------------------------------------------------------


def test_credentials_in_jwk_url_are_a_check_error_that_never_shows_them(idp):
    with jwt_settings(JWK_URL=_with_userinfo(idp.jwks_url)):
        plain, deploy = check(), check("--deploy")
    for text in (plain, deploy):
        assert "simplejwt_patches.E031" in text and "SIMPLE_JWT['JWK_URL'] carries credentials" in text
        assert PASSWORD not in text
    assert "simplejwt_patches.E101" not in deploy  # nothing is fetched, so nothing is blamed on the IdP
    assert idp.jwks_requests() == []


@pytest.mark.parametrize("port", [True, False], ids=["with-port", "without-port"])
def test_credentials_in_jwk_url_are_never_sent_nor_shown(api, idp, fresh_backend, failed, port):
    with jwt_settings(JWK_URL=_with_userinfo(idp.jwks_url, port)), patches(EXPOSE_ERROR_DETAIL=True):
        fresh_backend()
        response = api(idp.mint())
    assert response.status_code == 401 and PASSWORD not in response.content.decode()
    assert idp.jwks_requests() == []
    failure = find_in_chain(last_exception(), JWKSFailure)
    assert failure.kind == "config", failure.kind  # was "dropped" (or "dns"), although nothing was sent
    (signal,) = failed
    assert signal["kind"] == "config" and "simplejwt_patches.E031" in signal["reason"]
    assert PASSWORD not in repr({k: v for k, v in signal.items() if k != "exception"})
    assert "sjp-user" not in signal["url"] and signal["url"].endswith("/realms/acme/protocol/openid-connect/certs")


def test_the_doctor_never_shows_credentials_from_jwk_url(alice, idp, monkeypatch, fresh_backend):
    use_simple_jwt(monkeypatch, JWK_URL=_with_userinfo(idp.jwks_url, port=False))
    fresh_backend()
    code, text = doctor(token=idp.mint())
    jcode, jtext = doctor("--json")
    assert code == jcode == 1
    assert PASSWORD not in text and PASSWORD not in jtext
    assert "✗ simplejwt_patches.E031: SIMPLE_JWT['JWK_URL'] carries credentials" in text
    assert "problem: config:" in text and "dropped" not in text
    report = json.loads(jtext)
    assert (
        report["jwks"]["problem"] == "config"
        and report["jwks"]["url"] == "http://localhost/realms/acme/protocol/openid-connect/certs"
    )


# -- point 5: proxies ---------------------------------------------------------------------------


def test_an_https_proxy_is_a_check_error_naming_the_setting_and_why():
    with patches(JWKS_PROXY=f"https://proxy-user:{PROXY_PASSWORD}@127.0.0.1:3128"):
        text = check()
    assert "simplejwt_patches.E011" in text and "SIMPLE_JWT_PATCHES['JWKS_PROXY']: an https:// proxy is refused" in text
    assert "clear text" in text and PROXY_PASSWORD not in text


def test_an_https_proxy_never_receives_the_request_in_clear_text(api, idp, no_env_proxy):
    with RecordingProxy() as proxy:
        https_proxy = proxy.url.replace("http://", f"https://proxy-user:{PROXY_PASSWORD}@")
        with patches(JWKS_PROXY=https_proxy):
            assert api(idp.mint()).status_code == 200  # the refused proxy is not used (default: no proxy here)
    assert proxy.seen == []  # was: the GET and its Proxy-Authorization, in clear text


def test_an_https_proxy_from_the_environment_is_refused(api, idp, monkeypatch, no_env_proxy, failed):
    with RecordingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", f"https://proxy-user:{PROXY_PASSWORD}@"))
        assert api(idp.mint()).status_code == 401
    assert proxy.seen == [] and idp.jwks_requests() == []
    assert find_in_chain(last_exception(), JWKSFailure).kind == "config"
    (signal,) = failed
    assert "(HTTP_PROXY): an https:// proxy is refused" in signal["reason"] and PROXY_PASSWORD not in signal["reason"]


def test_proxy_credentials_are_never_shown(alice, idp, no_env_proxy):
    import simplejwt_patches

    with RecordingProxy() as proxy:
        with patches(JWKS_PROXY=proxy.url.replace("http://", f"http://proxy-user:{PROXY_PASSWORD}@")):
            shown = json.dumps(simplejwt_patches.status().options, default=str)
            code, text = doctor(token=idp.mint())
            _, jtext = doctor("--json")
        assert proxy.seen  # an http:// proxy with credentials is used (Basic auth, as any plain-http proxy)
    assert code == 0, text
    assert all(PROXY_PASSWORD not in out for out in (shown, text, jtext))


# -- point 6: redirects to another origin -------------------------------------------------------


@pytest.fixture
def other_idp(idp: FakeKeycloak) -> Iterator[FakeKeycloak]:
    """A second server on another loopback port (another origin), publishing the session IdP's keys."""
    with FakeKeycloak(realm="acme") as other:
        other.jwks_body = json.dumps(idp.jwks()).encode()
        yield other


HEADERS = {
    "Authorization": SECRET_HEADER_VALUE,
    "X-Api-Key": API_KEY,
    "X-Tenant": "acme",  # not secret-looking, but not on the allow-list either
    "User-Agent": "acme-api/1.0",
    "Accept-Language": "en",
}


@pytest.mark.parametrize("target", ["other-port", "other-host"])
def test_a_redirect_to_another_origin_keeps_only_harmless_headers(api, idp, other_idp, target, monkeypatch):
    idp.mode = Mode.REDIRECT
    other_host = idp.base_url.replace("127.0.0.1", "localhost") + "/elsewhere/certs"
    to = other_idp.jwks_url if target == "other-port" else other_host
    monkeypatch.setattr(idp, "redirect_to", to)
    with patches(JWKS_FOLLOW_REDIRECTS=True, JWKS_HEADERS=HEADERS):
        response = api(idp.mint())
    assert response.status_code == 200
    (first,) = idp.jwks_requests()
    assert first.headers["Authorization"] == SECRET_HEADER_VALUE and first.headers["X-Api-Key"] == API_KEY
    if target == "other-port":
        (second,) = other_idp.jwks_requests()
    else:  # the same server reached by another name: another origin all the same
        (second,) = [r for r in idp.requests if r.path == "/elsewhere/certs"]
    received = {k.lower(): v for k, v in second.headers.items()}
    assert received["user-agent"] == "acme-api/1.0" and received["accept-language"] == "en"
    assert "json" in received["accept"]
    assert not {"authorization", "x-api-key", "x-tenant"} & set(received), received


def test_jwks_secret_headers_do_not_follow_a_redirect_to_another_origin(api, idp, other_idp, monkeypatch):
    idp.mode = Mode.REDIRECT
    monkeypatch.setattr(idp, "redirect_to", other_idp.jwks_url)
    with patches(JWKS_FOLLOW_REDIRECTS=True, JWKS_HEADERS=HEADERS, JWKS_SECRET_HEADERS=["accept-language"]):
        assert api(idp.mint()).status_code == 200
    (second,) = other_idp.jwks_requests()
    assert "accept-language" not in {k.lower() for k in second.headers}


def test_a_redirect_within_the_origin_keeps_every_header(api, idp, monkeypatch):
    idp.mode = Mode.REDIRECT
    monkeypatch.setattr(idp, "redirect_to", None)  # to its own /elsewhere/certs
    with patches(JWKS_FOLLOW_REDIRECTS=True, JWKS_HEADERS=HEADERS):
        assert api(idp.mint()).status_code == 200
    (second,) = [r for r in idp.requests if r.path == "/elsewhere/certs"]
    assert second.headers["Authorization"] == SECRET_HEADER_VALUE and second.headers["X-Tenant"] == "acme"


# -- point 7: headers http.client cannot send ---------------------------------------------------


def test_a_header_http_client_cannot_send_is_a_check_error_naming_it(idp):
    with patches(JWKS_HEADERS={"User-Agent": "acme — api", "X-Api-Key": API_KEY + "—", "X Bad": "1"}):
        text = check()
    assert text.count("simplejwt_patches.E012") == 3
    assert "header 'User-Agent': its value contains a character outside Latin-1" in text and "U+2014" in text
    assert "header 'X-Api-Key': its value contains a character outside Latin-1" in text
    assert "header 'X Bad': its name is not a valid HTTP header name" in text
    assert API_KEY not in text


def test_an_unsendable_header_is_left_out_and_the_idp_is_not_blamed(api, idp):
    with patches(JWKS_HEADERS={"User-Agent": "acme — api"}):
        assert api(idp.mint()).status_code == 200  # was: no request sent at all, every token a 401
        deploy = check("--deploy")
    assert idp.jwks_requests()[0].headers["User-Agent"].startswith("simplejwt-patches/")
    assert "simplejwt_patches.E012" in deploy
    assert "simplejwt_patches.E104" not in deploy and "did not return a JSON key set" not in deploy


MARKER = "Zq9sjp"  # starts every generated value: a message quoting the value would contain it
header_names = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "X-A\r\n", "X-A\nInjected: 1", "X A", "X-A:", "Ünïcode", "X-\x00", "a" * 300, "X-Ok"]),
)
header_values = st.one_of(
    hostile_strings,
    st.text(max_size=30),
    st.sampled_from(["—", "\x00", "\t tab ok", "é ok", "a" * 9000, "é" * 8192, "\x7f", " "]),
)


def _http_client_sends(name: str, value: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", 9)  # never connected: putheader only encodes
    connection.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
    try:
        connection.putheader(name, value)
    except (ValueError, UnicodeError):
        return False
    return True


@hsettings(max_examples=80, deadline=None)
@given(name=header_names, value=header_values)
def test_any_header_is_either_sendable_or_refused_naming_it(name, value):
    value = MARKER + value
    options = build_options({"JWKS_HEADERS": {name: value}})
    problems = [p for p in options.problems if p.id == "E012"]
    if name in options.headers and options.headers[name] == value:
        assert not problems and _http_client_sends(name, value)
        assert not any(ord(c) < 32 and c != "\t" for c in value)
    else:
        assert len(problems) == 1, problems
        assert MARKER not in problems[0].msg + (problems[0].hint or "")
        assert "\r" not in problems[0].msg and "\n" not in problems[0].msg


# -- point 14: IPv6 hosts keep their brackets ---------------------------------------------------


def _closed_ipv6_url() -> str:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    return f"http://[::1]:{port}/realms/acme/protocol/openid-connect/certs"


def test_ipv6_hosts_keep_their_brackets_in_logs_signals_checks_and_the_doctor(
    api, idp, fresh_backend, failed, caplog, monkeypatch
):
    url = _closed_ipv6_url()
    with jwt_settings(JWK_URL=url):
        fresh_backend()
        assert api(idp.mint()).status_code == 401
        deploy = check("--deploy")
    assert find_in_chain(last_exception(), JWKSFailure).kind == "refused"
    assert failed[0]["url"] == url
    assert any(f"JWKS fetch from {url} failed" in r.getMessage() for r in caplog.records)
    assert f"JWK_URL {url}: " in deploy and "simplejwt_patches.E101" in deploy
    use_simple_jwt(monkeypatch, JWK_URL=url)
    _, text = doctor()
    _, jtext = doctor("--json")
    assert f"✗ JWKS {url}: no response" in text and json.loads(jtext)["jwks"]["url"] == url


# -- the deadline over TLS: the timer must reach a socket TLS has taken over --------------------


@pytest.fixture
def https_idp(alice: Any, fresh_backend: Any) -> Iterator[tuple[FakeKeycloak, str]]:
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    with FakeKeycloak(realm="acme", ssl_context=server_ctx) as server, ca.cert_pem.tempfile() as pem:
        with jwt_settings(JWK_URL=server.jwks_url, ISSUER=server.issuer):
            fresh_backend()
            yield server, pem


def test_the_deadline_cuts_a_dripping_idp_over_tls(api, idp, https_idp):
    server, pem = https_idp
    server.mode = Mode.DRIP
    server.drip_seconds = 0.1
    server.jwks_body = b'{"keys": []' + b" " * 60 + b"}"  # dripped for 7 s without the deadline
    token = server.mint({"sub": idp.subject})
    SENSITIVE.add(token)
    with patches(JWKS_TIMEOUT=0.5, JWKS_CA_BUNDLE=pem):
        started = time.monotonic()
        assert api(token).status_code == 401
        elapsed = time.monotonic() - started
    assert elapsed <= 0.5 + MARGIN + SCHEDULING, elapsed  # 7 s without the deadline
    assert find_in_chain(last_exception(), JWKSFailure).kind == "timeout"


# -- hostile URLs: JWK_URL and JWKS_PROXY -------------------------------------------------------

url_parts = st.one_of(
    hostile_strings,
    st.text(max_size=30),
    st.sampled_from(["/certs", "/a b", "/\r\nX: 1", "/é", "/" + "a" * 5000, "", ":8080/x", ":99999/x", ":abc/x"]),
)
url_hosts = st.one_of(
    st.sampled_from(["127.0.0.1", "[::1]", "localhost", "idp.example.com", "bücher.example", "", "[::1", "h:1"]),
    st.text(alphabet=st.characters(blacklist_characters="@"), max_size=20),
)


@hsettings(max_examples=80, deadline=None)
@given(
    scheme=st.sampled_from(["https://", "http://", "", "ftp://", "HTTPS://"]),
    password=st.text(max_size=20),
    host=url_hosts,
    tail=url_parts.filter(lambda t: "@" not in t),
)
@example(scheme="https://", password="#", host="127.0.0.1", tail="")  # '#' ends the authority before '@'
@example(scheme="https://", password="?", host="127.0.0.1", tail="/certs")
@example(scheme="", password="#", host="127.0.0.1", tail="")  # no '//': no authority at all
def test_any_jwk_url_with_credentials_is_refused_and_never_shows_them(scheme, password, host, tail):
    from simplejwt_patches.conf import jwk_url_problems
    from simplejwt_patches.diagnostics import safe_url

    url = f"{scheme}user:{MARKER}{password}@{host}{tail}"
    problems = jwk_url_problems(url)
    shown = safe_url(url)
    assert MARKER not in shown and len(shown) <= 300 and shown.isprintable() and " " not in shown
    assert all(MARKER not in p.msg + (p.hint or "") for p in problems)
    if scheme.lower() in ("http://", "https://") and "@" in url.split("//", 1)[1].split("/", 1)[0]:  # user-info
        assert [p.id for p in problems] in (["E031"], ["E030"]), problems


@hsettings(max_examples=60, deadline=None)
@given(scheme=st.sampled_from(["https://", "http://", "HTTPS://", "socks5://", ""]), password=st.text(max_size=20),
       host=url_hosts, tail=url_parts)  # fmt: skip
def test_any_jwks_proxy_value_is_validated_without_showing_its_credentials(scheme, password, host, tail):
    proxy = f"{scheme}proxy-user:{MARKER}{password}@{host}{tail}"
    options = build_options({"JWKS_PROXY": proxy})
    texts = [p.msg + (p.hint or "") for p in options.problems]
    assert all(MARKER not in t for t in texts)
    assert MARKER not in json.dumps(options.shown(), default=str)
    if options.proxy is not None:
        assert options.proxy.lower().startswith("http://")  # never an https:// proxy


def test_a_host_name_that_cannot_be_encoded_is_a_dns_failure_not_a_bad_key_set(api, idp, fresh_backend):
    host = "a" * 64 + ".example"  # a label IDNA refuses (over 63 characters)
    with jwt_settings(JWK_URL=f"https://{host}/realms/acme/protocol/openid-connect/certs"):
        fresh_backend()
        assert api(idp.mint()).status_code == 401
    assert find_in_chain(last_exception(), JWKSFailure).kind == "dns"  # was "malformed": blamed the IdP's answer


@pytest.mark.parametrize("path", ["/realms/a b/certs", "/realms/acme\r\n/certs", "/realms/é/certs"])
def test_a_jwk_url_urllib_cannot_send_is_e030_and_not_blamed_on_the_idp(api, idp, fresh_backend, path):
    url = idp.base_url + path
    with jwt_settings(JWK_URL=url):
        text = check()
        fresh_backend()
        assert api(idp.mint()).status_code == 401
    assert "simplejwt_patches.E030" in text and "\r" not in text and "Percent-encode" in text
    assert find_in_chain(last_exception(), JWKSFailure).kind == "config"  # was "dropped" or "malformed"
    assert idp.requests == []
