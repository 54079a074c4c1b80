"""``status()`` content, ``DISABLE``, and what is logged (and never logged)."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

import simplejwt_patches
from simplejwt_patches.pins import find_pin
from simplejwt_patches.versions import distribution_version
from tests.conftest import DETECTOR, register_sensitive_token
from tests.idp import Mode

pytestmark = pytest.mark.django_db


def test_status_names_versions_patch_set_and_each_fixer():
    status = simplejwt_patches.status()
    assert status.applied
    assert status.simplejwt == str(distribution_version("djangorestframework-simplejwt"))
    assert status.pyjwt == str(distribution_version("PyJWT"))
    assert status.django == str(distribution_version("Django"))
    pin = find_pin(status.simplejwt)
    assert status.patch_set == pin.simplejwt
    assert [f.id for f in status.fixers] == list(pin.fixers)
    for f in status.fixers:
        assert f.state == "applied", f
        assert f.reason and f.summary
    data = status.as_dict()
    assert data["options"]["headers"]["User-Agent"].startswith("simplejwt-patches/")


def test_disable_skips_a_fixer_and_its_behaviour(api, idp):
    simplejwt_patches.revert()
    with override_settings(SIMPLE_JWT_PATCHES={"DISABLE": ["pyjwt.client.transport", "pyjwt.client.key-source"]}):
        status = simplejwt_patches.apply()
        state = {f.id: f for f in status.fixers}["pyjwt.client.transport"]
        assert state.state == "disabled" and "DISABLE" in state.reason
        idp.mode = Mode.WAF
        assert api(idp.mint()).status_code == 401  # urllib's User-Agent again; still a 401, not a 500
    simplejwt_patches.revert()


def test_fetch_is_logged_at_debug_with_status_duration_and_kids(api, idp, caplog):
    with caplog.at_level(logging.DEBUG, "simplejwt_patches"):
        assert api(idp.mint()).status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if "JWKS fetched" in r.getMessage()]
    assert idp.jwks_url in line and "HTTP 200" in line and " ms" in line
    assert idp.active_kid in line and "RS256/sig" in line and "cache=miss" in line
    assert "User-Agent" in line


def test_rejected_token_is_logged_with_fingerprint_not_token(api, idp, caplog):
    idp.mode = Mode.FORBIDDEN
    token = idp.mint()
    with caplog.at_level(logging.DEBUG, "simplejwt_patches"):
        assert api(token).status_code == 401
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("token rejected")]
    assert "BearerAccessToken(Bearer)" in line
    assert "HTTPError" in line and "403" in line
    for claim in ("kid", "alg", "iss", "aud", "exp", "jti", "sha256"):
        assert f"'{claim}'" in line
    assert idp.active_kid in line
    assert token not in line and token.split(".")[2] not in line


def test_leak_detector_catches_a_logged_token():
    token = register_sensitive_token("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFrIn0.c2lnbmF0dXJlLXZhbHVlLXNlY3JldA")
    start = len(DETECTOR.records)
    logging.getLogger("simplejwt_patches.test").warning("oops %s", token.split(".")[2])
    try:
        assert DETECTOR.leaks(start), "the detector must flag a logged signature"
    finally:
        del DETECTOR.records[start:]  # keep the per-test leak check green for this deliberate leak


def test_fetch_failure_warning_names_status_and_hint(api, idp, caplog):
    idp.mode = Mode.WAF
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_HEADERS": {"User-Agent": "Python-urllib/3.12"}}):
        with caplog.at_level(logging.WARNING, "simplejwt_patches"):
            assert api(idp.mint()).status_code == 401
    (line,) = [r.getMessage() for r in caplog.records if r.name == "simplejwt_patches.jwks"]
    assert "HTTP 403 Forbidden" in line and "JWKS_HEADERS" in line


def test_user_supplied_header_values_are_masked_unless_harmless(api, idp, caplog):
    """Defect 2 of issue 7: X-Api-Key's value went into every failed-fetch WARNING, status() and the doctor."""
    import io

    from django.core.management import call_command
    from django.test import override_settings

    from tests.conftest import SENSITIVE
    from tests.idp import Mode

    secret = "sjp-x-api-key-value-5e1d"
    SENSITIVE.add(secret)  # the leak detector fails the test if any record quotes it
    headers = {"X-Api-Key": secret, "User-Agent": "acme-api/1.0", "Accept-Language": "en"}
    with override_settings(SIMPLE_JWT_PATCHES={"JWKS_HEADERS": headers}):
        idp.mode = Mode.FORBIDDEN
        with caplog.at_level(logging.WARNING, logger="simplejwt_patches"):
            assert api(idp.mint()).status_code == 401
        shown = simplejwt_patches.status().options["headers"]
        out = io.StringIO()
        try:
            call_command("simplejwt_doctor", "--json", stdout=out)
        except SystemExit:
            pass
    assert idp.jwks_requests()[-1].headers["X-Api-Key"] == secret  # sent as configured
    assert shown["X-Api-Key"] == "***" and shown["User-Agent"] == "acme-api/1.0" and shown["Accept-Language"] == "en"
    assert secret not in out.getvalue() and "X-Api-Key" in out.getvalue()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(secret not in w for w in warnings)


@pytest.mark.parametrize(
    "name", ["djangorestframework-simplejwt", "PyJWT", "Django", "djangorestframework", "wrapt", "packaging"]
)
def test_distribution_version_reads_what_importlib_metadata_reads(name):
    """The header-only read (startup budget) agrees with ``importlib.metadata.version``."""
    from importlib import metadata

    from packaging.version import Version

    assert distribution_version(name) == Version(metadata.version(name))


def test_distribution_version_of_a_missing_distribution_is_none():
    assert distribution_version("no-such-distribution-sjp") is None


def test_status_as_dict_is_strict_json_whatever_the_settings(api, idp):
    """``options`` held a frozenset with AUTHORIZED_PARTIES (and objects JSON lacks): json.dumps raised."""
    import json
    import ssl

    simplejwt_patches.revert()
    settings = {
        "AUTHORIZED_PARTIES": ["web-app", "mobile-app"],
        "JWKS_SSL_CONTEXT": ssl.create_default_context(),
        "JWKS_HEADERS": {"X-Api-Key": "s3cret-value"},
    }
    with override_settings(SIMPLE_JWT_PATCHES=settings):
        status = simplejwt_patches.apply()
        text = json.dumps(status.as_dict(), allow_nan=False)  # strict: no default=, no NaN
    data = json.loads(text)
    assert data["options"]["authorized_parties"] == ["mobile-app", "web-app"]
    assert "s3cret-value" not in text
