"""Trust only this API's tokens (issue 15): AUTHORIZED_PARTIES, W050, E051, provider-aware advice, W040.

Through DRF's real request path against the loopback Keycloak-shaped IdP, ``manage.py check`` and
``simplejwt_doctor``. The session configuration is the README's Keycloak scenario: ``AUDIENCE =
"acme-api"`` (an Audience mapper) and ``AUTHORIZED_PARTIES = ("acme-web",)``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import simplejwt_patches
from simplejwt_patches import signals
from simplejwt_patches.checks import check_settings, check_signing_backend, check_trusted_clients, check_user_lookup
from simplejwt_patches.conf import build_options
from simplejwt_patches.providers import GENERIC, PROVIDERS, recognise
from tests.helpers import doctor, expected_body, find_in_chain, use_simple_jwt

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
FIXER = "backend.decode.authorized-party"
PARTIES = {"AUTHORIZED_PARTIES": ("acme-web",)}
DIAGNOSTICS = ["auth.validated-token.cause", "token.init.chain-cause", "backend.decode.chain-cause"]


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def sj(**overrides: object) -> override_settings:
    return override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, **overrides})


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES=options)


@pytest.fixture
def rejected():
    got: list[dict] = []

    def receiver(sender, **kwargs):
        got.append(kwargs)

    signals.token_rejected.connect(receiver, weak=False)
    yield got
    signals.token_rejected.disconnect(receiver)


# -- AUTHORIZED_PARTIES through DRF ---------------------------------------------------------------


@pytest.mark.fixer("backend.decode.authorized-party")
def test_another_clients_token_is_401_with_reason_signal_and_debug_line(api, idp, rejected, caplog):
    """Why 1: a token issued to another client of the realm (aud 'account') was HTTP 200."""
    assert api(idp.mint()).status_code == 200
    other = idp.mint({"azp": "some-other-spa", "aud": "account"})
    with caplog.at_level(logging.DEBUG, logger="simplejwt_patches"):
        response = api(other)
    assert response.status_code == 401 and response.json() == expected_body()
    (kwargs,) = rejected
    assert kwargs["reason_code"] == "bad_audience"  # AUDIENCE 'acme-api' already refuses it
    same_audience = idp.mint({"azp": "some-other-spa"})  # the Audience mapper is on that client too
    with caplog.at_level(logging.DEBUG, logger="simplejwt_patches"):
        response = api(same_audience)
    assert response.status_code == 401 and response.json() == expected_body()
    assert rejected[-1]["reason_code"] == "bad_authorized_party"
    assert rejected[-1]["reason"] == "token was issued to a client (azp) not in AUTHORIZED_PARTIES"
    assert rejected[-1]["root_cause"] == "UnauthorizedParty"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("token rejected:")]
    assert any("UnauthorizedParty: token azp 'some-other-spa' is not in" in line for line in lines), lines


@pytest.mark.fixer("backend.decode.authorized-party")
@pytest.mark.parametrize(
    "azp", [None, "", "ACME-WEB", "acme-web ", ["acme-web"], {"acme-web": 1}, 1, True, "acme-web\r\n"], ids=repr
)
def test_missing_or_unlisted_azp_is_401(api, idp, rejected, azp):
    token = idp.mint({"azp": azp} if azp is not None else {"azp": None})
    response = api(token)
    assert response.status_code == 401 and response.json() == expected_body()
    assert rejected[-1]["reason_code"] == "bad_authorized_party"


@pytest.mark.fixer("backend.decode.authorized-party")
def test_non_latin1_client_ids_and_several_parties(api, idp):
    with patches(AUTHORIZED_PARTIES=["клиент-веб", "acme-web"]):
        assert api(idp.mint({"azp": "клиент-веб"})).status_code == 200
        assert api(idp.mint()).status_code == 200
        assert api(idp.mint({"azp": "клиент"})).status_code == 401


@pytest.mark.fixer("backend.decode.authorized-party")
def test_unset_checks_nothing_and_invalid_fails_closed(api, idp):
    other = idp.mint({"azp": "some-other-spa"})
    with patches():
        assert api(other).status_code == 200  # opt-in: W050 says when that is a risk
    with patches(AUTHORIZED_PARTIES=[]):
        assert api(idp.mint()).status_code == 401  # an unusable value rejects every token


@pytest.mark.fixer("backend.decode.authorized-party")
def test_enforced_with_every_diagnostics_fixer_disabled(api, idp):
    with patches(**PARTIES, DISABLE=DIAGNOSTICS):
        simplejwt_patches.revert()
        state = {f.id: f.state for f in simplejwt_patches.apply().fixers}
        try:
            assert state[FIXER] == "applied"
            assert all(state.get(d, "disabled") == "disabled" for d in DIAGNOSTICS)
            assert api(idp.mint()).status_code == 200
            response = api(idp.mint({"azp": "some-other-spa"}))
            assert response.status_code == 401 and response.json() == expected_body()
        finally:
            simplejwt_patches.revert()
    simplejwt_patches.apply()


@pytest.mark.fixer("backend.decode.authorized-party")
def test_cause_chain_and_unverified_decode_left_alone(api, idp, fresh_backend):
    from rest_framework_simplejwt.exceptions import TokenBackendError

    from simplejwt_patches.failures import UnauthorizedParty
    from tests.conftest import last_exception

    other = idp.mint({"azp": "some-other-spa"})
    assert api(other).status_code == 401
    assert isinstance(find_in_chain(last_exception(), UnauthorizedParty), UnauthorizedParty)
    backend = fresh_backend()
    assert backend.decode(other, verify=False)["azp"] == "some-other-spa"  # the caller asked for raw claims
    with pytest.raises(TokenBackendError):
        backend.decode(other)


@pytest.mark.fixer("backend.decode.authorized-party")
def test_custom_party_claim_for_rfc9068_and_okta_tokens(api, idp):
    with patches(AUTHORIZED_PARTIES=["sjp-service"], AUTHORIZED_PARTY_CLAIM="client_id"):
        assert api(idp.mint({"client_id": "sjp-service", "azp": None})).status_code == 200
        assert api(idp.mint()).status_code == 401  # azp acme-web, no client_id


def test_status_shows_the_setting():
    with patches(AUTHORIZED_PARTIES=("b", "a")):
        options = simplejwt_patches.status().options
    assert options["authorized_parties"] == ["a", "b"] and options["party_claim"] == "azp"


# -- settings validation ---------------------------------------------------------------------------

HOSTILE = [
    "acme-web", b"acme-web", [], [""], ["   "], ["a\r\nb"], ["a\x00"], [1], [None], [float("nan")],
    float("inf"), -1, 10**30, {"acme-web": True}, [["nested"]], ["x" * 2000], [f"c{i}" for i in range(1001)],
]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:30])
def test_hostile_authorized_parties_are_an_error_naming_the_key_and_reject_everything(value):
    with patches(AUTHORIZED_PARTIES=value):
        messages = check_settings()
        assert ids(messages) == ["simplejwt_patches.E052"]
        assert "SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES']" in messages[0].msg
        assert "every token is rejected" in messages[0].msg
    assert build_options({"AUTHORIZED_PARTIES": value}).authorized_parties == frozenset()


@pytest.mark.parametrize("value", ["", None, 5, "a\nb", "x" * 101, ["azp"]], ids=repr)
def test_bad_party_claim_is_an_error_naming_the_key(value):
    with patches(AUTHORIZED_PARTY_CLAIM=value):
        messages = check_settings()
    assert ids(messages) == ["simplejwt_patches.E052"]
    assert "SIMPLE_JWT_PATCHES['AUTHORIZED_PARTY_CLAIM']" in messages[0].msg
    assert build_options({"AUTHORIZED_PARTY_CLAIM": value}).party_claim == "azp"


VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@hsettings(max_examples=40, deadline=None)
@given(VALUES)
def test_any_value_is_validated_without_raising(value):
    options = build_options({"AUTHORIZED_PARTIES": value, "AUTHORIZED_PARTY_CLAIM": value})
    parties = options.authorized_parties
    assert parties is None or isinstance(parties, frozenset)
    assert isinstance(options.party_claim, str) and options.party_claim


# -- W050: tokens minted for other clients ---------------------------------------------------------


@pytest.mark.parametrize("audience", ["account", ["account", "acme-api"], None])
def test_w050_when_the_audience_lets_other_clients_in(audience):
    """Why 1: `manage.py check` said nothing about AUDIENCE 'account'."""
    err = io.StringIO()
    with sj(AUDIENCE=audience), patches():
        call_command("check", stdout=io.StringIO(), stderr=err)
        (message,) = check_trusted_clients()
    assert message.id == "simplejwt_patches.W050" and "simplejwt_patches.W050" in err.getvalue()
    assert "accepts tokens minted for other clients" in message.msg
    assert "Audience mapper" in message.hint and "AUTHORIZED_PARTIES" in message.hint
    if audience is not None:
        assert "every client of the realm" in message.msg


def test_no_w050_when_the_audience_names_the_api_or_parties_are_set():
    with sj(AUDIENCE="acme-api"), patches():
        assert check_trusted_clients() == []
    with sj(AUDIENCE="account"), patches(**PARTIES):
        assert check_trusted_clients() == []
    with sj(AUDIENCE=None, JWK_URL=None), patches():
        assert check_trusted_clients() == []


def test_w050_for_another_provider_names_its_own_steps():
    url = "https://acme.eu.auth0.com/.well-known/jwks.json"
    with sj(AUDIENCE=None, JWK_URL=url, ISSUER="https://acme.eu.auth0.com/"), patches():
        (message,) = check_trusted_clients()
    assert "Auth0" in message.msg and "audience=" in message.hint and "Keycloak" not in message.hint + message.msg


# -- E051: RS256 without cryptography ----------------------------------------------------------------

_BLOCKED = textwrap.dedent(
    """
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == "cryptography" or name.startswith("cryptography."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    from django.core.management import execute_from_command_line
    execute_from_command_line(["manage.py", "check"])
    """
)


def test_e051_when_cryptography_cannot_be_imported(idp):
    """Why 5: RS256 without cryptography was an HTTP 500 for every token and `check` was silent."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SJP_")},
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONPATH": str(ROOT),
        "SJP_JWK_URL": idp.jwks_url,
        "SJP_ISSUER": idp.issuer,
    }
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "simplejwt_patches.E051" in done.stderr and "'cryptography'" in done.stderr, done.stderr
    assert "every token would be an HTTP 500" in done.stderr and "pip install 'PyJWT[crypto]'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert check_signing_backend() == []  # here cryptography is installed


