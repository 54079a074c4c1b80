"""System checks of the trusted issuers (``ISSUERS``) and of having any key source at all.

* ``E061``: an asymmetric ``ALGORITHM`` with no key source (no ``VERIFYING_KEY``, no ``JWK_URL``, no
  ``ISSUERS``): without it, every token is an HTTP 500 ("Could not parse the provided public key").
* ``W061``: ``ISSUERS`` is set and ``JWK_URL`` too, but ``SIMPLE_JWT["ISSUER"]`` is not, so that key
  set never verifies a token (a trusted entry needs its issuer).
* ``W060``: an ``ISSUERS`` URL that is fetched (its ``JWK_URL``, else its discovery URL) is plain
  http to a host that is not loopback: the rule (``W020``) of ``SIMPLE_JWT["JWK_URL"]``.
* ``E062``: ``ISSUERS`` is set but cannot be enforced: an ``HS*`` ``ALGORITHM`` (the realms' keys
  are never used) or the ``backend.decode.issuer-selection`` fixer is not applied.
* ``check --deploy``: every realm's discovery document and key set fetched as authentication would;
  a failing realm is named with its URL, under the failure's own id (``E101``-``E105``, ``E107``,
  ``E108``: a discovered ``jwks_uri`` that is not http(s) or downgrades https to http).

The ids are declared in :data:`simplejwt_patches.checks.CHECK_IDS` (and, for the deploy ids, the
failure categories); :mod:`simplejwt_patches.checks` imports this module so they are registered.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .conf import SETTING, get_options, jwk_url_problems
from .discovery import Discovery
from .failures import CATEGORIES, JWKSFailure
from .issuer_settings import shown_issuer

__all__ = ["check_issuers", "check_key_source", "check_realms_live"]

TAG = "simplejwt_patches"
FIXER = "backend.decode.issuer-selection"


def _simple_jwt() -> dict[str, Any]:
    raw = getattr(settings, "SIMPLE_JWT", None) or {}
    return raw if isinstance(raw, dict) else {}


def _asymmetric(algorithm: Any) -> bool:
    return isinstance(algorithm, str) and not algorithm.upper().startswith("HS") and algorithm.lower() != "none"


@checks.register(TAG, checks.Tags.security)
def check_key_source(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E061: an asymmetric ``ALGORITHM`` and nothing to verify tokens with."""
    simple_jwt = _simple_jwt()
    algorithm = simple_jwt.get("ALGORITHM", "HS256")
    if not _asymmetric(algorithm) or simple_jwt.get("VERIFYING_KEY") or simple_jwt.get("JWK_URL"):
        return []
    if get_options().issuers:
        return []
    return [
        checks.Error(
            f"SIMPLE_JWT['ALGORITHM'] is {algorithm[:20]!r} but there is no key to verify tokens with: no "
            f"VERIFYING_KEY, no JWK_URL and no {SETTING}['ISSUERS']; every token would be an HTTP 500 (\"Could "
            'not parse the provided public key").',
            hint=f"Find the keys by OpenID discovery: {SETTING}['ISSUERS'] = {{'<the iss of your tokens>': {{}}}} "
            "(add 'DISCOVERY_URL' when this host reaches the IdP on an internal name); or set SIMPLE_JWT['JWK_URL'] "
            "to the IdP's JWKS URL (with ISSUER), or VERIFYING_KEY to its PEM public key.",
            obj="SIMPLE_JWT",
            id="simplejwt_patches.E061",
        )
    ]


def _selection_state() -> str | None:
    """Why the selection fixer is not applied (``None`` when it is, or nothing was applied yet)."""
    from .patcher import is_applied, status

    if not is_applied():
        return None
    for fx in status().fixers:
        if fx.id == FIXER:
            return None if fx.state == "applied" else f"fixer {FIXER} is {fx.state}: {fx.reason}"
    return f"fixer {FIXER} is not in the applied patch set"


