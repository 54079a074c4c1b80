"""Django system checks, stable ids ``simplejwt_patches.<id>``.

Every id is declared once: the ids of settings in :data:`simplejwt_patches.conf.SCHEMA`, the
``check --deploy`` ids of key-set failures in :data:`simplejwt_patches.failures.CATEGORIES`, and
the rest in :data:`CHECK_IDS` below. The README's system-check table is generated from them
(:func:`checks_markdown`; a test fails when it differs) and every id has a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks

from .catalog import REGISTRY
from .conf import SCHEMA, SETTING, Problem, get_options, jwk_url_problems
from .failures import CATEGORIES
from .pins import PINS
from .providers import PROVIDERS, recognise
from .versions import pyjwt_caps, simplejwt_version

__all__ = [
    "CHECK_IDS",
    "CheckId",
    "all_check_ids",
    "check_disable",
    "check_fingerprints",
    "check_jwk_url",
    "check_jwks_live",
    "check_patches",
    "check_settings",
    "check_shared_cache",
    "check_signing_backend",
    "check_trusted_clients",
    "check_user_lookup",
    "check_version",
    "checks_markdown",
]

TAG = "simplejwt_patches"


@dataclass(frozen=True)
class CheckId:
    """A system check id and what it means."""

    id: str
    meaning: str
    deploy: bool = False

    @property
    def level(self) -> str:
        """``error`` or ``warning``, from the id's letter."""
        return "error" if self.id.startswith("E") else "warning"


#: The ids that belong to no single setting and no key-set failure.
CHECK_IDS: tuple[CheckId, ...] = (
    CheckId("E001", 'SimpleJWT release not pinned and `UNKNOWN_VERSION = "error"`'),
    CheckId("W001", "SimpleJWT release not pinned: nothing patched (names installed and known releases)"),
    CheckId("W002", 'SimpleJWT release not pinned: newest patch set applied (`"latest"`)'),
    CheckId("W003", "`JWK_URL` set but the installed PyJWT has no `PyJWKClient`"),
    CheckId("E010", "`SIMPLE_JWT_PATCHES` is not a dict"),
    CheckId("W010", "unknown key in `SIMPLE_JWT_PATCHES` (with a did-you-mean)"),
    CheckId("E017", "both `JWKS_CA_BUNDLE` and `JWKS_SSL_CONTEXT` are set"),
    CheckId("E019", "`DISABLE` names a patch that another applied patch requires (names both)"),
    CheckId("W020", '`SIMPLE_JWT["JWK_URL"]` is not https (loopback excepted)'),
    CheckId("E030", '`SIMPLE_JWT["JWK_URL"]` is not a string or not a URL'),
    CheckId("E031", '`SIMPLE_JWT["JWK_URL"]` carries credentials (`user:password@`): the key set is not fetched, the '
            "password never shown"),
    CheckId("W030", "a patch was skipped or failed (upstream attribute missing or changed, or a required patch off)"),
    CheckId("W031", "a patch was skipped: the SimpleJWT code it wraps differs from the code proven for it (names it)"),
    CheckId("W032", "SimpleJWT's source is not available: fingerprints not checked, the version rule applies"),
    CheckId("W040", '`USER_ID_CLAIM = "sub"` with an integer `USER_ID_FIELD` and `JWTAuthentication` (every IdP token '
            "fails the user lookup)"),
    CheckId("E050", "`JWKS_SHARED_CACHE` names a cache whose backend unpickles what it reads (names the alias, the "
            "backend and why)"),
    CheckId("W050", "the configuration accepts tokens minted for other clients: `AUDIENCE` is or contains "
            '`"account"` (Keycloak puts it on every client\'s tokens), or is `None` while `JWK_URL` is set, and '
            "`AUTHORIZED_PARTIES` is not set"),
    CheckId("W051", "a Redis `JWKS_SHARED_CACHE` without `socket_timeout` and `socket_connect_timeout` below "
            "`JWKS_TIMEOUT` (a Redis that stops answering holds every request; names the alias and what is missing)"),
    CheckId("E051", '`SIMPLE_JWT["ALGORITHM"]` needs the `cryptography` package and it cannot be imported (every '
            "token would be an HTTP 500)"),
    CheckId("E105", '`JWK_URL` has no signing key for `SIMPLE_JWT["ALGORITHM"]`', deploy=True),
    CheckId("W106", 'the discovery document next to `JWK_URL` names another `issuer` than `SIMPLE_JWT["ISSUER"]`',
            deploy=True),
    CheckId("E061", 'an asymmetric `SIMPLE_JWT["ALGORITHM"]` and no key source: no `VERIFYING_KEY`, no `JWK_URL`, no '
            "`ISSUERS` (every token would be an HTTP 500)"),
    CheckId("W061", '`ISSUERS` and `JWK_URL` are set but `SIMPLE_JWT["ISSUER"]` is not (that key set verifies no '
            "token)"),
    CheckId("E062", "`ISSUERS` is set but not enforced: an `HS*` `ALGORITHM`, or the issuer-selection fixer not "
            "applied"),
    CheckId("W060", "an `ISSUERS` entry's `JWK_URL` (else its discovery URL) is not https (loopback excepted), "
            "the rule of `W020`"),
    CheckId("E108", "an `ISSUERS` realm's discovery document names a `jwks_uri` that is not http(s) or that "
            "downgrades https to http (the realm fails closed)", deploy=True),
)  # fmt: skip