def test_e051_ignores_symmetric_algorithms():
    with sj(ALGORITHM="HS256"):
        assert check_signing_backend() == []


# -- W040 where it holds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk_url", "expected"),
    [
        ("https://sso.example.com/realms/acme/protocol/openid-connect/certs", "Keycloak's sub is a UUID"),
        ("https://auth.example.com/o/.well-known/jwks.json", None),  # django-oauth-toolkit: sub = str(user.pk)
        ("https://id.example.com/keys", "unless the identity provider's sub is the user's integer id"),
    ],
    ids=["keycloak", "django-oauth-toolkit", "unknown"],
)
def test_w040_only_where_it_holds(monkeypatch, jwk_url, expected):
    """Why 4: django-oauth-toolkit's sub is str(user.pk), yet W040 said no token can find its user."""
    use_simple_jwt(monkeypatch, USER_ID_FIELD="id", JWK_URL=jwk_url, ISSUER=None)
    messages = check_user_lookup()
    if expected is None:
        assert messages == []
    else:
        assert ids(messages) == ["simplejwt_patches.W040"] and expected in messages[0].msg


def test_the_doctor_judges_w040_from_the_token(alice, idp, fresh_backend, monkeypatch):
    use_simple_jwt(monkeypatch, USER_ID_FIELD="id")
    assert ids(check_user_lookup()) == ["simplejwt_patches.W040"]  # a Keycloak URL: its sub is a UUID
    code, text = doctor(token=idp.mint({"sub": str(alice.pk)}))
    assert code == 0 and "W040" not in text and "✓ user lookup" in text
    code, text = doctor(token=idp.mint())
    assert code == 1 and "! simplejwt_patches.W040:" in text


