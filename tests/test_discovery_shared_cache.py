"""``ISSUERS`` realms found by discovery, with ``JWKS_SHARED_CACHE`` on a real redis-server.

The discovery document was kept per process only: a worker started (or respawned) during an IdP
outage failed at discovery and never reached the fleet's last good key set, which a single-``JWK_URL``
worker serves (docs/resilience.md, window 1) -- every token of that realm 401 until the IdP recovered.
Now the document is published sealed like a key set, adopted fresh instead of a fetch, and served as
the last good one after a failed fetch; a planted, forged or other realm's entry is never adopted.
"Another worker" is another SimpleJWT backend (tests/test_realm_shared_cache.py). Real IdPs on
loopback (tests/test_realms.py's two realms, both by discovery here), DRF's request path.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches.deadline import MARGIN
from simplejwt_patches.shared_cache import SharedCache, SharedDocuments, open_entry, seal_entry
from tests import test_realm_bounds, test_realms
from tests.conftest import register_sensitive_token
from tests.helpers import SCHEDULING, raw_redis
from tests.idp import FakeKeycloak, Mode
from tests.test_realms import Realms
from tests.test_shared_cache_trust import Planted

realms, two_idps = test_realms.realms, test_realms.two_idps  # fixtures
tls_realm = test_realm_bounds.tls_realm  # a realm on https (trustme): the downgrade test's

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("backend.decode.issuer-selection")]

TIMEOUT = 0.5


def _caches(redis: str) -> dict[str, Any]:
    return {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis}}


def _patches(issuers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"ISSUERS": issuers, "AUTHORIZED_PARTIES": ["b-web", "acme-web"], "JWKS_SHARED_CACHE": "jwks",
            "JWKS_REFRESH_AHEAD": 0, "JWKS_REFETCH_COOLDOWN": 30, "JWKS_TIMEOUT": TIMEOUT,
            "JWKS_CACHE_LIFESPAN": 300, "JWKS_STALE_IF_ERROR": 600, **extra}  # fmt: skip


@pytest.fixture
def fleet(realms: Realms, redis: str, fresh_backend: Any) -> Iterator[Any]:
    """Both realms by discovery on one shared cache; ``fleet()`` starts another worker."""
    a, b = realms.a, realms.b
    issuers = {
        a.issuer: {"DISCOVERY_URL": a.discovery_url, "AUDIENCE": "a-api", "AUTHORIZED_PARTIES": ["a-web"]},
        b.issuer: {"DISCOVERY_URL": b.discovery_url, "AUDIENCE": ["b-api"]},
    }
    SharedCache._rejected.clear()
    with override_settings(CACHES=_caches(redis), SIMPLE_JWT_PATCHES=_patches(issuers)):
        yield fresh_backend
    SharedCache._rejected.clear()


@pytest.fixture
def attacker() -> Iterator[FakeKeycloak]:
    """A second loopback server: keys of its own (B's pool key, never A's), every request recorded."""
    evil = FakeKeycloak(realm="tenant-a", client_id="a-web").start()
    evil.frontend, evil.audience = "https://sso.example.test", "a-api"  # mints tokens with A's iss
    evil.rotate(keep_old=False)
    try:
        yield evil
    finally:
        evil.stop()


def _key(url: str, store: type = SharedDocuments) -> str:
    return raw_redis()[1](store.key(url))


def _published(url: str, store: type = SharedDocuments) -> dict[str, Any] | None:
    raw, _ = raw_redis()
    return open_entry(raw.get(_key(url, store)), url, store.kind)


def _age(url: str, seconds: float, store: type = SharedDocuments) -> None:
    """Make the fleet's sealed entry ``seconds`` older (fetched and expiry), resealed: time travel."""
    entry = _published(url, store)
    assert entry is not None
    entry = {**entry, "fetched": entry["fetched"] - seconds, "expires": entry["expires"] - seconds}
    raw_redis()[0].set(_key(url, store), seal_entry(entry, url, store.kind), ex=3600)


def _down(idp: FakeKeycloak, fault: str) -> None:
    if fault == "forbidden":
        idp.discovery_status, idp.mode = 403, Mode.FORBIDDEN
    else:  # hanging: the document and the key set each answer only after the whole JWKS_TIMEOUT
        idp.discovery_delay, idp.mode, idp.hang_seconds = TIMEOUT + 0.3, Mode.HANG, TIMEOUT + 0.3