def all_check_ids() -> dict[str, CheckId]:
    """Every id this package can report, with its meaning (derived from the three declarations)."""
    found: dict[str, CheckId] = {c.id: c for c in CHECK_IDS}
    for s in SCHEMA:
        known = found.get(s.check)
        keys = f"{known.meaning}, `{s.key}`" if known else f"a bad value of `{s.key}`"
        found[s.check] = CheckId(s.check, keys)
    for c in CATEGORIES.values():
        if c.check_id:
            known = found.get(c.check_id)
            kinds = f"{known.meaning}, {c.kind}" if known else f"`JWK_URL` fails: {c.kind}"
            found[c.check_id] = CheckId(c.check_id, kinds, deploy=True)
    return dict(sorted(found.items(), key=lambda item: (item[0][1:], item[0][0])))


def checks_markdown() -> str:
    """The README's system-check table."""
    lines = ["| id | level | meaning |", "|---|---|---|"]
    for c in all_check_ids().values():
        level = c.level + (", `--deploy` only" if c.deploy else "")
        lines.append(f"| `simplejwt_patches.{c.id}` | {level} | {c.meaning} |")
    return "\n".join(lines)


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
    """W020/E030/E031/W003: ``SIMPLE_JWT['JWK_URL']`` is usable and safe."""
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


