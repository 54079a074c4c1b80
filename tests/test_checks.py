"""System checks and settings validation: bad input gets a clear error naming the setting."""

from __future__ import annotations

import importlib
import ssl
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import simplejwt_patches
from simplejwt_patches.checks import check_disable, check_jwk_url, check_patches, check_settings, check_version
from simplejwt_patches.conf import build_options, get_options
from simplejwt_patches.pins import PINS


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def patches(**options: object) -> override_settings:
    return override_settings(SIMPLE_JWT_PATCHES=options)


def test_defaults_are_clean():
    with patches():
        assert check_settings() == []
        options = get_options()
    assert options.timeout == 5.0 and options.cache_lifespan == 300.0
    assert options.headers["User-Agent"].startswith("simplejwt-patches/")
    assert not options.headers["User-Agent"].startswith("Python-urllib")


@pytest.mark.parametrize(
    ("options", "check_id", "key"),
    [
        ({"JWKS_TIMEOUT": "5"}, "simplejwt_patches.E011", "JWKS_TIMEOUT"),
        ({"JWKS_TIMEOUT": -1}, "simplejwt_patches.E011", "JWKS_TIMEOUT"),
        ({"JWKS_CACHE_LIFESPAN": 0}, "simplejwt_patches.E011", "JWKS_CACHE_LIFESPAN"),
        ({"JWKS_HEADERS": ["User-Agent"]}, "simplejwt_patches.E012", "JWKS_HEADERS"),
        ({"JWKS_HEADERS": {"X-Key": 42}}, "simplejwt_patches.E012", "JWKS_HEADERS"),
        ({"JWKS_HEADERS": {"X-Key": "a\r\nInjected: yes"}}, "simplejwt_patches.E012", "JWKS_HEADERS"),
        ({"JWKS_SECRET_HEADERS": "X-Key"}, "simplejwt_patches.E011", "JWKS_SECRET_HEADERS"),
        ({"JWKS_CA_BUNDLE": "/nonexistent/ca.pem"}, "simplejwt_patches.E013", "JWKS_CA_BUNDLE"),
        ({"JWKS_SSL_CONTEXT": "tests.test_checks.no_such_factory"}, "simplejwt_patches.E014", "JWKS_SSL_CONTEXT"),
        ({"JWKS_SSL_CONTEXT": "tests.test_checks.not_a_context"}, "simplejwt_patches.E014", "JWKS_SSL_CONTEXT"),
        ({"JWKS_SSL_CONTEXT": 3}, "simplejwt_patches.E014", "JWKS_SSL_CONTEXT"),
        ({"JWKS_PROXY": "proxy:3128"}, "simplejwt_patches.E011", "JWKS_PROXY"),
        ({"JWKS_FOLLOW_REDIRECTS": "yes"}, "simplejwt_patches.E011", "JWKS_FOLLOW_REDIRECTS"),
        ({"JWKS_MAX_BYTES": 1.5}, "simplejwt_patches.E011", "JWKS_MAX_BYTES"),
        ({"UNKNOWN_VERSION": "ignore"}, "simplejwt_patches.E015", "UNKNOWN_VERSION"),
        ({"DISABLE": ["pyjwt.client.transprot"]}, "simplejwt_patches.E016", "DISABLE"),
        ({"DISABLE": "pyjwt.client.transport"}, "simplejwt_patches.E016", "DISABLE"),
        ({"JWKS_TIMOUT": 3}, "simplejwt_patches.W010", "JWKS_TIMOUT"),
    ],
)
def test_bad_setting_is_reported_naming_the_key(options, check_id, key):
    with patches(**options):
        messages = check_settings() + check_disable()
        get_options()  # never raises: the bad key falls back to its default
    assert check_id in ids(messages)
    message = next(m for m in messages if m.id == check_id)
    assert key in message.msg


def no_such_factory() -> ssl.SSLContext:
    raise RuntimeError("boom")


def not_a_context() -> object:
    return object()


def test_unreadable_ca_bundle(tmp_path: Path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with patches(JWKS_CA_BUNDLE=str(bad)):
        assert "simplejwt_patches.E013" in ids(check_settings())


def test_ca_bundle_and_context_together_is_an_error(tmp_path: Path):
    import trustme

    ca = trustme.CA()
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    with patches(JWKS_CA_BUNDLE=str(pem), JWKS_SSL_CONTEXT=ssl.create_default_context()):
        assert "simplejwt_patches.E017" in ids(check_settings())


def test_suggestions_for_typos():
    with patches(JWKS_HEADER={}):
        (message,) = check_settings()
    assert "JWKS_HEADERS" in message.hint


def test_not_a_dict():
    with override_settings(SIMPLE_JWT_PATCHES=["JWKS_TIMEOUT", 3]):
        assert ids(check_settings()) == ["simplejwt_patches.E010"]


def test_error_check_stops_manage_py_check():
    with patches(JWKS_TIMEOUT="soon"), pytest.raises(SystemCheckError, match="JWKS_TIMEOUT"):
        call_command("check")


def test_a_secret_header_value_is_never_echoed_by_checks():
    from tests.conftest import SECRET_HEADER_VALUE

    with patches(JWKS_HEADERS={"Authorization": SECRET_HEADER_VALUE + "\n"}):
        messages = check_settings()
    assert messages and all(SECRET_HEADER_VALUE not in (m.msg + (m.hint or "")) for m in messages)


@hsettings(max_examples=60, deadline=None)
@given(
    name=st.from_regex(r"\AX-[A-Za-z]{1,10}\Z"),
    value=st.text(min_size=0, max_size=30),
)
def test_header_values_with_cr_or_lf_are_never_sent(name: str, value: str):
    options = build_options({"JWKS_HEADERS": {name: value}, "JWKS_SECRET_HEADERS": [name]})
    if any(ord(c) > 0xFF or (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):  # CR/LF among them
        assert name not in options.headers
        assert any(p.id == "E012" for p in options.problems)
    else:
        assert options.headers[name] == value
        assert options.masked_headers()[name] == "***"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://idp.example.com/realms/x/protocol/openid-connect/certs", []),
        ("http://127.0.0.1:8080/certs", []),
        ("http://localhost/certs", []),
        ("http://[::1]/certs", []),
        ("http://idp.example.com/certs", ["simplejwt_patches.W020"]),
        ("ftp://idp.example.com/certs", ["simplejwt_patches.W020"]),
    ],
)
def test_jwk_url_must_be_https_except_loopback(url, expected):
    from django.conf import settings

    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "JWK_URL": url}):
        assert ids(check_jwk_url()) == expected


