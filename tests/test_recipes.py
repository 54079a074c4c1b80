"""The README's Keycloak scenario and every provider recipe, applied verbatim (issue 15).

Each ``SIMPLE_JWT`` / ``SIMPLE_JWT_PATCHES`` block is parsed out of README.md and applied as written;
only ``JWK_URL`` points at the loopback IdP (whose signing key signs tokens shaped like that
provider's, carrying the recipe's own ``iss`` and ``aud``), after checking that the recipe's URL has
the provider's shape. Through DRF's real request path: the API's own access token 200; another
client's token 401; the provider's ID token 401; Keycloak's refresh and logout tokens 401.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from packaging.version import Version

from simplejwt_patches import signals
from simplejwt_patches.providers import recognise
from tests.conftest import register_sensitive_token
from tests.helpers import SIMPLEJWT
from tests.project.settings import scenario_settings

pytestmark = pytest.mark.django_db
README = Path(__file__).resolve().parent.parent / "README.md"
RECIPES = Path(__file__).resolve().parent.parent / "docs" / "recipes.md"

#: Keycloak-only claims of the loopback IdP's default token (removed for the other providers).
KEYCLOAK_ONLY = (
    "typ", "azp", "sid", "acr", "allowed-origins", "realm_access", "resource_access", "scope", "email_verified",
    "name", "preferred_username", "given_name", "family_name", "email", "auth_time", "jti",
)  # fmt: skip


def readme_blocks() -> dict[str, dict[str, Any]]:
    """``{label: {"SIMPLE_JWT": ..., "SIMPLE_JWT_PATCHES": ...}}`` for every settings block of the README
    and of docs/recipes.md.

    The label is the nearest heading (``## The Keycloak scenario``) or bold lead (``**Auth0**``) above it.
    """
    found: dict[str, dict[str, Any]] = {}
    pattern = re.compile(r"^## ([^\n]+)$|^\*\*([^*\n]+)\*\*|^```python\n(.*?)^```", re.M | re.S)
    for source in (README, RECIPES):
        found.update(_blocks(source, pattern, found))
    return found


def _blocks(source: Path, pattern: re.Pattern[str], seen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    label = ""
    for match in pattern.finditer(source.read_text()):
        heading, bold, code = match.groups()
        if heading or bold:
            label = (heading or bold).strip()
        elif code and "SIMPLE_JWT = {" in code:
            namespace: dict[str, Any] = {}
            exec(compile(code, f"{source.name} ({label})", "exec"), namespace)
            assert label not in found and label not in seen, f"two settings blocks under {label!r}"
            found[label] = {k: namespace[k] for k in ("SIMPLE_JWT", "SIMPLE_JWT_PATCHES") if k in namespace}
    return found


BLOCKS = readme_blocks()
PROVIDER_OF = {
    "The Keycloak scenario": "keycloak",
    "Keycloak": "keycloak",
    "Auth0": "auth0",
    "Microsoft Entra ID": "entra",
}


#: The multi-realm recipes (``ISSUERS``), applied by tests/test_realms.py.
REALM_RECIPES = ("Several Keycloak realms", "Migrating from one IdP to another")


def test_every_settings_block_of_the_readme_is_covered():
    assert set(BLOCKS) == set(PROVIDER_OF) | set(REALM_RECIPES), "a README settings block without a test applying it"


def test_the_test_projects_settings_are_the_readme_scenario():
    readme = BLOCKS["The Keycloak scenario"]
    project = scenario_settings("https://sso.example.com/realms/acme/protocol/openid-connect/certs", None)
    assert {**readme["SIMPLE_JWT"], "ISSUER": None} == project["SIMPLE_JWT"]
    assert readme["SIMPLE_JWT_PATCHES"]["AUTHORIZED_PARTIES"] == project["SIMPLE_JWT_PATCHES"]["AUTHORIZED_PARTIES"]


# -- tokens shaped like each provider's --------------------------------------------------------------


def _other(audience: Any) -> list[Any]:
    return audience if isinstance(audience, list) else [audience]


def keycloak(simple_jwt: dict[str, Any], client: str) -> dict[str, dict[str, Any]]:
    iss, aud = simple_jwt["ISSUER"], simple_jwt["AUDIENCE"]
    return {
        "own": {"iss": iss, "aud": [aud, "account"], "azp": client},
        "other client (aud account)": {"iss": iss, "aud": "account", "azp": "some-other-spa"},
        "other client (same audience)": {"iss": iss, "aud": [aud, "account"], "azp": "some-other-spa"},
        "id token": {"iss": iss, "aud": client, "azp": client, "typ": "ID", "nonce": "n-0S6", "at_hash": "x"},
        "logout token": {"iss": iss, "aud": client, "azp": client, "typ": "Logout", "sid": str(uuid.uuid4()),
                         "events": {"http://schemas.openid.net/event/backchannel-logout": {}}},
    }  # fmt: skip


def auth0(simple_jwt: dict[str, Any], client: str) -> dict[str, dict[str, Any]]:
    iss, aud, sub = simple_jwt["ISSUER"], simple_jwt["AUDIENCE"], "auth0|64f0c0ffee0123456789abcd"
    base = {k: None for k in KEYCLOAK_ONLY} | {"iss": iss, "sub": sub}
    return {
        "own": base | {"aud": [aud, f"{iss}userinfo"], "azp": client, "scope": "openid profile read:things"},
        "other client (another API)": base | {"aud": "https://billing.acme.example", "azp": "some-other-app"},
        "other client (same API)": base | {"aud": [aud], "azp": "some-other-app", "gty": "client-credentials"},
        "id token": base | {"aud": client, "nonce": "n-0S6", "sid": "s", "name": "Alice"},
    }


GRAPH = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's application id


def entra(simple_jwt: dict[str, Any], client: str) -> dict[str, dict[str, Any]]:
    iss, aud, oid = simple_jwt["ISSUER"], simple_jwt["AUDIENCE"], str(uuid.uuid4())
    base = {k: None for k in KEYCLOAK_ONLY} | {
        "iss": iss, "oid": oid, "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": "<tenant-id>",
        "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
    }  # fmt: skip
    return {
        "own": base | {"aud": aud, "azp": client, "azpacr": "0", "scp": "access_as_user"},
        "other client (same API)": base | {"aud": aud, "azp": "some-other-app-id", "scp": "access_as_user"},
        "other client (Graph)": base | {"aud": GRAPH, "azp": client, "scp": "User.Read"},
        "id token": base | {"aud": aud, "nonce": "n-0S6", "preferred_username": "alice@acme.example"},
    }


SHAPES = {"keycloak": keycloak, "auth0": auth0, "entra": entra}


@pytest.fixture
def recipe(request, idp, fresh_backend, monkeypatch):
    """Apply one README block verbatim (JWK_URL -> the loopback IdP); returns (settings, tokens)."""
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt import settings as sj_settings

    label = request.param
    block = BLOCKS[label]
    simple_jwt, patches = dict(block["SIMPLE_JWT"]), dict(block.get("SIMPLE_JWT_PATCHES", {}))
    assert recognise(simple_jwt["JWK_URL"], simple_jwt["ISSUER"]).key == PROVIDER_OF[label]
    parties = patches.get("AUTHORIZED_PARTIES")
    assert parties, f"{label}: a recipe without AUTHORIZED_PARTIES"
    shaped = SHAPES[PROVIDER_OF[label]](simple_jwt, parties[0])
    applied = {**simple_jwt, "JWK_URL": idp.jwks_url}
    with override_settings(SIMPLE_JWT=applied, SIMPLE_JWT_PATCHES=patches):  # rebinds settings.api_settings
        new = sj_settings.api_settings
        for module in (authentication, tokens):  # they bound api_settings at import
            monkeypatch.setattr(module, "api_settings", new)
        fresh_backend(audience=new.AUDIENCE, issuer=new.ISSUER, jwk_url=idp.jwks_url, leeway=new.LEEWAY)
        yield new, {name: register_sensitive_token(idp.mint(claims)) for name, claims in shaped.items()}


def call(token: str) -> int:
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return int(client.get("/api/whoami").status_code)


@pytest.mark.fixer("backend.decode.authorized-party")
@pytest.mark.parametrize("recipe", list(PROVIDER_OF), indirect=True)
def test_recipe_accepts_only_this_apis_access_tokens(recipe, request):
    api_settings, shaped = recipe
    label = request.node.callspec.params["recipe"]
    own = jwt.decode(shaped["own"], options={"verify_signature": False})
    get_user_model().objects.create(username=own[api_settings.USER_ID_CLAIM])
    reasons: dict[str, str] = {}
    statuses: dict[str, int] = {}

    def receiver(sender: Any, reason_code: str, **kwargs: Any) -> None:
        reasons[current] = reason_code

    signals.token_rejected.connect(receiver, weak=False)
    try:
        for current, token in shaped.items():
            statuses[current] = call(token)
    finally:
        signals.token_rejected.disconnect(receiver)
    if SIMPLEJWT < Version("5.2.0") and None in (api_settings.JTI_CLAIM, api_settings.TOKEN_TYPE_CLAIM):
        assert "SimpleJWT supports from 5.2.0 on: 4.8.0 – 5.1.0 reject every such token" in RECIPES.read_text()
        assert set(statuses.values()) == {401}, statuses  # still fails closed
        return
    assert statuses.pop("own") == 200 and "own" not in reasons
    assert statuses and set(statuses.values()) == {401}, statuses
    assert any(name.startswith("other client") for name in statuses) and "id token" in statuses
    for name in ("other client (same audience)", "other client (same API)"):  # only azp tells them apart
        assert reasons.get(name, "bad_authorized_party") == "bad_authorized_party", reasons
    if PROVIDER_OF[label] == "entra":  # the ID token carries the API's own aud: azp tells it apart
        assert reasons["id token"] == "bad_authorized_party", reasons


@pytest.mark.parametrize("recipe", ["The Keycloak scenario", "Keycloak"], indirect=True)
def test_keycloak_refresh_tokens_are_401(recipe, idp):
    api_settings, shaped = recipe
    claims = jwt.decode(shaped["own"], options={"verify_signature": False})
    get_user_model().objects.create(username=claims["sub"])
    refresh = {**claims, "typ": "Refresh", "aud": api_settings.ISSUER, "scope": "openid profile email"}
    token = jwt.encode(refresh, "realm-hmac-secret-" + "x" * 48, algorithm="HS512", headers={"kid": "hmac-kid"})
    assert call(register_sensitive_token(token if isinstance(token, str) else token.decode())) == 401