@checks.register(TAG, deploy=True)
def check_jwks_live(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E101-E105/W106 (``check --deploy`` only): fetch ``JWK_URL`` as authentication would."""
    from .doctor.probe import discovery_document, issuers, probe_jwks

    simple_jwt = getattr(settings, "SIMPLE_JWT", None) or {}
    jwk_url = simple_jwt.get("JWK_URL") if isinstance(simple_jwt, dict) else None
    if not jwk_url or not isinstance(jwk_url, str):
        return []
    if any(p.id.startswith("E") for p in jwk_url_problems(jwk_url)):
        return []  # E030/E031 (the plain checks) already say why nothing is fetched
    from rest_framework_simplejwt import settings as sj_settings

    api = sj_settings.api_settings
    probe = probe_jwks(jwk_url, api.ALGORITHM)
    messages: list[checks.CheckMessage] = []
    if not probe.ok and probe.problem:
        category = CATEGORIES.get(probe.problem)
        check_id = category.check_id if category and category.check_id else "E105"
        what = category.text.format(status=probe.status) if category else "has no signing key for ALGORITHM"
        detail = probe.error or ""
        if probe.redirect_to:
            detail += f" (Location: {probe.redirect_to})"
        messages.append(
            checks.Error(
                f"JWK_URL {probe.url}: {what}: {detail}",
                hint=category.next_step if category else "Set SIMPLE_JWT['ALGORITHM'] to the IdP's signing algorithm.",
                obj="SIMPLE_JWT",
                id=f"simplejwt_patches.{check_id}",
            )
        )
    wanted = issuers(api.ISSUER)
    if wanted:
        try:
            found = discovery_document(jwk_url, api.ISSUER)
        except ValueError:  # a JWK_URL urllib cannot even split
            found = None
        if found is not None and found[1] not in wanted:
            messages.append(
                checks.Warning(
                    f"the discovery document at {found[0]} says issuer {found[1]!r} but SIMPLE_JWT['ISSUER'] is "
                    f"{api.ISSUER!r}: every token will fail the iss check.",
                    hint=recognise(jwk_url, api.ISSUER, discovery=found[2]).issuer_fix(),
                    obj="SIMPLE_JWT",
                    id="simplejwt_patches.W106",
                )
            )
    return messages


@checks.register(TAG)
def check_user_lookup(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W040: an IdP's ``sub`` looked up in an integer ``USER_ID_FIELD`` by ``JWTAuthentication``."""
    from rest_framework_simplejwt import settings as sj_settings

    from .doctor.stack import configured_auth_classes, user_lookup_problem
    from .patches.user_lookup import USER_LOOKUP_FIXES

    try:
        problem = user_lookup_problem(sj_settings.api_settings, configured_auth_classes())
    except Exception:  # noqa: BLE001 - an unimportable auth class is DRF's own error to report
        return []
    if problem is None:
        return []
    return [
        checks.Warning(
            problem + " (each such request is answered 401 user_not_found; HTTP 500 without simplejwt-patches).",
            hint=USER_LOOKUP_FIXES[0].upper() + USER_LOOKUP_FIXES[1:] + ".",
            obj="SIMPLE_JWT",
            id="simplejwt_patches.W040",
        )
    ]


@checks.register(TAG, checks.Tags.security)
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E050: ``JWKS_SHARED_CACHE`` must be a cache the key set can be read from as plain bytes."""
    from django.utils.module_loading import import_string

    from .cache_store import refusal

    alias = get_options().shared_cache
    if not alias:
        return []
    conf = (getattr(settings, "CACHES", None) or {}).get(alias)
    backend = str(conf.get("BACKEND", "")) if isinstance(conf, dict) else ""
    try:  # the class only: nothing is built or connected
        why = refusal(import_string(backend))
        if why:
            why += ": whoever can write that cache could run code in every worker"
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, never raised
        why = f"it cannot be imported ({type(exc).__name__}: {str(exc)[:200]})"
    if not why:
        return []
    return [
        checks.Error(
            f"{SETTING}['JWKS_SHARED_CACHE'] = {alias!r}: the cache backend {backend[:200]} is refused, because {why}.",
            hint="Use Django's RedisCache (django.core.cache.backends.redis.RedisCache) or django-redis, whose raw "
            "client reads plain bytes; until then every process fetches the key set on its own.",
            obj=SETTING,
            id="simplejwt_patches.E050",
        )
    ]


def _simple_jwt() -> dict[str, Any]:
    raw = getattr(settings, "SIMPLE_JWT", None) or {}
    return raw if isinstance(raw, dict) else {}


@checks.register(TAG, checks.Tags.security)
def check_trusted_clients(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W050: ``AUDIENCE`` lets tokens minted for other clients through and ``AUTHORIZED_PARTIES`` is unset."""
    if get_options().authorized_parties is not None:
        return []
    simple_jwt = _simple_jwt()
    audience, jwk_url = simple_jwt.get("AUDIENCE"), simple_jwt.get("JWK_URL")
    provider = recognise(jwk_url, simple_jwt.get("ISSUER"))
    listed = audience if isinstance(audience, (list, tuple, set, frozenset)) else [audience]
    if "account" in listed:
        risk = (
            f"SIMPLE_JWT['AUDIENCE'] is {audience!r}: Keycloak's built-in 'roles' client scope (Audience Resolve) "
            "puts 'account' in the aud of the access tokens of every client of the realm"
        )
    elif audience is None and jwk_url:
        risk = (
            f"SIMPLE_JWT['AUDIENCE'] is None while JWK_URL is set: every token {provider.name} signs is accepted, "
            "whatever service or client it was issued for"
        )
    else:
        return []
    keycloak = PROVIDERS["keycloak"] if "account" in listed else provider
    return [
        checks.Warning(
            f"{risk}, and {SETTING}['AUTHORIZED_PARTIES'] is not set: this API accepts tokens minted for other "
            "clients.",
            hint=f"Either make the tokens name this API in aud ({keycloak.audience_setup}), or set "
            f"{SETTING}['AUTHORIZED_PARTIES'] to the client ids allowed to call this API (the token's "
            f"{keycloak.party_claim!r} claim), or both.",
            obj="SIMPLE_JWT",
            id="simplejwt_patches.W050",
        )
    ]


def _crypto_error() -> str | None:
    """Why ``cryptography`` cannot be used by PyJWT (``None`` when it can)."""
    try:
        import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401
        from jwt import algorithms
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken build raising anything
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if not getattr(algorithms, "has_crypto", True):
        return "PyJWT was imported without it (jwt.algorithms.has_crypto is False)"
    return None


@checks.register(TAG, checks.Tags.security)
def check_signing_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E051: an asymmetric ``ALGORITHM`` without an importable ``cryptography``."""
    algorithm = _simple_jwt().get("ALGORITHM", "HS256")
    if not isinstance(algorithm, str) or algorithm.upper().startswith("HS") or algorithm.lower() == "none":
        return []
    why = _crypto_error()
    if why is None:
        return []
    return [
        checks.Error(
            f"SIMPLE_JWT['ALGORITHM'] is {algorithm[:20]!r}, which needs the 'cryptography' package, and it cannot be "
            f"imported ({why}): every token would be an HTTP 500.",
            hint="Install it: pip install 'PyJWT[crypto]' (simplejwt-patches depends on it; reinstall the project's "
            "requirements if it is missing).",
            obj="SIMPLE_JWT",
            id="simplejwt_patches.E051",
        )
    ]


# Registered with the others: W051 (the shared cache's timeouts), the checks of ISSUERS (E061, W061, E062, --deploy).
from . import cache_checks, realm_checks  # noqa: E402,F401