# -- the doctor ----------------------------------------------------------------------------------------


def test_doctor_authorized_party_line(alice, idp, fresh_backend):
    code, text = doctor(token=idp.mint())
    assert code == 0 and "✓ authorized party: azp 'acme-web' is in AUTHORIZED_PARTIES" in text
    code, text = doctor(token=idp.mint({"azp": "some-other-spa"}))
    assert code == 1
    assert "✗ authorized party: token azp 'some-other-spa' is not in SIMPLE_JWT_PATCHES['AUTHORIZED_PARTIES']" in text
    fix = text.split("✗ authorized party:", 1)[1].splitlines()[1]
    assert fix.startswith("    fix:") and "some-other-spa" not in fix
    assert "bad_authorized_party" in text
    with patches():
        _, text = doctor(token=idp.mint())
    assert "· authorized party: not checked" in text


def test_doctor_audience_fix_never_proposes_the_tokens_audience(alice, idp, fresh_backend):
    """Why 2: the fix was 'set AUDIENCE to one of [<the token's aud>]'."""
    code, text = doctor(token=idp.mint({"aud": ["billing-api", "account"]}))
    assert code == 1
    fix = text.split("✗ audience:", 1)[1].splitlines()[1]
    assert "billing-api" not in fix and "Audience mapper" in fix and "never set SIMPLE_JWT['AUDIENCE']" in fix