def _plain_http(issuers: dict[str, Any]) -> list[checks.CheckMessage]:
    """W060: each realm whose fetched URL is http to a host other than loopback (``W020``'s rule)."""
    from .diagnostics import safe_url

    messages: list[checks.CheckMessage] = []
    for issuer, entry in issuers.items():
        key, url = ("JWK_URL", entry.jwk_url) if entry.jwk_url else ("DISCOVERY_URL", entry.discovery_url)
        if any(p.id == "W020" for p in jwk_url_problems(url)):
            messages.append(
                checks.Warning(
                    f"{SETTING}['ISSUERS'][{shown_issuer(issuer)}]: its {key} is plain http ({safe_url(url)}) to a "
                    "host that is not loopback: "
                    + ("signing keys" if entry.jwk_url else "the discovery document naming its keys")
                    + " fetched without TLS can be replaced in transit.",
                    hint=f"Use the identity provider's https:// URL for that issuer's {key}.",
                    obj=SETTING,
                    id="simplejwt_patches.W060",
                )
            )
    return messages


@checks.register(TAG, checks.Tags.security)
def check_issuers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W060/W061/E062: plain http realms; ``ISSUERS`` next to a ``JWK_URL`` without ``ISSUER``; not enforceable."""
    issuers = get_options().issuers
    if issuers is None:
        return []
    simple_jwt = _simple_jwt()
    messages: list[checks.CheckMessage] = _plain_http(issuers)
    if simple_jwt.get("JWK_URL") and not simple_jwt.get("ISSUER"):
        messages.append(
            checks.Warning(
                f"{SETTING}['ISSUERS'] is set and SIMPLE_JWT['JWK_URL'] too, but SIMPLE_JWT['ISSUER'] is not: with "
                "ISSUERS every token needs a trusted iss, so that key set verifies no token.",
                hint="Set SIMPLE_JWT['ISSUER'] to the iss of its tokens (it becomes one more trusted issuer), or "
                "move the JWK_URL into ISSUERS under that issuer.",
                obj="SIMPLE_JWT",
                id="simplejwt_patches.W061",
            )
        )
    algorithm = simple_jwt.get("ALGORITHM", "HS256")
    why = _selection_state()
    if not _asymmetric(algorithm):
        why = f"SIMPLE_JWT['ALGORITHM'] is {str(algorithm)[:20]!r}: HMAC tokens are verified with SIGNING_KEY"
    if why:
        messages.append(
            checks.Error(
                f"{SETTING}['ISSUERS'] is set but not enforced the way it reads: {why}.",
                hint="Use the IdP's signing algorithm (e.g. RS256) and do not DISABLE "
                f"{FIXER} (the rule that chooses the realm by the token's iss).",
                obj=SETTING,
                id="simplejwt_patches.E062",
            )
        )
    return messages


def _failed(issuer: str, what: str, url: str, failure_kind: str | None, detail: str) -> checks.CheckMessage:
    category = CATEGORIES.get(failure_kind or "")
    check_id = category.check_id if category and category.check_id else "E105"
    text = category.text if category else "has no signing key for SIMPLE_JWT['ALGORITHM']"
    return checks.Error(
        f"{SETTING}['ISSUERS'][{shown_issuer(issuer)}]: {what} {url}: {text}: {detail}",
        hint=category.next_step if category else "Set SIMPLE_JWT['ALGORITHM'] to the IdP's signing algorithm.",
        obj=SETTING,
        id=f"simplejwt_patches.{check_id}",
    )


@checks.register(TAG, deploy=True)
def check_realms_live(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E101-E105, E107 (``check --deploy`` only): each realm's discovery document and key set, fetched."""
    from .diagnostics import safe_url
    from .doctor.probe import probe_jwks

    options = get_options()
    if not options.issuers:
        return []
    algorithm = _simple_jwt().get("ALGORITHM", "HS256")
    messages: list[checks.CheckMessage] = []
    for issuer, entry in options.issuers.items():
        url = entry.jwk_url
        if url is None:
            try:
                url = Discovery(issuer, entry.discovery_url).jwks_uri(options)
            except JWKSFailure as failure:
                shown = safe_url(entry.discovery_url)
                messages.append(_failed(issuer, "discovery document", shown, failure.kind, failure.detail))
                continue
        probe = probe_jwks(url, algorithm, options)
        if not probe.ok and probe.problem:
            detail = (probe.error or "") + (f" (Location: {probe.redirect_to})" if probe.redirect_to else "")
            messages.append(_failed(issuer, "JWK_URL", probe.url, probe.problem, detail))
    return messages
