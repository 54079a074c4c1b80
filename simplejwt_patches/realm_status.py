"""Each trusted issuer's runtime state, as ``status().realms`` shows it (``SIMPLE_JWT_PATCHES["ISSUERS"]``).

One :class:`RealmStatus` per trusted issuer of SimpleJWT's backend (``state.token_backend``, once
SimpleJWT built it): where its keys come from and the key set URL in use, its discovery document's
state, its cached key set (how many kids, how old, when it expires), its last fetch and whether it
is serving a stale set -- what an operator needs on a bad day, read from the realm's own key source
without a request or a lock. Nothing here holds a token, a secret header value or a credential:
URLs are shown only as :func:`~simplejwt_patches.diagnostics.safe_url` shows them, issuers as
:func:`~simplejwt_patches.issuer_settings.issuer_label` does, and a failure by its kind and the
detail the logs show (control characters escaped, bounded). docs/troubleshooting.md documents the
fields (the table there is :func:`fields_markdown`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .conf import Options, get_options
from .diagnostics import describe, root_cause, safe_url
from .discovery import DiscoveryState
from .failures import find_failure
from .issuer_settings import issuer_label

__all__ = ["FIELDS", "FetchOutcome", "KeySetState", "RealmStatus", "fields_markdown", "realm_statuses"]

#: Longest failure text shown (a detail is a line of a log, never a document).
MAX_TEXT = 500


@dataclass(frozen=True)
class KeySetState:
    """The key set a realm's key source holds."""

    kids: int
    fetched_at: float
    age_s: float
    expires_in_s: float
    generation: int


@dataclass(frozen=True)
class FetchOutcome:
    """A realm's last key set fetch attempt."""

    ok: bool
    at: float
    ago_s: float
    failure: str | None


@dataclass(frozen=True)
class RealmStatus:
    """One trusted issuer's runtime state (``status().realms``)."""

    issuer: str
    keys_from: str
    jwk_url: str | None
    state: str
    serving_stale: bool
    discovery: DiscoveryState | None
    key_set: KeySetState | None
    last_fetch: FetchOutcome | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


#: Every field of ``status().realms``, documented once (docs/troubleshooting.md's table is made from it).
FIELDS: dict[str, str] = {
    "issuer": "the trusted issuer, as its tokens' `iss` names it (anything before an `@` dropped)",
    "keys_from": "`JWK_URL` (its `ISSUERS` entry's), `discovery` (the `jwks_uri` of its discovery document), "
    "`SIMPLE_JWT` (the `SIMPLE_JWT['ISSUER']` entry: `SIMPLE_JWT['JWK_URL']`) or `VERIFYING_KEY`",
    "jwk_url": "the key set URL in use (configured, or discovered; `None` before discovery succeeded), "
    "credentials, query and fragment dropped",
    "state": "`unused` (no token of it yet), `ok` (a fresh set), `idle` (an expired set whose last fetch "
    "succeeded: no token since, the next one refreshes it), `stale` (an expired set served, within "
    "`JWKS_STALE_IF_ERROR`, because refreshing it failed), `expired` (past that, refreshing still failing: its "
    "tokens are rejected until a refetch succeeds), `failing` (no set: its tokens are rejected; see "
    "`last_fetch` and `discovery`)",
    "serving_stale": "whether the key set served is past its expiry (`state == 'stale'`)",
    "discovery": "`None` with a `JWK_URL`; else its document: `url`, `jwks_uri`, `fresh`, `failure` and "
    "`failure_kind` of the last attempt (`None` after a success), `fetched_ago_s`, `failed_ago_s`",
    "key_set": "`None` before a set was had; else `kids` (how many signing keys), `fetched_at` (epoch seconds; "
    "the fleet's fetch for a set taken from `JWKS_SHARED_CACHE`), `age_s`, `expires_in_s` (negative: expired "
    "that long ago), `generation` (the fleet's count of published sets)",
    "last_fetch": "`None` before any attempt; else `ok`, `at` (epoch seconds), `ago_s` and `failure` "
    "(`<kind>: <detail>` as the WARNING log line says it, `None` after a success)",
}