def _warnings(caplog: Any, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# -- 1. a worker started during an outage ------------------------------------------------------------


@pytest.mark.parametrize("fault", ["forbidden", "hanging"])
@pytest.mark.parametrize("published", ["fresh", "last good"])
def test_a_worker_started_during_an_outage_accepts_a_valid_token_from_the_fleets_document_and_set(
    realms, fleet, api, fault, published, caplog
):
    a = realms.a
    fleet()
    assert api(a.mint()).status_code == 200  # the fleet fetched and published A's document and set
    assert _published(a.discovery_url)["payload"] == {"issuer": a.issuer, "jwks_uri": a.jwks_url}
    if published == "last good":  # 400 s ago: past JWKS_CACHE_LIFESPAN, within + JWKS_STALE_IF_ERROR
        _age(a.discovery_url, 400)
        _age(a.jwks_url, 400, SharedCache)
    _down(a, fault)
    fleet()  # gunicorn respawned a worker: no document, no key set of its own
    with caplog.at_level(logging.WARNING, "simplejwt_patches"):
        started = time.monotonic()
        assert api(a.mint()).status_code == 200
        took = time.monotonic() - started
    asked = (len(a.discovery_requests()), len(a.jwks_requests()))
    if published == "fresh":  # the fleet's fresh document and set: the IdP is asked nothing
        assert asked == (1, 1) and took < 0.3 + SCHEDULING, took
    else:  # its own fetches failed: the fleet's last good document, then set (one deadline for both)
        # hanging: the document's wait took the request's whole JWKS_TIMEOUT, so the key set is not requested
        assert asked == (2, 2 if fault == "forbidden" else 1) and took < TIMEOUT + MARGIN + SCHEDULING, took
        assert _warnings(caplog, "serving the shared cache's last good jwks_uri")
        assert _warnings(caplog, "serving the shared cache's last good set")
    assert api(a.mint()).status_code == 200  # and keeps serving them (no request within the cooldown)
    assert (len(a.discovery_requests()), len(a.jwks_requests())) == asked  # the unsent fetch is a failed attempt


def test_a_slow_shared_cache_alone_never_serves_the_fleets_last_good_document(realms, fleet, api):
    """A cold worker whose request had no time left to fetch the document (the time went to the shared
    cache, not to a failing IdP) served the fleet's last good document -- a replayed old one, for up to
    JWKS_STALE_IF_ERROR, with the IdP healthy (review)."""
    from simplejwt_patches.deadline import request_deadline

    a = realms.a
    fleet()
    assert api(a.mint()).status_code == 200
    _age(a.discovery_url, 400)  # past JWKS_CACHE_LIFESPAN, within + JWKS_STALE_IF_ERROR: "last good" only
    _age(a.jwks_url, 400, SharedCache)
    fleet()
    with request_deadline(0.05):  # too little left to fetch in (as after slow cache round trips)
        assert api(a.mint()).status_code in (401, 503)
    assert len(a.discovery_requests()) == 1 and len(a.jwks_requests()) == 1  # the IdP was asked nothing
    fleet()
    assert api(a.mint()).status_code == 200  # with time to fetch: the document and set from the IdP


def test_past_the_stale_bound_the_fleets_document_is_not_served(realms, fleet, api):
    a = realms.a
    fleet()
    assert api(a.mint()).status_code == 200
    _age(a.discovery_url, 901)  # 300 + 600 s: as the key set's last good entry, no longer served
    _down(a, "forbidden")
    fleet()
    assert api(a.mint()).status_code == 401
    assert len(a.jwks_requests()) == 1  # the key set is never reached


# -- 2. a planted document is never adopted ------------------------------------------------------------


def _entry(issuer: str, jwks_uri: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {"generation": 5, "payload": {"issuer": issuer, "jwks_uri": jwks_uri}, "fetched": now,
            "expires": now + 300, "lifetime": 300, "etag": None, "last_modified": None, **extra}  # fmt: skip


def _planted(kind: str, realms: Realms, evil: FakeKeycloak, marker: Path) -> bytes:
    a, b = realms.a, realms.b
    entry = _entry(a.issuer, evil.jwks_url)
    if kind == "unsealed":
        return json.dumps({**entry, "url": a.discovery_url}).encode()
    if kind == "pickle":
        return pickle.dumps(Planted(marker))
    if kind == "forged":  # sealed, but not with this fleet's SECRET_KEY
        with override_settings(SECRET_KEY="an attacker's guess"):
            return seal_entry(entry, a.discovery_url, "discovery")
    if kind == "a key-set seal":  # sealed by this fleet, for this URL, but as a key set
        return seal_entry(entry, a.discovery_url)
    if kind == "realm B's document":  # the fleet's genuine document of realm B, written at A's key
        raw, _ = raw_redis()
        return bytes(raw.get(_key(b.discovery_url)))
    if kind == "sealed for realm B":  # this fleet's seal, naming A's issuer, but over B's discovery URL
        return seal_entry(entry, b.discovery_url, "discovery")
    if kind == "another issuer":  # this fleet's seal, A's URL, naming an issuer that is not A's
        return seal_entry(_entry("https://sso.example.test/realms/tenant-a/", evil.jwks_url), a.discovery_url,
                          "discovery")  # fmt: skip
    assert kind == "control"  # sealed by this fleet and within every rule: adopted (the test can fail)
    return seal_entry(entry, a.discovery_url, "discovery")


@pytest.mark.parametrize(
    "kind",
    ["unsealed", "pickle", "forged", "a key-set seal", "realm B's document", "sealed for realm B",
     "another issuer", "control"],
)  # fmt: skip
def test_a_planted_document_is_never_adopted(realms, fleet, api, attacker, kind, tmp_path, caplog):
    a, b = realms.a, realms.b
    fleet()
    assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200  # both realms published
    attacker.subject = a.subject  # a user that exists: only the keys decide
    marker = tmp_path / "ran"
    raw_redis()[0].set(_key(a.discovery_url), _planted(kind, realms, attacker, marker), ex=300)
    _age(a.jwks_url, 400, SharedCache)  # A's own last good set: served only after A's own document
    _down(a, "forbidden")
    token = register_sensitive_token(attacker.mint())  # A's iss, the attacker's key
    with caplog.at_level(logging.WARNING, "simplejwt_patches"):
        for _ in range(2):
            fleet()  # a worker started in A's outage, then another
            status = api(token).status_code
            if kind != "control":
                assert status == 401
                assert api(a.mint()).status_code == 401  # no document: A's own last good set is unreachable
    if kind == "control":
        assert status == 200 and len(attacker.jwks_requests()) == 1  # what adopting a document means
        return
    assert attacker.requests == [] and not marker.exists()
    ignored = _warnings(caplog, "ignoring the discovery entry for " + a.discovery_url)
    assert len(ignored) == 1, ignored  # once per process
    assert kind not in ("another issuer",) or "discovery rules" in ignored[0]
    assert _warnings(caplog, "tokens from this issuer are rejected")


def test_a_sealed_document_downgrading_https_to_http_is_never_adopted(tls_realm, redis, api, fresh_backend, caplog):
    from django.contrib.auth import get_user_model

    idp, pem = tls_realm
    idp.reset()
    get_user_model().objects.get_or_create(username=idp.subject)
    evil = FakeKeycloak(realm="tls").start()  # plain http, the same realm path
    try:
        # it mints tokens with the https realm's iss, audience and subject
        evil.frontend, evil.audience, evil.subject = idp.base_url, idp.audience, idp.subject
        evil.rotate(keep_old=False)
        patches = _patches({idp.issuer: {}}, JWKS_CA_BUNDLE=str(pem), AUTHORIZED_PARTIES=["acme-web"])
        SharedCache._rejected.clear()
        with override_settings(CACHES=_caches(redis), SIMPLE_JWT_PATCHES=patches):
            fresh_backend()
            assert api(register_sensitive_token(idp.mint())).status_code == 200  # fetched over https, published
            discovery = idp.issuer + "/.well-known/openid-configuration"  # the realm's default DISCOVERY_URL
            assert _published(discovery)["payload"]["jwks_uri"] == idp.jwks_url
            raw_redis()[0].set(_key(discovery), seal_entry(_entry(idp.issuer, evil.jwks_url), discovery, "discovery"))
            _down(idp, "forbidden")
            with caplog.at_level(logging.WARNING, "simplejwt_patches"):
                fresh_backend()  # a worker started in the outage
                assert api(register_sensitive_token(evil.mint())).status_code == 401
            assert evil.requests == []  # the key set is never fetched over plain http
            (ignored,) = _warnings(caplog, "ignoring the discovery entry for " + discovery)
            assert "plain http" in ignored
    finally:
        evil.stop()
        idp.reset()
        SharedCache._rejected.clear()


# -- 3. a fresh published document saves the IdP's discovery requests ----------------------------------


def test_a_cold_worker_takes_the_fleets_fresh_document_instead_of_fetching_it(realms, fleet, api):
    a, b = realms.a, realms.b
    fleet()
    assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200
    first = (_published(a.discovery_url), _published(b.discovery_url))
    assert [e["generation"] for e in first] == [1, 1]
    for _ in range(3):  # three more workers start: no discovery request, no key-set request
        fleet()
        assert api(a.mint()).status_code == 200 and api(b.mint()).status_code == 200
    assert [len(i.discovery_requests()) for i in (a, b)] == [1, 1]
    assert [len(i.jwks_requests()) for i in (a, b)] == [1, 1]
    assert (_published(a.discovery_url), _published(b.discovery_url)) == first  # adopted, not republished
    _age(a.discovery_url, 300)  # past JWKS_CACHE_LIFESPAN: a new worker fetches its own and publishes it
    fleet()
    assert api(a.mint()).status_code == 200
    assert len(a.discovery_requests()) == 2 and _published(a.discovery_url)["generation"] == 2
