"""Small helpers shared by the tests (no fixtures here)."""

from __future__ import annotations

import json
from typing import Any

from packaging.version import Version

from simplejwt_patches.diagnostics import causes
from simplejwt_patches.versions import distribution_version, pyjwt_caps, simplejwt_version

SIMPLEJWT = simplejwt_version() or Version("0")
PYJWT = pyjwt_caps().version or Version("0")
#: The message SimpleJWT's TokenBackend/Token use for an invalid token on this release.
INVALID_MESSAGE = "Token is invalid" if SIMPLEJWT >= Version("5.5.0") else "Token is invalid or expired"
#: What a wall-clock measurement in a test may take beyond the bound it checks (``JWKS_TIMEOUT`` +
#: ``deadline.MARGIN``) for reasons that are the machine's, not the package's: in CI three sessions share
#: two cores, and a thread that is due may wait this long for one (0.28 s was seen past the bound in the
#: tests-5.2.2 cell). Every bound that adds it stays below what its defect takes by at least as much
#: again, or the test's status assertions catch that defect on their own.
SCHEDULING = 0.4


def doctor(
    *args: str, token: str | None = None, stdin: str | None = None, monkeypatch: Any = None, redacted: bool = True
) -> tuple[int, str]:
    """``manage.py simplejwt_doctor`` in-process: (exit code, output).

    ``token`` goes in ``--token``, ``stdin`` is read through ``-``. Any exception but SystemExit
    fails the test; so does an exit code other than 0/1 or a traceback in the output. With
    ``redacted``, the (well-formed) token and its signature must not appear in the output.
    """
    import io
    import sys

    from django.core.management import call_command

    out = io.StringIO()
    argv = list(args) + (["--token", token] if token is not None else [])
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8", "surrogatepass"))))
        argv.append("-")
    try:
        call_command("simplejwt_doctor", *argv, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    text = out.getvalue()
    assert code in (0, 1)
    assert "Traceback" not in text
    if redacted and token:
        assert token not in text and token.split(".")[2] not in text
    return code, text


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first."""
    return list(causes(exc))


def chain_names(exc: BaseException) -> list[str]:
    return [type(e).__name__ for e in chain(exc)]


def find_in_chain(exc: BaseException, kind: type[BaseException]) -> Any:
    for e in chain(exc):
        if isinstance(e, kind):
            return e
    raise AssertionError(f"no {kind.__name__} in {chain_names(exc)}")


def expected_body() -> dict[str, Any]:
    """The 401 body upstream writes for a rejected BearerAccessToken (unchanged by the shim)."""
    return {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "BearerAccessToken", "token_type": "Bearer", "message": INVALID_MESSAGE}],
    }


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_KEYS: dict[bytes, Any] = {}


def craft(idp: Any, header: str | None = None, claims: str | None = None) -> str:
    """A token whose header and claims are the given raw JSON texts, validly signed with the IdP's key.

    Raw text, so that hostile JSON (NaN, Infinity, 1e999, deep nesting) reaches the parser as sent.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from tests.conftest import register_sensitive_token

    if header is None:
        header = json.dumps({"alg": "RS256", "typ": "JWT", "kid": idp.active_kid})
    if claims is None:
        claims = json.dumps(json.loads(_segment(idp.mint(), 1)))
    signing_input = f"{_b64(header.encode())}.{_b64(claims.encode())}"
    pem = idp.signing_key_pem()
    key = _KEYS.get(pem)
    if key is None:
        key = _KEYS[pem] = serialization.load_pem_private_key(pem, password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    return register_sensitive_token(f"{signing_input}.{_b64(signature)}")


def _segment(token: str, index: int) -> str:
    import base64

    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def with_claims(idp: Any, **raw: str) -> str:
    """The IdP's normal claims with some replaced by raw JSON texts (``exp="1e999"``)."""
    base = json.loads(_segment(idp.mint(), 1))
    text = json.dumps({k: v for k, v in base.items() if k not in raw})[:-1]
    extra = ", ".join(f"{json.dumps(k)}: {v}" for k, v in raw.items())
    return craft(idp, claims=text + (", " if extra else "") + extra + "}")


def use_simple_jwt(monkeypatch: Any, **overrides: Any) -> None:
    """Run with other SIMPLE_JWT values everywhere SimpleJWT reads them: its ``authentication`` and
    ``tokens`` modules bind ``api_settings`` at import, and only ``rest_framework_simplejwt.settings``
    is rebound by ``override_settings`` (undone by ``monkeypatch``)."""
    from django.conf import settings
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt import settings as sj_settings

    new = sj_settings.APISettings(
        {**settings.SIMPLE_JWT, **overrides}, sj_settings.DEFAULTS, sj_settings.IMPORT_STRINGS
    )
    for module in (authentication, tokens, sj_settings):
        monkeypatch.setattr(module, "api_settings", new)


def raw_redis(alias: str = "jwks") -> tuple[Any, Any]:
    """``(client, name)`` of a RedisCache alias: its raw redis-py client (bytes in, bytes out, nothing
    unpickled) and ``name(key)``, the full key Django makes (prefix, version) -- what the package uses."""
    from django.core.cache import caches

    cache = caches[alias]
    return cache._cache.get_client(None, write=True), cache.make_key


def in_own_cell() -> bool:
    """Whether this is the installed SimpleJWT release's own matrix cell: its pin's PyJWT and Django.

    The ``pyjwt-X`` cells run the newest release again with another PyJWT, and ``django6`` with another
    Django; a local venv made by ``nox -s tests-X`` is the release's own cell too.
    """
    from simplejwt_patches.pins import find_pin

    installed = simplejwt_version()
    pin = find_pin(installed) if installed is not None else None
    pyjwt = distribution_version("PyJWT")
    return (
        pin is not None
        and pyjwt is not None
        and pyjwt == pyjwt.__class__(pin.env.pyjwt)
        and str(distribution_version("Django")) == pin.env.django
    )


def in_newest_cell() -> bool:
    """Whether this is the newest pin's own matrix cell (its SimpleJWT, PyJWT and Django)."""
    from simplejwt_patches.pins import latest_pin

    return simplejwt_version() == latest_pin().version and in_own_cell()


#: For tests of a mechanism the pins do not change (a subprocess's stdin, a built release): the newest
#: pin's cell runs them, every other cell skips them (CI's time is the matrix's).
def newest_cell_only(test: Any) -> Any:
    import pytest

    from simplejwt_patches.pins import latest_pin

    return pytest.mark.skipif(not in_newest_cell(), reason=f"runs in the tests-{latest_pin().simplejwt} cell only")(
        test
    )


def own_cell_only() -> Any:
    """The mark for tests of SimpleJWT's code as a release ships it (its modules' import, their wrapping):
    every ``tests-X`` cell runs them; the ``pyjwt-X`` and ``django6`` cells, which run the newest release's
    code again under another PyJWT or Django, skip them."""
    import pytest

    return pytest.mark.skipif(not in_own_cell(), reason="SimpleJWT's own code: runs in each release's own cell")
