"""Django system checks (stable ids ``simplejwt_patches.<id>``, documented in the README).

========  ===============================================================================
id        meaning
========  ===============================================================================
E001      SimpleJWT release not pinned and ``UNKNOWN_VERSION = "error"``
W001      SimpleJWT release not pinned: nothing patched (``UNKNOWN_VERSION = "warn"``)
W002      SimpleJWT release not pinned: the newest patch set applied (``"latest"``)
W003      the installed PyJWT has no ``PyJWKClient`` while ``JWK_URL`` is set
E010      ``SIMPLE_JWT_PATCHES`` is not a dict
W010      unknown key in ``SIMPLE_JWT_PATCHES``
E011      a setting has the wrong type or value
E012      a ``JWKS_HEADERS`` entry contains CR/LF (header injection)
E013      ``JWKS_CA_BUNDLE`` cannot be loaded
E014      ``JWKS_SSL_CONTEXT`` factory failed or returned something else
E015      ``UNKNOWN_VERSION`` is not ``proven``/``warn``/``error``/``latest``
E016      ``DISABLE`` names an unknown patch id
E017      both ``JWKS_CA_BUNDLE`` and ``JWKS_SSL_CONTEXT`` are set
W020      ``SIMPLE_JWT['JWK_URL']`` is not https (loopback excepted)
E030      ``SIMPLE_JWT['JWK_URL']`` is not a string
W030      a patch was skipped or failed because the upstream attribute is missing or changed
W031      a patch was skipped: the SimpleJWT code it wraps differs from the code proven for it
W032      source of SimpleJWT not available: fingerprints not checked, fell back to the version rule
========  ===============================================================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .catalog import REGISTRY
from .conf import SETTING, Problem, get_options, jwk_url_problems
from .pins import PINS
from .versions import pyjwt_caps, simplejwt_version

__all__ = ["check_disable", "check_fingerprints", "check_jwk_url", "check_patches", "check_settings", "check_version"]

TAG = "simplejwt_patches"


def _message(problem: Problem) -> checks.CheckMessage:
    cls = checks.Error if problem.id.startswith("E") else checks.Warning
    return cls(problem.msg, hint=problem.hint, id=f"simplejwt_patches.{problem.id}", obj=SETTING)


@checks.register(TAG, checks.Tags.compatibility)
def check_version(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W001/E001/W002: the installed SimpleJWT release is not in the pin table."""
    from .pins import find_pin

    version = simplejwt_version()
    if version is None or find_pin(version) is not None:
        return []
    known = ", ".join(p.simplejwt for p in PINS)
    policy = get_options().unknown_version
    if policy == "proven":  # each fixer is proven by fingerprint or reported by W031/W032
        return []
    text = f"djangorestframework-simplejwt {version} is not a pinned release (known: {known})"
    hint = (
        "Upgrade simplejwt-patches, pin a known SimpleJWT release, or set "
        f"{SETTING}['UNKNOWN_VERSION'] to 'latest' to apply the newest patch set at your own risk."
    )
    if policy == "error":
        return [
            checks.Error(
                text + "; refusing to start (UNKNOWN_VERSION='error').", hint=hint, id="simplejwt_patches.E001"
            )
        ]
    if policy == "latest":
        return [
            checks.Warning(
                text + f"; the patch set of {max(PINS, key=lambda p: p.version).simplejwt} was applied "
                "(UNKNOWN_VERSION='latest').",
                id="simplejwt_patches.W002",
            )
        ]
    return [checks.Warning(text + "; it was NOT patched.", hint=hint, id="simplejwt_patches.W001")]


@checks.register(TAG)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E01x/W010: ``SIMPLE_JWT_PATCHES`` validation problems, each naming its key."""
    return [_message(p) for p in get_options().problems]


@checks.register(TAG)
def check_disable(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E016/E019: ``DISABLE`` names only known fixers, and none another enabled fixer requires.

    Checked against the whole registry, whatever SimpleJWT release is installed.
    """
    import difflib

    disabled = get_options().disable
    known = REGISTRY.ids()
    messages: list[checks.CheckMessage] = []
    for fixer_id in sorted(disabled):
        if fixer_id not in REGISTRY:
            close = difflib.get_close_matches(fixer_id, known, n=1)
            messages.append(
                checks.Error(
                    f"{SETTING}['DISABLE']: unknown patch id {fixer_id[:100]!r}.",
                    hint=f"Did you mean {close[0]!r}?" if close else f"Known ids: {', '.join(known)}.",
                    obj=SETTING,
                    id="simplejwt_patches.E016",
                )
            )
            continue
        for dependent in REGISTRY.required_by(fixer_id):
            if dependent not in disabled:
                messages.append(
                    checks.Error(
                        f"{SETTING}['DISABLE'] disables {fixer_id}, which {dependent} requires: {dependent} is not "
                        "applied either.",
                        hint=f"Also disable {dependent!r}, or stop disabling {fixer_id!r}.",
                        obj=SETTING,
                        id="simplejwt_patches.E019",
                    )
                )
    return messages