def test_doctor_for_another_provider_has_no_keycloak_wording(alice, idp, fresh_backend, monkeypatch):
    """Why 3: Keycloak wording for a token of another provider (audience, issuer, W106 hints)."""
    jwk_url, issuer = idp.base_url + "/elsewhere/certs", "https://id.example.test"
    use_simple_jwt(monkeypatch, JWK_URL=jwk_url, ISSUER=issuer, TOKEN_TYPE_CLAIM=None)
    fresh_backend(jwk_url=jwk_url, issuer=issuer)
    claims = {"iss": "https://other.example.test", "aud": "https://billing.example.test/", "client_id": "svc",
              "sub": "svc", "typ": None, "realm_access": None, "resource_access": None, "azp": None}  # fmt: skip
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "JWK_URL": jwk_url, "ISSUER": issuer}):
        code, text = doctor(token=idp.mint(claims))
    assert code == 1
    for word in ("Keycloak", "KC_HOSTNAME", "realm", "Audience mapper"):
        assert word not in text, word
    fixes = [line for line in text.splitlines() if line.strip().startswith("fix:")]
    assert fixes and not any("billing.example.test" in line for line in fixes)
    assert "✗ issuer" in text and "✗ audience" in text


def test_doctor_verdict_names_the_token_user_id(alice, idp, fresh_backend):
    """Why 7: the verdict for a TokenUser said `user ''`."""
    from tests.test_doctor_stack import STATELESS, auth_classes

    with auth_classes(STATELESS):
        code, text = doctor(token=idp.mint())
        _, raw = doctor("--json", token=idp.mint())
    assert code == 0 and f"(TokenUser id '{idp.subject}', token class" in text and "user ''" not in text
    assert json.loads(raw)["verdict"]["user_id"] == idp.subject


