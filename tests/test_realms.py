"""Several realms, one API (issue 19): ``SIMPLE_JWT_PATCHES["ISSUERS"]`` through DRF.

Two Keycloak-shaped realms on loopback, each with its own keys, audience and client:

* realm A is found by OpenID discovery on an *internal* URL (``DISCOVERY_URL`` on 127.0.0.1) while
  its tokens and its discovery document carry the *public* issuer (``https://sso.example.test``,
  Keycloak's ``KC_HOSTNAME``); its ``jwks_uri`` is the back-channel one;
* realm B has an explicit ``JWK_URL`` on ``127.0.0.1`` while its ``iss`` says ``localhost``.

The session IdP (``SIMPLE_JWT["ISSUER"]``/``["JWK_URL"]``) is one more trusted entry.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches import signals
from simplejwt_patches.conf import build_options
from simplejwt_patches.failures import JWKSFailure, UntrustedIssuer
from tests.conftest import last_exception, register_sensitive_token
from tests.helpers import expected_body, find_in_chain
from tests.idp import FakeKeycloak, Mode

pytestmark = pytest.mark.django_db
FIXER = "backend.decode.issuer-selection"


class Realms:
    """The two realms and the settings that trust them."""

    def __init__(self, a: FakeKeycloak, b: FakeKeycloak) -> None:
        self.a, self.b = a, b

    def issuers(self) -> dict[str, Any]:
        a = {"DISCOVERY_URL": self.a.discovery_url, "AUDIENCE": "a-api", "AUTHORIZED_PARTIES": ["a-web"]}
        return {
            self.a.issuer: a,
            self.b.issuer: {"JWK_URL": self.b.jwks_url, "AUDIENCE": ["b-api"]},
        }

    def patches(self, **extra: Any) -> dict[str, Any]:
        return {"ISSUERS": self.issuers(), "AUTHORIZED_PARTIES": ["b-web", "acme-web"], "JWKS_TIMEOUT": 2, **extra}

    def reset(self) -> None:
        for idp in (self.a, self.b):
            idp.reset()


@pytest.fixture(scope="module")
def two_idps() -> Iterator[Realms]:
    a = FakeKeycloak(realm="tenant-a", client_id="a-web").start()
    b = FakeKeycloak(realm="tenant-b", client_id="b-web").start()
    a.frontend = "https://sso.example.test"
    b.frontend = b.base_url.replace("127.0.0.1", "localhost")
    a.audience, b.audience = "a-api", "b-api"
    b.rotate(keep_old=False)  # the key pool is shared: give B keys of its own
    try:
        yield Realms(a, b)
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def realms(two_idps: Realms, api: Any, fresh_backend: Any) -> Iterator[Realms]:
    """Both realms trusted (fresh key sources), their users created, tokens registered as sensitive."""
    from django.contrib.auth import get_user_model

    two_idps.reset()
    for idp in (two_idps.a, two_idps.b):
        get_user_model().objects.get_or_create(username=idp.subject)
    originals = {idp: idp.mint for idp in (two_idps.a, two_idps.b)}
    for idp, mint in originals.items():
        idp.mint = lambda *a, _m=mint, **k: register_sensitive_token(_m(*a, **k))  # type: ignore[method-assign]
    with override_settings(SIMPLE_JWT_PATCHES=two_idps.patches()):
        fresh_backend()
        yield two_idps
    for idp in originals:
        del idp.mint
    two_idps.reset()


@pytest.fixture
def rejected() -> Iterator[list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        got.append(kwargs)

    signals.token_rejected.connect(receiver, weak=False)
    yield got
    signals.token_rejected.disconnect(receiver)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any] | str, kid: str = "k") -> str:
    """A cheap token: any claims (raw JSON text allowed), a garbage signature."""
    body = claims if isinstance(claims, str) else json.dumps(claims)
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(body.encode())}.{_b64(b'not-a-signature')}"


# -- each realm's tokens, and only its own ----------------------------------------------------------


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_each_realms_token_is_200_by_discovery_and_by_jwk_url(realms, api, idp):
    a, b = realms.a, realms.b
    assert a.issuer.startswith("https://sso.example.test/") and "localhost" in b.issuer
    assert api(a.mint()).status_code == 200
    assert api(b.mint()).status_code == 200
    assert api(idp.mint()).status_code == 200  # SIMPLE_JWT['ISSUER'] / ['JWK_URL']: one more entry
    assert len(a.discovery_requests()) == 1 and len(a.jwks_requests()) == 1  # internal URLs, public iss
    assert len(b.discovery_requests()) == 0 and len(b.jwks_requests()) == 1
    for _ in range(5):  # warm: no more requests
        assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200
    assert len(a.requests) == 2 and len(b.requests) == 1


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_a_token_for_the_other_realms_audience_is_401(realms, api, rejected):
    a, b = realms.a, realms.b
    response = api(a.mint({"aud": ["b-api"]}))
    assert response.status_code == 401 and response.json() == expected_body()
    assert rejected[-1]["reason_code"] == "bad_audience" and rejected[-1]["issuer"] == a.issuer
    assert api(b.mint({"aud": "a-api"})).status_code == 401
    assert rejected[-1]["reason_code"] == "bad_audience" and rejected[-1]["issuer"] == b.issuer


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_a_token_signed_by_one_realm_claiming_the_other_is_401(realms, api, rejected):
    a, b = realms.a, realms.b
    assert a.active_kid != b.active_kid
    as_b = {"iss": b.issuer, "aud": ["b-api"], "azp": "b-web", "sub": b.subject}
    assert api(a.mint(as_b)).status_code == 401  # A's kid is not in B's set
    assert rejected[-1]["reason_code"] == "unknown_kid" and rejected[-1]["issuer"] == b.issuer
    a_key = a.signing_key_pem()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    forged = a.mint(as_b, kid=b.active_kid, key=load_pem_private_key(a_key, password=None))  # B's kid, A's key
    assert api(forged).status_code == 401
    assert rejected[-1]["reason_code"] == "bad_signature"
    as_a = {"iss": a.issuer, "aud": ["a-api"], "azp": "a-web", "sub": a.subject}
    assert api(b.mint(as_a)).status_code == 401
    assert len(b.discovery_requests()) == 0


@pytest.mark.fixer("backend.decode.authorized-party")
def test_each_issuer_has_its_own_authorized_parties(realms, api, rejected):
    a, b = realms.a, realms.b
    assert api(a.mint({"azp": "acme-web"})).status_code == 401  # A lists only a-web
    assert rejected[-1]["reason_code"] == "bad_authorized_party"
    assert api(b.mint({"azp": "a-web"})).status_code == 401  # B inherits the global ('b-web', 'acme-web')
    assert rejected[-1]["reason_code"] == "bad_authorized_party"
    assert api(b.mint({"azp": "acme-web"})).status_code == 200


# -- selection before any network -----------------------------------------------------------------


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_an_untrusted_realms_token_is_401_bad_issuer_without_any_request(realms, api, rejected, caplog):
    with FakeKeycloak(realm="tenant-c", client_id="c-web") as c:
        c.audience = "a-api"
        token = register_sensitive_token(c.mint({"aud": "a-api", "azp": "a-web"}))
        with caplog.at_level(logging.DEBUG, logger="simplejwt_patches"):
            response = api(token)
        assert response.status_code == 401 and response.json() == expected_body()
        assert c.requests == [] and realms.a.requests == [] and realms.b.requests == []
    assert rejected[-1]["reason_code"] == "bad_issuer" and rejected[-1]["issuer"] is None
    assert rejected[-1]["root_cause"] == "UntrustedIssuer"
    assert isinstance(find_in_chain(last_exception(), UntrustedIssuer), UntrustedIssuer)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("token rejected:")]
    assert any(f"UntrustedIssuer: token iss {c.issuer!r} is not in" in line for line in lines), lines


HOSTILE_ISS = [
    None, "", " ", 1, 1.5, True, [], ["x"], {"iss": "x"}, "x" * 100_000, "ünïcode", "a\r\nb", "NaN",
]  # fmt: skip


@pytest.mark.fixer("backend.decode.issuer-selection")
@pytest.mark.parametrize("iss", HOSTILE_ISS, ids=lambda v: repr(v)[:20])
def test_hostile_iss_values_are_401_bad_issuer_never_500(realms, api, rejected, iss):
    claims = {"sub": "x", "exp": int(time.time()) + 60, "typ": "Bearer", "aud": "a-api"}
    if iss is not None:
        claims["iss"] = iss
    response = api(unsigned(claims))
    assert response.status_code == 401
    assert rejected[-1]["reason_code"] == "bad_issuer"
    assert realms.a.requests == [] and realms.b.requests == []


UNREADABLE = [
    "not-a-jwt", "a.b", "a.!!!.c", f"x.{_b64(b'[1]')}.y", f"x.{_b64(b'{' * 5000)}.y",
    f"x.{_b64(b'[' * 100_000 + b']' * 100_000)}.y", "x." + _b64(b'{"iss": 1e999}') + ".y",
    "x." + _b64(b'{"iss": ' + b"9" * 5000 + b"}") + ".y",
]  # fmt: skip


@pytest.mark.fixer("backend.decode.issuer-selection")
@pytest.mark.parametrize("raw", UNREADABLE, ids=range(len(UNREADABLE)))
def test_unreadable_claims_are_401_without_any_request(realms, api, raw):
    assert api(raw).status_code == 401
    assert realms.a.requests == [] and realms.b.requests == []


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_ten_thousand_random_issuers_cost_zero_fetches(realms, rejected):
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken

    auth = JWTAuthentication()
    rng = random.Random(19)
    trusted = {realms.a.issuer, realms.b.issuer, settings.SIMPLE_JWT["ISSUER"]}
    started = time.perf_counter()
    for i in range(10_000):
        base = rng.choice([realms.a.issuer, realms.b.issuer, "https://evil.example", ""])
        iss: Any = base + "".join(rng.choice("abc/.:%") for _ in range(rng.randint(1, 8)))
        if i % 7 == 0:
            iss = rng.choice([[iss], {"v": iss}, rng.randint(-(10**20), 10**20), None])
        assert not isinstance(iss, str) or iss not in trusted
        with pytest.raises(InvalidToken):
            auth.get_validated_token(unsigned({"iss": iss, "sub": "x", "aud": "a-api"}, kid=str(i)).encode())
    elapsed = time.perf_counter() - started
    assert realms.a.requests == [] and realms.b.requests == []
    assert {r["reason_code"] for r in rejected} == {"bad_issuer"} and len(rejected) == 10_000
    assert elapsed < 30, elapsed


# -- each realm its own key source ----------------------------------------------------------------


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_one_realm_rotates_the_new_key_is_accepted_first_time_and_the_other_is_not_refetched(realms, api):
    a, b = realms.a, realms.b
    assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200
    before_a = len(a.requests)
    b.rotate()
    assert api(b.mint()).status_code == 200  # the first token with the new kid
    assert len(b.jwks_requests()) == 2
    assert len(a.requests) == before_a
    for _ in range(5):
        assert api(b.mint()).status_code == 200
    assert api(a.mint()).status_code == 200 and len(a.requests) == before_a and len(b.jwks_requests()) == 2


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_unknown_kids_against_one_realm_never_cost_the_other(realms, api):
    a, b = realms.a, realms.b
    assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200
    before_a = len(a.requests)
    for i in range(12):
        assert api(unsigned({"iss": b.issuer, "aud": "b-api"}, kid=f"random-{i}")).status_code == 401
    assert len(a.requests) == before_a
    assert len(b.jwks_requests()) <= 2  # one demand refetch per cooldown


@pytest.mark.fixer("backend.decode.issuer-selection")
@pytest.mark.parametrize("mode", [Mode.SERVER_ERROR, Mode.CLOSE, Mode.HANG])
def test_one_realms_idp_down_the_others_tokens_keep_200(realms, api, mode, rejected):
    a, b = realms.a, realms.b
    a.hang_seconds = 0.3
    assert api(b.mint()).status_code == 200
    a.mode = mode  # cold: A's key set cannot be had
    with override_settings(SIMPLE_JWT_PATCHES=realms.patches(JWKS_TIMEOUT=0.2)):
        assert api(a.mint()).status_code == 401
        assert rejected[-1]["reason_code"] == "jwks_unavailable" and rejected[-1]["issuer"] == a.issuer
        started = time.perf_counter()
        for _ in range(10):
            assert api(b.mint()).status_code == 200
        assert time.perf_counter() - started < 2
    assert len(b.jwks_requests()) == 1


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_a_realm_whose_discovery_names_another_issuer_fails_closed(realms, api, rejected, caplog):
    a, b = realms.a, realms.b
    a.discovery_issuer = "https://attacker.example/realms/tenant-a"
    with caplog.at_level(logging.WARNING, logger="simplejwt_patches"):
        assert api(a.mint()).status_code == 401
    failure = find_in_chain(last_exception(), JWKSFailure)
    assert failure.kind == "discovery_issuer" and "attacker.example" in failure.detail
    assert rejected[-1]["reason_code"] == "jwks_invalid"
    assert a.jwks_requests() == []  # the keys of a realm that lies are never fetched
    assert any("discovery document of issuer" in r.getMessage() and "names issuer" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert api(b.mint()).status_code == 200
    assert api(a.mint()).status_code == 401 and len(a.discovery_requests()) == 1  # retried after the cooldown only


def test_discovery_is_cached_refreshed_after_expiry_and_served_stale_if_error(two_idps):
    from simplejwt_patches.discovery import Discovery

    a = two_idps.a
    a.reset()
    options = build_options({"JWKS_CACHE_LIFESPAN": 300, "JWKS_STALE_IF_ERROR": 600, "JWKS_TIMEOUT": 1})
    now = [1000.0]
    doc = Discovery(a.issuer, a.discovery_url, clock=lambda: now[0])
    assert doc.jwks_uri(options) == a.jwks_url
    now[0] += 299
    assert doc.jwks_uri(options) == a.jwks_url and len(a.discovery_requests()) == 1  # cached
    now[0] += 2
    assert doc.jwks_uri(options) == a.jwks_url and len(a.discovery_requests()) == 2  # refreshed after expiry
    a.discovery_issuer = "https://other.example"  # a refresh that fails: the last good URI keeps serving
    now[0] += 301
    assert doc.jwks_uri(options) == a.jwks_url and len(a.discovery_requests()) == 3
    assert doc.state().failure and "names issuer 'https://other.example'" in doc.state().failure
    now[0] += 10  # within the cooldown: no new attempt
    assert doc.jwks_uri(options) == a.jwks_url and len(a.discovery_requests()) == 3
    now[0] += 700  # past expiry + JWKS_STALE_IF_ERROR: fail closed
    with pytest.raises(JWKSFailure, match="names issuer"):
        doc.jwks_uri(options)
    a.discovery_issuer = None
    now[0] += 31
    assert doc.jwks_uri(options) == a.jwks_url and doc.state().failure is None
    a.reset()


def test_discovery_failures_are_classified_and_bounded(two_idps):
    from simplejwt_patches.discovery import Discovery

    a = two_idps.a
    options = build_options({"JWKS_TIMEOUT": 1, "JWKS_MAX_BYTES": 64})
    with pytest.raises(JWKSFailure) as too_large:
        Discovery(a.issuer, a.discovery_url).jwks_uri(options)
    assert too_large.value.kind == "too_large"
    with pytest.raises(JWKSFailure) as missing:
        Discovery(a.issuer, a.discovery_url.replace("tenant-a", "nope")).jwks_uri(build_options({}))
    assert missing.value.kind == "status" and missing.value.status == 404


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_jwks_signals_name_the_issuer(realms, api):
    got: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        got.append(kwargs)

    signals.jwks_fetched.connect(receiver, weak=False)
    try:
        assert api(realms.a.mint()).status_code == 200 and api(realms.b.mint()).status_code == 200
    finally:
        signals.jwks_fetched.disconnect(receiver)
    assert [g["issuer"] for g in got] == [realms.a.issuer, realms.b.issuer]


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_unset_issuers_changes_nothing_and_verify_false_is_left_alone(api, idp, fresh_backend):
    assert api(idp.mint()).status_code == 200
    backend = fresh_backend()
    with FakeKeycloak(realm="elsewhere") as other:
        token = register_sensitive_token(other.mint())
        with override_settings(SIMPLE_JWT_PATCHES={"ISSUERS": {"https://x.example": {}}}):
            assert backend.decode(token, False)["iss"] == other.issuer
            assert api(idp.mint()).status_code == 200  # SIMPLE_JWT['ISSUER'] stays trusted
            assert api(token).status_code == 401
        assert other.requests == []


# -- settings ---------------------------------------------------------------------------------------


def _e060(raw: Any) -> list[str]:
    return [p.msg for p in build_options({"ISSUERS": raw}).problems if p.id == "E060"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://a", "must be a dict"),
        ({}, "is empty"),
        ({f"https://r{i}.example": {} for i in range(300)}, "more than 256"),
        ({1: {}}, "must be strings"),
        ({"": {}}, "is empty"),
        ({"https://a\r\n": {}}, "CR/LF"),
        ({" https://a": {}}, "surrounding space"),
        ({"https://a": []}, "must be a dict of options"),
        ({"https://a": {"JWKS_URL": "https://a/c"}}, "unknown option"),
        ({"https://a": {"JWK_URL": "ftp://a/c"}}, "http:// or https://"),
        ({"https://a": {"JWK_URL": "https://u:p@a/c"}}, "carries credentials"),
        ({"https://a": {"DISCOVERY_URL": "https://a/x y"}}, "U+0020"),
        ({"https://a": {"JWK_URL": "https://a/\r\nX: 1"}}, "U+000D"),
        ({"https://a": {"JWK_URL": "https://a:99999/c"}}, "bad host or port"),
        ({"https://a": {"JWK_URL": 1}}, "URL string"),
        ({"urn:tenant": {}}, "discovery document cannot be found"),
        ({"https://a": {"AUDIENCE": []}}, "AUDIENCE must be"),
        ({"https://a": {"AUDIENCE": float("nan")}}, "AUDIENCE must be"),
        ({"https://a": {"AUTHORIZED_PARTIES": "a-web"}}, "every token is rejected"),
    ],
    ids=range(19),
)
def test_hostile_issuers_settings_are_e060_naming_the_entry(raw, expected):
    messages = _e060(raw)
    assert messages and any(expected in m for m in messages), messages
    assert all("SIMPLE_JWT_PATCHES['ISSUERS']" in m for m in messages)
    assert "p@" not in " ".join(messages)  # a password in a URL is never echoed


def test_valid_issuers_settings_have_no_problem_and_show_in_status():
    import simplejwt_patches

    raw = {"https://sso.example.com/realms/a": {}, "https://idp.example.com": {"JWK_URL": "https://idp/c",
           "AUDIENCE": "api", "AUTHORIZED_PARTIES": ["web"]}}  # fmt: skip
    options = build_options({"ISSUERS": raw})
    assert options.problems == ()
    assert options.issuers["https://sso.example.com/realms/a"].discovery_url == (
        "https://sso.example.com/realms/a/.well-known/openid-configuration"
    )
    with override_settings(SIMPLE_JWT_PATCHES={"ISSUERS": raw}):
        shown = simplejwt_patches.status().options["issuers"]
    assert shown["https://idp.example.com"] == {
        "JWK_URL": "https://idp/c", "DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
        "AUDIENCE": "api", "AUTHORIZED_PARTIES": ["web"],
    }  # fmt: skip
    assert shown["https://sso.example.com/realms/a"]["JWK_URL"] == "(discovery)"


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_an_invalid_entry_is_left_out_and_fails_closed(realms, api):
    broken = {**realms.issuers(), realms.b.issuer: {"JWK_URL": "https://u:p@127.0.0.1/c"}}
    with override_settings(SIMPLE_JWT_PATCHES={**realms.patches(), "ISSUERS": broken}):
        assert api(realms.b.mint()).status_code == 401
        assert api(realms.a.mint()).status_code == 200
    assert realms.b.requests == []


# -- the multi-realm recipes of docs/recipes.md, applied verbatim ------------------------------------


def _apply_recipe(label: str, monkeypatch: Any, fresh_backend: Any, urls: dict[str, str]) -> Any:
    """Apply a docs/recipes.md block as written; only the URLs in ``urls`` (recipe URL -> loopback) change."""
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt import settings as sj_settings

    from tests.test_recipes import BLOCKS

    block = BLOCKS[label]
    simple_jwt = {k: urls.get(v, v) if isinstance(v, str) else v for k, v in block["SIMPLE_JWT"].items()}
    patches = dict(block["SIMPLE_JWT_PATCHES"])
    issuers = {}
    for issuer, options in patches["ISSUERS"].items():
        options = {k: urls.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
        if not options.get("DISCOVERY_URL") and not options.get("JWK_URL"):
            default = issuer + "/.well-known/openid-configuration"
            assert default in urls, f"{label}: no loopback stand-in for {default}"
            options["DISCOVERY_URL"] = urls[default]  # what discovery by the issuer alone fetches
        issuers[issuer] = options
    patches["ISSUERS"] = issuers
    written = repr(block)
    assert all(url in written or url.endswith("/.well-known/openid-configuration") for url in urls), urls
    stack = override_settings(SIMPLE_JWT=simple_jwt, SIMPLE_JWT_PATCHES=patches)
    stack.enable()
    new = sj_settings.api_settings
    for module in (authentication, tokens):
        monkeypatch.setattr(module, "api_settings", new)
    fresh_backend(audience=new.AUDIENCE, issuer=new.ISSUER, jwk_url=new.JWK_URL, leeway=new.LEEWAY)
    return stack


def _keycloak(realm: str, frontend: str, audience: str, client: str) -> FakeKeycloak:
    idp = FakeKeycloak(realm=realm, client_id=client).start()
    idp.frontend, idp.audience = frontend, audience
    original = idp.mint
    idp.mint = lambda *a, **k: register_sensitive_token(original(*a, **k))  # type: ignore[method-assign]
    return idp


def _users(*idps: FakeKeycloak) -> None:
    from django.contrib.auth import get_user_model

    for idp in idps:
        get_user_model().objects.get_or_create(username=idp.subject)


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_the_several_keycloak_realms_recipe(monkeypatch, fresh_backend, api):
    customers = _keycloak("customers", "https://sso.example.com", "acme-api", "acme-web")
    staff = _keycloak("staff", "https://sso.example.com", "staff-api", "staff-portal")
    staff.rotate(keep_old=False)
    internal = {f"http://keycloak:8080/realms/{r.realm}/.well-known/openid-configuration": r.discovery_url
                for r in (customers, staff)}  # fmt: skip
    stack = _apply_recipe("Several Keycloak realms", monkeypatch, fresh_backend, internal)
    try:
        _users(customers, staff)
        assert api(customers.mint()).status_code == 200
        assert api(staff.mint()).status_code == 200
        assert api(customers.mint({"azp": "staff-portal"})).status_code == 401  # not a client of customers
        assert api(staff.mint({"aud": ["acme-api"]})).status_code == 401  # not staff's audience
        assert api(staff.mint({"iss": customers.issuer})).status_code == 401  # staff's key claiming customers
        with FakeKeycloak(realm="acme") as untrusted:
            untrusted.frontend = "https://sso.example.com"
            token = register_sensitive_token(untrusted.mint({"aud": "acme-api"}))
            assert api(token).status_code == 401 and untrusted.requests == []
        assert [len(r.discovery_requests()) for r in (customers, staff)] == [1, 1]
    finally:
        stack.disable()
        customers.stop()
        staff.stop()


@pytest.mark.fixer("backend.decode.issuer-selection")
def test_the_migration_recipe_old_and_new_idp_side_by_side(monkeypatch, fresh_backend, api):
    old = _keycloak("acme", "https://old-sso.example.com/auth", "acme-api", "acme-web")
    new = _keycloak("acme", "https://sso.example.com", "acme-api", "acme-web")
    new.rotate(keep_old=False)
    urls = {
        "https://old-sso.example.com/auth/realms/acme/protocol/openid-connect/certs": old.jwks_url,
        "https://sso.example.com/realms/acme/.well-known/openid-configuration": new.discovery_url,
    }
    stack = _apply_recipe("Migrating from one IdP to another", monkeypatch, fresh_backend, urls)
    try:
        _users(old, new)
        assert api(old.mint()).status_code == 200
        assert api(new.mint()).status_code == 200
        assert api(new.mint({"iss": old.issuer})).status_code == 401  # the new IdP's key claiming the old
        assert api(old.mint({"iss": new.issuer})).status_code == 401
        assert len(new.discovery_requests()) == 1 and len(old.discovery_requests()) == 0
    finally:
        stack.disable()
        old.stop()
        new.stop()


# -- system checks ----------------------------------------------------------------------------------


def _ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_issuers_settings_problems_are_e060_in_manage_py_check():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with override_settings(SIMPLE_JWT_PATCHES={"ISSUERS": {"https://a": {"JWK_URL": "https://u:secret-pw@a/c"}}}):
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
    assert "simplejwt_patches.E060" in str(raised.value) and "secret-pw" not in str(raised.value)


def test_an_asymmetric_algorithm_without_any_key_source_is_e061():
    from simplejwt_patches.realm_checks import check_key_source

    bare = {**settings.SIMPLE_JWT, "JWK_URL": None, "ISSUER": None, "VERIFYING_KEY": ""}
    with override_settings(SIMPLE_JWT=bare, SIMPLE_JWT_PATCHES={}):
        (message,) = check_key_source()
        assert message.id == "simplejwt_patches.E061" and "HTTP 500" in message.msg and "ISSUERS" in message.hint
    with override_settings(SIMPLE_JWT=bare, SIMPLE_JWT_PATCHES={"ISSUERS": {"https://sso.example.com/realms/a": {}}}):
        assert check_key_source() == []
    with override_settings(SIMPLE_JWT={**bare, "VERIFYING_KEY": "-----BEGIN PUBLIC KEY-----"}):
        assert check_key_source() == []
    with override_settings(SIMPLE_JWT={**bare, "ALGORITHM": "HS256"}):
        assert check_key_source() == []
    assert check_key_source() == []  # the session's JWK_URL


def test_issuers_beside_a_jwk_url_without_issuer_is_w061_and_hs256_is_e062():
    from simplejwt_patches.realm_checks import check_issuers

    patches = {"ISSUERS": {"https://sso.example.com/realms/a": {}}}
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "ISSUER": None}, SIMPLE_JWT_PATCHES=patches):
        assert _ids(check_issuers()) == ["simplejwt_patches.W061"]
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "ALGORITHM": "HS256"}, SIMPLE_JWT_PATCHES=patches):
        assert _ids(check_issuers()) == ["simplejwt_patches.E062"]
    with override_settings(SIMPLE_JWT_PATCHES=patches):
        assert check_issuers() == []


def test_issuers_with_the_selection_fixer_disabled_is_e062():
    import simplejwt_patches
    from simplejwt_patches.realm_checks import check_issuers

    patches = {"ISSUERS": {"https://sso.example.com/realms/a": {}}}
    with override_settings(SIMPLE_JWT_PATCHES={**patches, "DISABLE": ["backend.decode.issuer-selection"]}):
        simplejwt_patches.revert()
        simplejwt_patches.apply()
        (message,) = check_issuers()
    simplejwt_patches.revert()
    assert message.id == "simplejwt_patches.E062" and "disabled" in message.msg


def test_check_deploy_probes_every_realm_and_names_the_failing_one(realms):
    from simplejwt_patches.realm_checks import check_realms_live

    a, b = realms.a, realms.b
    assert check_realms_live() == []
    assert len(a.discovery_requests()) == 1 and len(b.jwks_requests()) == 1
    b.mode = Mode.NOT_FOUND
    (message,) = check_realms_live()
    assert message.id == "simplejwt_patches.E102" and repr(b.issuer) in message.msg and b.jwks_url in message.msg
    b.mode = Mode.OK
    a.discovery_issuer = "https://attacker.example/realms/tenant-a"
    (message,) = check_realms_live()
    assert message.id == "simplejwt_patches.E107" and repr(a.issuer) in message.msg
    assert a.discovery_url in message.msg and "attacker.example" in message.msg
    a.discovery_issuer = None
    a.mode = Mode.EMPTY
    (message,) = check_realms_live()
    assert message.id == "simplejwt_patches.E104" and repr(a.issuer) in message.msg


def test_manage_py_check_deploy_names_the_failing_realm_without_traceback(realms):
    import io

    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    realms.b.mode = Mode.SERVER_ERROR
    err = io.StringIO()
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", stderr=err)
    text = str(raised.value)
    assert "simplejwt_patches.E102" in text and realms.b.jwks_url in text and realms.b.issuer in text
    assert "Traceback" not in text + err.getvalue()


# -- the doctor -------------------------------------------------------------------------------------


def test_the_doctor_names_the_matching_issuer_and_says_when_issuers_does_not_list_one(realms):
    from tests.helpers import doctor

    code, text = doctor(token=realms.b.mint())
    assert code == 0, text
    assert f"iss {realms.b.issuer!r} matches the trusted issuer ISSUERS[{realms.b.issuer!r}]" in text
    assert f"keys from JWK_URL {realms.b.jwks_url}" in text
    code, text = doctor(token=realms.a.mint())
    assert code == 0 and "keys by discovery at " + realms.a.discovery_url in text, text
    with FakeKeycloak(realm="tenant-c") as c:
        token = register_sensitive_token(c.mint())
        code, text = doctor(token=token)
        assert c.requests == []
    assert code == 1
    assert f"token iss {c.issuer!r} is not in SIMPLE_JWT_PATCHES['ISSUERS']" in text
    assert "SIMPLE_JWT_PATCHES['ISSUERS'][<its exact iss>] = {}" in text