@checks.register(TAG, checks.Tags.security)
def check_jwk_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W020/E030/W003: ``SIMPLE_JWT['JWK_URL']`` is usable and safe."""
    simple_jwt = getattr(settings, "SIMPLE_JWT", None) or {}
    jwk_url = simple_jwt.get("JWK_URL") if isinstance(simple_jwt, dict) else None
    messages = [_message(p) for p in jwk_url_problems(jwk_url)]
    if jwk_url and not pyjwt_caps().has_client:
        messages.append(
            checks.Warning(
                f"SIMPLE_JWT['JWK_URL'] is set but PyJWT {pyjwt_caps().version} has no PyJWKClient.",
                hint="Install PyJWT>=2.0 (pip install 'pyjwt[crypto]>=2').",
                id="simplejwt_patches.W003",
            )
        )
    for message in messages:
        message.obj = "SIMPLE_JWT"
    return messages


@checks.register(TAG, checks.Tags.compatibility)
def check_patches(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W030: a pinned patch could not be applied (upstream attribute missing or changed)."""
    from .patcher import selection, status

    chosen = selection()
    changed = {c.fixer_id for c in chosen.changed} if chosen else set()  # reported by W031
    return [
        checks.Warning(
            f"patch {f.id} was {f.state}: {f.reason}",
            hint="SimpleJWT or PyJWT differs from the release this patch set was proven on; "
            "report it with the output of simplejwt_patches.status().",
            id="simplejwt_patches.W030",
        )
        for f in status().fixers
        if f.state in ("skipped", "failed") and f.id not in changed
    ]


@checks.register(TAG, checks.Tags.compatibility)
def check_fingerprints(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W031/W032: SimpleJWT code differs from the code a fixer was proven on, or cannot be read."""
    from .patcher import selection

    chosen = selection()
    if chosen is None:
        return []
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            f"patch {c.fixer_id} was skipped: {c.reason}.",
            hint="The SimpleJWT code this patch wraps is not the code it was proven on (a new release, a fork or a "
            "local edit). Pin the release with `make pin VERSION=X` once our suite passes on it.",
            id="simplejwt_patches.W031",
        )
        for c in chosen.changed
    ]
    if chosen.source_unavailable:
        messages.append(
            checks.Warning(
                f"SimpleJWT {chosen.source_unavailable}.",
                hint="Install SimpleJWT with its .py sources so patches can be proven by fingerprint.",
                id="simplejwt_patches.W032",
            )
        )
    return messages


_PROBE_IDS = {
    "unreachable": ("E101", "is unreachable"),
    "status": ("E102", "answered a non-200 status"),
    "redirect": ("E103", "redirects"),
    "malformed": ("E104", "returned a body that is not a JSON key set"),
    "empty": ("E104", "returned an empty key set"),
    "no_key_for_algorithm": ("E105", "has no signing key for SIMPLE_JWT['ALGORITHM']"),
}


@checks.register(TAG, deploy=True)
def check_jwks_live(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E101-E105/W106 (``check --deploy`` only): fetch ``JWK_URL`` as authentication would."""
    from .doctor import discovery_issuer, probe_jwks

    simple_jwt = getattr(settings, "SIMPLE_JWT", None) or {}
    jwk_url = simple_jwt.get("JWK_URL") if isinstance(simple_jwt, dict) else None
    if not jwk_url or not isinstance(jwk_url, str):
        return []
    from rest_framework_simplejwt import settings as sj_settings

    api = sj_settings.api_settings
    probe = probe_jwks(jwk_url, api.ALGORITHM)
    messages: list[checks.CheckMessage] = []
    if not probe.ok and probe.problem:
        check_id, what = _PROBE_IDS[probe.problem]
        detail = probe.error or ""
        if probe.redirect_to:
            detail += f" (Location: {probe.redirect_to})"
        messages.append(
            checks.Error(
                f"JWK_URL {probe.url} {what}: {detail}",
                hint="Run `manage.py simplejwt_doctor` for details and fixes.",
                obj="SIMPLE_JWT",
                id=f"simplejwt_patches.{check_id}",
            )
        )
    if api.ISSUER:
        found = discovery_issuer(jwk_url, api.ISSUER)
        if found is not None and found[1] != api.ISSUER:
            messages.append(
                checks.Warning(
                    f"the discovery document at {found[0]} says issuer {found[1]!r} but SIMPLE_JWT['ISSUER'] is "
                    f"{api.ISSUER!r}: every token will fail the iss check.",
                    hint="Keycloak's issuer follows its frontend URL (KC_HOSTNAME); make ISSUER match it.",
                    obj="SIMPLE_JWT",
                    id="simplejwt_patches.W106",
                )
            )
    return messages