# -- provider recognition --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("https://sso.example.com/realms/acme/protocol/openid-connect/certs",), "keycloak"),
        ((None, "https://kc.internal:8443/realms/x"), "keycloak"),
        (("https://acme.eu.auth0.com/.well-known/jwks.json",), "auth0"),
        (("https://login.microsoftonline.com/t/discovery/v2.0/keys",), "entra"),
        (("https://acme.okta.com/oauth2/default/v1/keys",), "okta"),
        (("https://login.acme.example/oauth2/aus1/v1/keys",), "okta"),
        (("https://www.googleapis.com/oauth2/v3/certs",), "google"),
        (("https://auth.example.com/o/.well-known/jwks.json",), "dot"),
        (("http://127.0.0.1:1234/jwks", "http://127.0.0.1:1234"), "oidc"),
        (("not a url \x00", ["x", 5]), "oidc"),
    ],
)
def test_recognise_by_url_shape(args, key):
    assert recognise(*args).key == key


def test_recognise_by_discovery_document_and_claims():
    assert recognise(discovery={"token_endpoint": "https://x/realms/a/protocol/openid-connect/token"}).key == "keycloak"
    assert recognise(discovery={"token_endpoint": "https://x/o/token/", "issuer": "https://x/o"}).key == "dot"
    assert recognise(discovery={"issuer": "https://x", "cloud_instance_name": "microsoftonline.com"}).key == "entra"
    assert recognise("https://id.example/keys", claims={"tid": "t", "oid": "o"}).key == "entra"
    assert recognise("https://id.example/keys", claims={"sub": "x"}) is GENERIC


@pytest.mark.parametrize("provider", [*PROVIDERS.values(), GENERIC], ids=lambda p: p.key)
def test_no_advice_proposes_a_foreign_audience_or_client(provider):
    audience_fix = provider.audience_fix("acme-api")
    assert "never set SIMPLE_JWT['AUDIENCE'] to the token's aud" in audience_fix
    assert "some-other-spa" not in provider.party_fix("azp")
    if provider.key != "keycloak":
        texts = (audience_fix, provider.party_fix("azp"), provider.issuer_fix(), provider.other_issuer)
        assert not any("Keycloak" in t or "KC_HOSTNAME" in t or "realm" in t for t in texts)


@pytest.mark.parametrize("provider", [*PROVIDERS.values(), GENERIC], ids=lambda p: p.key)
def test_the_doctors_remaining_wording_is_keycloak_only_for_keycloak(provider):
    """Issue 17: the doctor's own fixes (no USER_ID_CLAIM, no key for ALGORITHM, W040) come from providers.py.

    Before, "add a RS256 signing key to the realm" was the doctor's fix whatever the provider.
    """
    texts = (provider.user_claim_fix(), provider.algorithm_fix("RS256"), provider.sub_lookup_problem("looked up"))
    assert any("Keycloak" in t or "realm" in t for t in texts) == (provider.key == "keycloak")
    assert "RS256" in texts[1] and texts[2].startswith("looked up: ")


def test_discovery_urls_next_to_the_key_set_then_each_issuer():
    from simplejwt_patches.providers import discovery_urls, token_type_fix

    keycloak = "https://sso.example.com/realms/acme"
    assert discovery_urls(keycloak + "/protocol/openid-connect/certs", [keycloak + "/", keycloak]) == [
        keycloak + "/.well-known/openid-configuration"
    ]
    assert discovery_urls("https://login.microsoftonline.com/t/discovery/v2.0/keys", []) == [
        "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
    ]
    assert discovery_urls("https://x.example/keys", []) == []
    assert "BearerAccessToken" in token_type_fix({"typ": "Bearer"}, "'Bearer'")
    assert token_type_fix({"typ": "ID"}, "'x'") == "Add a token class with token_type = 'x' to AUTH_TOKEN_CLASSES."
