"""``status().realms``: each trusted issuer's runtime state (``ISSUERS``), through DRF's request path.

Two realms on loopback IdPs (tests/test_realms.py's): A by discovery, B by ``JWK_URL``, and the
session IdP as the ``SIMPLE_JWT["ISSUER"]`` entry. Tokens go through DRF; ``status()`` then shows
each realm's key source URL, discovery, key set, last fetch and staleness, one realm's failure in
that realm's state only, and never a token, a secret header value or a credential.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import override_settings
from freezegun import freeze_time

import simplejwt_patches
from simplejwt_patches.realm_status import RealmStatus, fields_markdown
from tests import test_realms
from tests.conftest import SECRET_HEADER_VALUE, SENSITIVE, TOKEN_PARTS, register_sensitive_token
from tests.docs import page, section
from tests.idp import Mode

realms, two_idps = test_realms.realms, test_realms.two_idps  # the two realms' fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("backend.decode.issuer-selection")]
SECRET = "pw-s3cret-Zq9"


def by_issuer() -> dict[str, RealmStatus]:
    return {r.issuer: r for r in simplejwt_patches.status().realms}


def strings(value: Any) -> list[str]:
    """Every string in ``value`` (keys and values, nested)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return []


def sig_kids(idp: Any) -> int:
    return sum(1 for k in idp.jwks()["keys"] if k.get("use") == "sig")


def source_of(issuer: str) -> Any:
    from rest_framework_simplejwt import state

    from simplejwt_patches.clients import state_of
    from simplejwt_patches.conf import get_options
    from simplejwt_patches.realms import table_for

    realm = table_for(state.token_backend, get_options()).realms[issuer]
    return state_of(realm.client(state.token_backend)).source


def assert_nothing_secret(status: Any) -> None:
    text = repr(status) + json.dumps(status.as_dict(), default=str, ensure_ascii=False)
    assert SECRET not in text and SECRET_HEADER_VALUE not in text
    runs = set(re.findall(r"[A-Za-z0-9_-]{16,}", text))
    assert not runs & TOKEN_PARTS


def test_each_realms_state_after_tokens_through_drf(realms, api, idp):
    a, b = realms.a, realms.b
    before = by_issuer()
    assert list(before) == [a.issuer, b.issuer, idp.issuer]  # ISSUERS, then SIMPLE_JWT['ISSUER']
    assert [r.state for r in before.values()] == ["unused"] * 3
    assert (before[a.issuer].keys_from, before[a.issuer].jwk_url) == ("discovery", None)
    assert before[a.issuer].discovery.url == a.discovery_url and before[a.issuer].discovery.jwks_uri is None
    assert (before[b.issuer].keys_from, before[b.issuer].jwk_url, before[b.issuer].discovery) == (
        "JWK_URL", b.jwks_url, None)  # fmt: skip
    assert (before[idp.issuer].keys_from, before[idp.issuer].jwk_url) == ("SIMPLE_JWT", idp.jwks_url)

    assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200
    status = simplejwt_patches.status()
    after = {r.issuer: r for r in status.realms}
    for idp_, realm in ((a, after[a.issuer]), (b, after[b.issuer])):
        assert realm.state == "ok" and realm.serving_stale is False
        assert realm.jwk_url == idp_.jwks_url  # A's: the discovered jwks_uri
        assert realm.key_set.kids == sig_kids(idp_) and 0 <= realm.key_set.age_s < 5
        assert realm.key_set.expires_in_s > 0 and realm.key_set.generation == 0
        assert realm.last_fetch.ok is True and realm.last_fetch.failure is None and 0 <= realm.last_fetch.ago_s < 5
    doc = after[a.issuer].discovery
    assert (doc.jwks_uri, doc.fresh, doc.failure, doc.failure_kind) == (a.jwks_url, True, None, None)
    assert 0 <= doc.fetched_ago_s < 5 and doc.failed_ago_s is None
    assert after[idp.issuer].state == "unused"  # the session IdP's key source was not asked
    data = {"realms": json.loads(json.dumps(status.as_dict()["realms"], allow_nan=False))}  # strict JSON
    assert [r["issuer"] for r in data["realms"]] == [a.issuer, b.issuer, idp.issuer]
    assert data["realms"][0]["discovery"]["jwks_uri"] == a.jwks_url and data["realms"][1]["key_set"]["kids"] >= 1
    assert_nothing_secret(status)