def fields_markdown() -> str:
    """The table of :data:`FIELDS` in docs/troubleshooting.md (a test compares them)."""
    assert list(FIELDS) == [f.name for f in fields(RealmStatus)]
    rows = [f"| `{name}` | {doc} |" for name, doc in FIELDS.items()]
    return "\n".join(["| field | what it says |", "|---|---|", *rows])


def realm_statuses(options: Options | None = None) -> tuple[RealmStatus, ...]:
    """Each trusted issuer's state (``()`` when ``ISSUERS`` is unset); no request, no lock, never raises
    for a realm that was never used (it is ``unused``)."""
    from .realms import RealmTable, table_for

    options = options or get_options()
    if options.issuers is None:
        return ()
    state = sys.modules.get("rest_framework_simplejwt.state")  # never imported (nor its backend built) here
    base = getattr(state, "token_backend", None) if state is not None else None
    try:
        table = table_for(base, options) if base is not None else RealmTable(None, options)
    except TypeError:  # a backend that cannot be weakly referenced has no realms of its own
        table = RealmTable(base, options)
    return tuple(_realm(issuer, realm, base, options) for issuer, realm in table.realms.items())


def _realm(issuer: str, realm: Any, base: Any, options: Options) -> RealmStatus:
    from .clients import state_of

    client = realm.client(base)
    managed = state_of(client) if client is not None else None
    source = managed.source if managed is not None else None
    doc: DiscoveryState | None = realm.discovery.state() if realm.discovery is not None else None
    if doc is not None and doc.failure is not None:
        doc = replace(doc, failure=_printable(doc.failure))  # an IdP's reason phrase may carry CR/LF, escapes
    if realm.entry is not None:
        keys_from = realm.entry.keys_from[0]
    else:
        keys_from = "SIMPLE_JWT" if client is not None else "VERIFYING_KEY"
    url = realm.jwk_url or (str(client.uri) if client is not None and realm.entry is None else None)
    shown = safe_url(url) if url else (doc.jwks_uri if doc is not None else None)
    now_mono, now_wall = source.now() if source is not None else (time.monotonic(), time.time())
    keyset = source.keyset if source is not None else None
    memory = source.last_attempt if source is not None else None
    key_set = last = None
    if keyset is not None:
        key_set = KeySetState(
            kids=len(keyset.keys),
            fetched_at=keyset.fetched_wall,
            age_s=round(now_wall - keyset.fetched_wall, 3),
            expires_in_s=round(keyset.expires_mono - now_mono, 3),
            generation=keyset.generation,
        )
    if memory is not None and memory.attempt is not None:
        ago = now_mono - memory.attempt
        failure = None if memory.ok or memory.error is None else _described(memory.error)
        last = FetchOutcome(ok=memory.ok, at=round(now_wall - ago, 3), ago_s=round(ago, 3), failure=failure)
    state = _state(keyset, now_mono, options, last, doc)
    return RealmStatus(
        issuer=_printable(issuer_label(issuer)),
        keys_from=keys_from,
        jwk_url=shown,
        state=state,
        serving_stale=state == "stale",
        discovery=doc,
        key_set=key_set,
        last_fetch=last,
    )


def _state(keyset: Any, now: float, options: Options, last: FetchOutcome | None, doc: DiscoveryState | None) -> str:
    if keyset is not None:
        if now < keyset.expires_mono:
            return "ok"
        if last is None or last.ok:
            return "idle"  # nothing failed: the next token refreshes it (in the background, or at once)
        return "stale" if now < keyset.expires_mono + options.stale_if_error else "expired"
    if (last is not None and not last.ok) or (doc is not None and doc.failure is not None):
        return "failing"
    return "unused"


def _described(error: BaseException) -> str:
    """A failure as the WARNING log line says it: its kind and detail (``describe`` of the root cause else)."""
    failure = find_failure(error)
    text = f"{failure.kind}: {failure.detail}" if failure is not None else describe(root_cause(error))
    return _printable(text)


def _printable(text: str) -> str:
    """``text`` with control characters escaped (a value never breaks a line) and at most ``MAX_TEXT`` long."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."
