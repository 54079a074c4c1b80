"""Signals for metrics, and the opt-in error detail in the 401 body."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches import signals
from tests.helpers import expected_body
from tests.idp import Mode, generate_rsa_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    got: list[tuple[str, dict]] = []

    def make(name: str):
        def receiver(sender, **kwargs):
            got.append((name, kwargs))

        return receiver

    receivers = {name: make(name) for name in ("jwks_fetched", "jwks_fetch_failed", "token_rejected")}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, weak=False)
    yield got
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_fetch_signal(api, idp, received):
    assert api(idp.mint()).status_code == 200
    ((_, kwargs),) = [r for r in received if r[0] == "jwks_fetched"]
    assert kwargs["status"] == 200 and idp.active_kid in kwargs["kids"] and kwargs["url"] == idp.jwks_url
    assert kwargs["duration_ms"] >= 0 and kwargs["size"] > 0


@pytest.mark.parametrize(
    ("make", "mode", "code"),
    [
        (lambda idp: idp.mint(), Mode.FORBIDDEN, "jwks_unavailable"),
        (lambda idp: idp.mint(), Mode.EMPTY, "jwks_invalid"),
        (lambda idp: idp.mint(expires_in=-60), Mode.OK, "expired"),
        (lambda idp: idp.mint(key=generate_rsa_key()), Mode.OK, "bad_signature"),
        (lambda idp: idp.mint(kid="nope", key=generate_rsa_key()), Mode.OK, "unknown_kid"),
        (lambda idp: idp.mint({"aud": "x"}), Mode.OK, "bad_audience"),
        (lambda idp: idp.mint({"iss": "https://elsewhere/realms/acme"}), Mode.OK, "bad_issuer"),
        (lambda idp: idp.mint({"typ": "ID"}), Mode.OK, "wrong_type"),
    ],
)
def test_token_rejected_signal_reason_codes(api, idp, received, make, mode, code):
    idp.mode = mode
    token = make(idp)
    assert api(token).status_code == 401
    ((_, kwargs),) = [r for r in received if r[0] == "token_rejected"]
    assert kwargs["reason_code"] == code, kwargs
    assert kwargs["reason_code"] in signals.REASON_CODES
    assert kwargs["token_classes"] == ["BearerAccessToken"]
    assert kwargs["kid"] == kwargs["fingerprint"]["kid"]
    assert token not in repr(kwargs) and token.split(".")[2] not in repr(kwargs)
    if mode is Mode.FORBIDDEN:
        (failed,) = [k for n, k in received if n == "jwks_fetch_failed"]
        assert failed["status"] == 403 and "403" in failed["reason"]


def test_a_raising_receiver_does_not_break_authentication(api, idp, caplog):
    def boom(sender, **kwargs):
        raise RuntimeError("metrics backend down")

    signals.token_rejected.connect(boom, weak=False)
    signals.jwks_fetched.connect(boom, weak=False)
    try:
        assert api(idp.mint()).status_code == 200
        assert api(idp.mint(expires_in=-60)).status_code == 401
    finally:
        signals.token_rejected.disconnect(boom)
        signals.jwks_fetched.disconnect(boom)
    assert any("metrics backend down" in r.getMessage() for r in caplog.records)


def test_error_detail_is_off_by_default_in_production(api, idp):
    idp.mode = Mode.FORBIDDEN
    with override_settings(DEBUG=False):
        assert api(idp.mint()).json() == expected_body()


@pytest.mark.parametrize("setting", [{"EXPOSE_ERROR_DETAIL": True}, "DEBUG"])
def test_error_detail_adds_the_short_reason(api, idp, setting):
    idp.mode = Mode.FORBIDDEN
    token = idp.mint()
    ctx = override_settings(DEBUG=True) if setting == "DEBUG" else override_settings(SIMPLE_JWT_PATCHES=setting)
    with ctx:
        response = api(token)
    assert response.status_code == 401
    body = response.json()
    expected = expected_body()
    expected["messages"][0]["reason"] = "the identity provider's key set endpoint answered HTTP 403"
    assert body == expected
    assert token not in response.content.decode()


def test_client_visible_reasons_come_only_from_the_fixed_vocabulary(api, idp, fresh_backend):
    """Defect 5 of issue 7: reasons fell back to str(exception), which names internal hosts and ports."""
    from simplejwt_patches.failures import CATEGORIES, TOKEN_REASONS
    from tests.idp import closed_port_url

    url = closed_port_url()
    port = url.split(":")[2].split("/")[0]
    vocabulary = {c.text.format(status=None) for c in CATEGORIES.values()} | set(TOKEN_REASONS.values())
    with override_settings(DEBUG=True, SIMPLE_JWT={**settings.SIMPLE_JWT, "JWK_URL": url}):
        fresh_backend()
        response = api(idp.mint())
    assert response.status_code == 401
    (message,) = response.json()["messages"]
    assert message["reason"] in vocabulary, message["reason"]
    assert port not in message["reason"] and "127.0.0.1" not in message["reason"]
    assert "refused" in message["reason"]


def test_error_detail_can_be_forced_off_under_debug(api, idp):
    idp.mode = Mode.FORBIDDEN
    with override_settings(DEBUG=True, SIMPLE_JWT_PATCHES={"EXPOSE_ERROR_DETAIL": False}):
        assert api(idp.mint()).json() == expected_body()


@pytest.mark.fixer("pyjwt.client.key-source")
def test_fetch_signal_after_304_reports_the_cached_set(api, idp, received):
    """Issue 16 point 13: a ``304 Not Modified`` revalidation reported ``size=0, kids=[]``."""
    from freezegun import freeze_time

    idp.etags = True
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_REFRESH_AHEAD": 0, "JWKS_CACHE_LIFESPAN": 60}):
        with freeze_time() as clock:
            assert api(idp.mint()).status_code == 200
            clock.tick(61)
            assert api(idp.mint()).status_code == 200  # stale-while-revalidate: the refresh runs in the background
            from rest_framework_simplejwt import state

            from simplejwt_patches.clients import state_of

            assert state_of(state.token_backend.jwks_client).key_source().wait_idle(5)
    assert [r.status for r in idp.jwks_requests()] == [200, 304]
    first, revalidated = (kwargs for name, kwargs in received if name == "jwks_fetched")
    assert first["status"] == 200 and revalidated["status"] == 304
    assert revalidated["kids"] == first["kids"] and idp.active_kid in revalidated["kids"]
    assert revalidated["size"] == first["size"] > 0