def test_one_realms_failing_idp_shows_in_that_realms_state_only(realms, api, idp):
    a, b = realms.a, realms.b
    assert api(b.mint()).status_code == 200 and api(idp.mint()).status_code == 200
    a.discovery_issuer = "https://attacker.example/realms/tenant-a"  # A cold: its document lies
    assert api(a.mint()).status_code == 401
    kids_b = sig_kids(b)
    b.mode = Mode.SERVER_ERROR
    b.rotate()
    assert api(b.mint()).status_code == 401  # B's demand refetch for the new kid: HTTP 500
    after = by_issuer()
    state_a, state_b, state_s = after[a.issuer], after[b.issuer], after[idp.issuer]
    assert (state_a.state, state_a.jwk_url, state_a.key_set, state_a.last_fetch) == ("failing", None, None, None)
    assert state_a.discovery.failure_kind == "discovery_issuer" and "attacker.example" in state_a.discovery.failure
    assert state_a.discovery.failed_ago_s >= 0 and state_a.discovery.jwks_uri is None
    assert state_b.state == "ok" and state_b.key_set.kids == kids_b  # still serving its cached set
    assert state_b.last_fetch.ok is False and state_b.last_fetch.failure.startswith("status: HTTP 500")
    assert state_s.state == "ok" and state_s.last_fetch.ok is True  # the other realms are untouched
    assert state_s.key_set.kids == sig_kids(idp) and state_s.discovery is None
    b.mode = Mode.OK
    assert a.jwks_requests() == []


def test_a_stale_set_and_an_expired_one_show_as_such(realms, api):
    b = realms.b
    options = realms.patches(JWKS_CACHE_LIFESPAN=300, JWKS_STALE_IF_ERROR=600, JWKS_REFRESH_AHEAD=0)
    with override_settings(SIMPLE_JWT_PATCHES=options), freeze_time() as clock:
        assert api(b.mint()).status_code == 200
        b.mode = Mode.SERVER_ERROR
        clock.tick(301)
        assert api(b.mint()).status_code == 200  # expired, served while the refresh fails
        assert source_of(b.issuer).wait_idle()
        stale = by_issuer()[b.issuer]
        assert (stale.state, stale.serving_stale) == ("stale", True)
        assert -2 < stale.key_set.expires_in_s < 0 and 300 < stale.key_set.age_s < 302
        assert stale.last_fetch.ok is False and stale.last_fetch.failure.startswith("status: HTTP 500")
        clock.tick(600)
        expired = by_issuer()[b.issuer]
        assert (expired.state, expired.serving_stale) == ("expired", False)
        assert expired.key_set.expires_in_s < -600 and expired.last_fetch.ago_s >= 600
        assert api(b.mint()).status_code in (401, 503)  # fail closed, as the state said
    b.mode = Mode.OK


def test_hostile_realm_names_and_urls_never_leak(realms, api, idp, fresh_backend):
    a, b = realms.a, realms.b
    SENSITIVE.add(SECRET)  # and the log-leak detector fails the test if any log record quotes it
    unicode_iss = b.issuer + "/ünïcödé-東京"  # printable, non-Latin-1: a valid key with its own JWK_URL
    hostile = {
        **realms.issuers(),
        unicode_iss: {"JWK_URL": b.jwks_url + "?token=" + SECRET, "AUDIENCE": "b-api"},
        "https://evil.example/a\r\nX-Injected: 1": {"JWK_URL": b.jwks_url},  # refused: CR/LF
        f"https://user:{SECRET}@evil.example": {},  # refused: credentials in the issuer
        "https://cred.example": {"JWK_URL": f"https://user:{SECRET}@127.0.0.1:1/c"},  # refused: in the URL
    }
    jwk_url = idp.jwks_url.replace("http://", f"http://user:{SECRET}@") + "#" + SECRET  # E031: never sent
    a.discovery_jwks_uri = a.jwks_url.replace("http://", f"http://user:{SECRET}@")  # what A's document says
    headers = {"Authorization": SECRET_HEADER_VALUE}
    with override_settings(SIMPLE_JWT_PATCHES={**realms.patches(JWKS_HEADERS=headers), "ISSUERS": hostile}):
        fresh_backend(jwk_url=jwk_url)
        token = register_sensitive_token(b.mint({"iss": unicode_iss}))
        assert api(token).status_code == 200
        assert api(a.mint()).status_code == 401 and api(idp.mint()).status_code in (401, 503)
        status = simplejwt_patches.status()
    shown = {r.issuer: r for r in status.realms}
    assert list(shown) == [a.issuer, b.issuer, unicode_iss, idp.issuer]
    assert shown[unicode_iss].state == "ok" and shown[unicode_iss].jwk_url == b.jwks_url  # the query dropped
    assert shown[a.issuer].state == "failing" and shown[a.issuer].discovery.failure_kind == "jwks_uri"
    assert "jwks_uri carries credentials" in shown[a.issuer].discovery.failure
    session = shown[idp.issuer]
    assert session.jwk_url == idp.jwks_url and session.state == "failing"
    assert session.last_fetch.failure.startswith("config: ") and "E031" in session.last_fetch.failure
    assert all(r.issuer.isprintable() for r in status.realms)
    assert all(text.isprintable() for text in strings(status.as_dict()["realms"]))  # no raw control character
    assert_nothing_secret(status)
    assert idp.jwks_requests() == [] and a.jwks_requests() == []  # neither URL with credentials was fetched