@pytest.fixture
def fake_release(tmp_path, monkeypatch):
    """Make importlib.metadata report SimpleJWT 9.9.9 (a real dist-info first on sys.path)."""
    dist = tmp_path / "djangorestframework_simplejwt-9.9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: djangorestframework-simplejwt\nVersion: 9.9.9\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    simplejwt_patches.revert()
    yield
    monkeypatch.undo()
    importlib.invalidate_caches()
    simplejwt_patches.revert()


def test_unknown_release_is_not_patched_and_warned(fake_release):
    with patches(UNKNOWN_VERSION="warn"):
        status = simplejwt_patches.apply()
        messages = check_version()
    assert status.simplejwt == "9.9.9"
    assert status.patch_set is None and status.fixers == ()
    assert "not pinned" in status.patch_set_reason
    (message,) = messages
    assert message.id == "simplejwt_patches.W001"
    assert "9.9.9" in message.msg and all(p.simplejwt in message.msg for p in PINS)


def test_unknown_release_error_policy(fake_release):
    with patches(UNKNOWN_VERSION="error"):
        status = simplejwt_patches.apply()
        assert ids(check_version()) == ["simplejwt_patches.E001"]
    assert status.fixers == ()


def test_unknown_release_latest_policy(fake_release):
    with patches(UNKNOWN_VERSION="latest"):
        status = simplejwt_patches.apply()
        assert ids(check_version()) == ["simplejwt_patches.W002"]
    assert status.patch_set == PINS[-1].simplejwt
    assert any(f.state == "applied" for f in status.fixers)


def test_pinned_release_has_no_version_warning():
    assert check_version() == []
    assert check_patches() == []


def test_disabling_a_fixer_another_requires_names_both():
    """E019: the transport requires the fixer that puts SimpleJWT's client under management."""
    with patches(DISABLE=["backend.verifying-key.jwks-errors"]):
        messages = [m for m in check_disable() if m.id == "simplejwt_patches.E019"]
    assert messages
    text = " ".join(m.msg for m in messages)
    assert "backend.verifying-key.jwks-errors" in text and "pyjwt.client.transport" in text
    dependents = ["pyjwt.client.transport", "pyjwt.client.key-source", "backend.decode.key-replaced"]
    with patches(DISABLE=["backend.verifying-key.jwks-errors", *dependents]):
        assert "simplejwt_patches.E019" not in ids(check_disable())


def test_disable_is_judged_against_the_whole_registry_on_any_release():
    """Defect 4 of issue 7: ids were checked against whatever had been registered when options were first read."""
    from simplejwt_patches.conf import reset_options

    reset_options()
    with patches(DISABLE=["token.init.force-verify", "backend.decode.chain-cause"]):
        status = simplejwt_patches.status()  # reading options first used to poison the cache
        assert "simplejwt_patches.E016" not in ids(check_disable())
        assert get_options().disable == frozenset({"token.init.force-verify", "backend.decode.chain-cause"})
    assert status is not None


def test_jwk_url_that_is_not_a_string():
    """simplejwt_patches.E030."""
    from django.conf import settings

    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "JWK_URL": ["https://sso.example.com/certs"]}):
        assert ids(check_jwk_url()) == ["simplejwt_patches.E030"]


def test_jwk_url_without_a_pyjwt_client(monkeypatch):
    """simplejwt_patches.W003: PyJWT 1.x has no PyJWKClient (capabilities are ours to fake, not the network)."""
    import dataclasses

    from simplejwt_patches import checks
    from simplejwt_patches.versions import pyjwt_caps

    caps = dataclasses.replace(pyjwt_caps(), has_client=False)
    monkeypatch.setattr(checks, "pyjwt_caps", lambda: caps)
    assert "simplejwt_patches.W003" in ids(check_jwk_url())


def test_a_skipped_patch_is_reported():
    """simplejwt_patches.W030: disabling a required fixer skips the fixers that need it, and says so."""
    with patches(DISABLE=["backend.verifying-key.jwks-errors"]):
        simplejwt_patches.revert()
        simplejwt_patches.apply()
        try:
            messages = [m for m in check_patches() if m.id == "simplejwt_patches.W030"]
        finally:
            simplejwt_patches.revert()
    simplejwt_patches.apply()
    assert any(
        "pyjwt.client.transport" in m.msg and "requires backend.verifying-key.jwks-errors" in m.msg for m in messages
    )