def test_a_control_character_in_simple_jwt_issuer_is_escaped(realms, fresh_backend):
    fresh_backend(issuer="https://sso.example.test/x\r\nX-Injected: 1")
    (*_, session) = simplejwt_patches.status().realms
    assert session.issuer == "https://sso.example.test/x\\r\\nX-Injected: 1" and session.state == "unused"


def test_unset_issuers_shows_no_realms(api, idp):
    assert api(idp.mint()).status_code == 200
    status = simplejwt_patches.status()
    assert status.realms == () and status.as_dict()["realms"] == []


def test_the_fields_table_in_the_docs_is_generated_and_the_example_runs(realms, api, capsys):
    assert section("realm-status") == fields_markdown()
    text = page("troubleshooting.md").split("### Each realm's state", 1)[1]
    (example,) = re.findall(r"```python\n(.*?)```", text, re.S)
    assert api(realms.b.mint()).status_code == 200
    exec(example, {"simplejwt_patches": simplejwt_patches})  # the docs' example, verbatim
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"{realms.b.issuer} ok {realms.b.jwks_url} FetchOutcome(ok=True")
    assert lines[0].startswith(f"{realms.a.issuer} unused None None")


def test_an_idle_realm_is_idle_not_stale_and_its_next_token_is_200(realms, api):
    """An expired set whose last fetch succeeded (no token since) was shown as ``stale``, then ``expired``
    ("its tokens are rejected") although the next token refreshes it and is accepted."""
    b = realms.b
    options = realms.patches(JWKS_CACHE_LIFESPAN=300, JWKS_STALE_IF_ERROR=600, JWKS_REFRESH_AHEAD=0)
    with override_settings(SIMPLE_JWT_PATCHES=options), freeze_time() as clock:
        assert api(b.mint()).status_code == 200
        for seconds in (301, 700):  # past the expiry, then past JWKS_STALE_IF_ERROR too
            clock.tick(seconds)
            idle = by_issuer()[b.issuer]
            assert (idle.state, idle.serving_stale) == ("idle", False) and idle.last_fetch.ok is True
        assert api(b.mint()).status_code == 200
        assert source_of(b.issuer).wait_idle() and by_issuer()[b.issuer].state == "ok"


def test_an_idps_reason_phrase_in_a_discovery_failure_is_escaped(realms, api):
    """urllib keeps an HTTP reason phrase as sent: CR, ESC and NUL reached ``discovery.failure`` as is."""
    import http.server
    import threading

    class Hostile(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500, "Oops\rINJECTED \x1b[31mred\x00" + "x" * 5000)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        issuer = f"http://127.0.0.1:{server.server_port}/realms/hostile"
        settings = {**realms.patches(), "ISSUERS": {**realms.issuers(), issuer: {"AUDIENCE": "b-api"}}}
        with override_settings(SIMPLE_JWT_PATCHES=settings):
            assert api(realms.b.mint({"iss": issuer})).status_code in (401, 503)
            failure = by_issuer()[issuer].discovery.failure
    finally:
        server.shutdown()
        server.server_close()
    assert failure is not None and "INJECTED" in failure
    assert failure.isprintable() and len(failure) <= 500
    assert all(text.isprintable() for text in strings(simplejwt_patches.status().as_dict()["realms"]))
