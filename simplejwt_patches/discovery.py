"""One issuer's OpenID discovery document: where its keys are, fetched and cached like a key set.

:class:`Discovery` answers "what is this issuer's ``jwks_uri``" for a realm of
``SIMPLE_JWT_PATCHES["ISSUERS"]`` without a ``JWK_URL``. The document is fetched with the
package's transport (:func:`~simplejwt_patches.transport.http_get`: ``JWKS_TIMEOUT`` deadline,
headers, CA bundle or SSL context, proxy, redirect rule, ``JWKS_MAX_BYTES`` cap) and must name
exactly the configured issuer (OpenID Connect Discovery 1.0, 4.3), otherwise that realm fails
closed with a ``discovery_issuer`` failure. Its ``jwks_uri`` must be an http(s) URL without
credentials, and https when the document came over https (no downgrade), else the realm fails
closed with a ``jwks_uri`` failure. Cached for its ``Cache-Control`` lifetime within
``[JWKS_CACHE_MIN, JWKS_CACHE_MAX]`` (``JWKS_CACHE_LIFESPAN`` without ``max-age``); after
expiry one caller refreshes while the others keep the known ``jwks_uri``; a failed refresh keeps
serving it for ``JWKS_STALE_IF_ERROR`` seconds past expiry, and no attempt follows a failure
within ``JWKS_REFETCH_COOLDOWN``. Only the ``issuer`` and ``jwks_uri`` members are kept.

With ``JWKS_SHARED_CACHE`` the document is the fleet's too (:mod:`simplejwt_patches.discovery_fleet`):
a fetched document is published sealed like a key set, a fresh published one is used instead of a
fetch, and a process whose own fetch failed (started during an outage) serves the fleet's last good
document within the key set's stale bound -- each adoption held to the issuer and ``jwks_uri`` rules
above again.

Within a request (:func:`~simplejwt_patches.deadline.request_deadline`, set by the issuer-selection
fixer) the document and the key set it leads to share one ``JWKS_TIMEOUT``: waiting for another
request's fetch of the document and the fetch itself get only what is left of it.
"""

from __future__ import annotations

import functools
import http.client
import logging
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .conf import Options
from .deadline import time_left, unsent_without_idp_failure
from .diagnostics import safe_url
from .discovery_fleet import Document, FleetDocument
from .failures import JWKSFailure, failure_from
from .issuer_settings import shown_issuer, url_problem
from .schema import _shown
from .transport import cache_lifetime, http_get, parse_key_set

__all__ = ["Discovery", "DiscoveryState", "checked_jwks_uri"]

logger = logging.getLogger("simplejwt_patches.jwks")


@dataclass(frozen=True)
class DiscoveryState:
    """What ``status()`` and the doctor show of one document (URLs as :func:`safe_url` shows them)."""

    url: str
    jwks_uri: str | None  # the last good document's, None before one was had
    fresh: bool  # within its cache lifetime
    failure: str | None  # the last attempt's failure (its detail), None after a success
    failure_kind: str | None = None  # its JWKSFailure kind (``status``, ``discovery_issuer``, ``jwks_uri`` ...)
    fetched_ago_s: float | None = None  # seconds since the last good document, None before one
    failed_ago_s: float | None = None  # seconds since the last failed attempt, None after a success


class Discovery:
    """The discovery document of one issuer (see the module docstring for the policy)."""

    def __init__(
        self,
        issuer: str,
        url: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.issuer = issuer
        self.url = url
        self._clock = clock
        self._wall = wall or (lambda: time.time())  # looked up per call: a frozen clock in tests applies
        self._doc: Document | None = None  # the last good document (fetched here or the fleet's)
        self._fleet = FleetDocument(url, functools.partial(checked_jwks_uri, issuer, url))
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._expires = 0.0
        self._stale_until = 0.0
        self._failed_at: float | None = None
        self._failure: JWKSFailure | None = None
        self._fetched_at: float | None = None

    def jwks_uri(self, options: Options) -> str:
        """The issuer's ``jwks_uri`` (raises :class:`JWKSFailure` when there is none to serve)."""
        uri, now = self._jwks_uri, self._clock()
        if uri is not None and now < self._expires:
            return uri
        if self._recently_failed(now, options):
            return self._serve_stale(now)
        if uri is not None:  # expired: one caller refreshes, the others keep the known URI
            if not self._lock.acquire(blocking=False):
                return uri
        elif not self._lock.acquire(timeout=_time_left(options)):  # cold: wait for the fetch in flight
            raise JWKSFailure(
                "timeout",
                f"the discovery document at {safe_url(self.url)} being fetched by another request did not arrive "
                f"within JWKS_TIMEOUT={options.timeout:g} s",
            )
        try:
            uri, now = self._jwks_uri, self._clock()
            if uri is not None and now < self._expires:
                return uri
            if self._recently_failed(now, options):
                return self._serve_stale(now)
            if _time_left(options) <= 0.001:  # the request's deadline passed while waiting: not the IdP's fault
                raise JWKSFailure("timeout", f"JWKS_TIMEOUT={options.timeout:g} s passed before {safe_url(self.url)} "
                                  "was requested")  # fmt: skip
            return self._refresh(options)
        finally:
            self._lock.release()

    def state(self) -> DiscoveryState:
        """A snapshot for ``status()`` and the doctor."""
        failure, failed_at, fetched_at, uri = self._failure, self._failed_at, self._fetched_at, self._jwks_uri
        now = self._clock()
        return DiscoveryState(
            url=safe_url(self.url),
            jwks_uri=safe_url(uri) if uri else None,
            fresh=uri is not None and now < self._expires,
            failure=failure.detail if failure else None,
            failure_kind=failure.kind if failure else None,
            fetched_ago_s=None if fetched_at is None else round(now - fetched_at, 3),
            failed_ago_s=None if failed_at is None or failure is None else round(now - failed_at, 3),
        )

    def _recently_failed(self, now: float, options: Options) -> bool:
        return self._failed_at is not None and now - self._failed_at < max(options.refetch_cooldown, 1.0)

    def _serve_stale(self, now: float) -> str:
        if self._jwks_uri is not None and now < self._stale_until:
            return self._jwks_uri
        failure = self._failure
        assert failure is not None
        again = JWKSFailure(failure.kind, failure.detail, status=failure.status)  # a fresh one per token
        raise again from failure.__cause__

    def _refresh(self, options: Options) -> str:
        shown, shared = safe_url(self.url), options.shared_cache
        if shared:  # a fresh document another process published: no request to the IdP
            adopted = self._fleet.fresh(options, self._doc, self._wall())
            if adopted is not None:
                logger.debug("discovery document of issuer %s taken from the shared cache: jwks_uri=%s",
                             shown_issuer(self.issuer), safe_url(adopted.jwks_uri))  # fmt: skip
                return self._keep(adopted, options)
        try:
            jwks_uri, lifetime, storable = self._fetch(options)
        except JWKSFailure as failure:
            now = self._clock()
            proof = not unsent_without_idp_failure(failure)  # not sent, no IdP failure: a slow cache
            if proof:  # else no attempt: nothing to remember, the next request fetches
                self._failed_at, self._failure = now, failure
            fleet = self._fleet.stale(options, self._doc, self._wall()) if shared and proof else None
            if fleet is not None:  # started (or restarted) during an outage: the fleet's last good document
                self._keep(fleet, options, stale=True)
            serving = self._jwks_uri is not None and now < self._stale_until
            source = "the shared cache's last good" if fleet is not None else "the last known"
            logger.warning("discovery document of issuer %s at %s failed: %s; %s", shown_issuer(self.issuer), shown,
                           failure.detail, f"serving {source} jwks_uri (stale)" if serving else
                           "tokens from this issuer are rejected")  # fmt: skip
            if not proof:  # this process's own last known document, within its own stale bound, or none
                if serving and self._jwks_uri is not None:
                    return self._jwks_uri
                raise
            return self._serve_stale(now)
        generation = self._doc.generation if self._doc is not None else 0
        document = Document(self.issuer, jwks_uri, self._wall(), lifetime, generation)
        if shared and storable:
            document = self._fleet.publish(options, document, document.fetched_wall)
        self._keep(document, options)
        logger.debug(
            "discovery document of issuer %s fetched from %s: jwks_uri=%s, cached %g s",
            shown_issuer(self.issuer),
            shown,
            safe_url(jwks_uri),
            lifetime,
        )
        return jwks_uri

    def _keep(self, document: Document, options: Options, stale: bool = False) -> str:
        """Hold ``document`` (fetched here, or the fleet's: ``stale`` after this process's fetch failed,
        served only within the shared cache's stale bound, and refreshed after the cooldown)."""
        now, wall = self._clock(), self._wall()
        self._doc, self._jwks_uri = document, document.jwks_uri
        self._fetched_at = now - max(0.0, wall - document.fetched_wall)
        if stale:
            bound = min(document.lifetime, options.cache_lifespan) + options.stale_if_error
            self._expires, self._stale_until = now, now + (document.fetched_wall + bound - wall)
        else:
            self._expires = now + (document.expires_wall - wall)
            self._stale_until = self._expires + options.stale_if_error
            self._failed_at = self._failure = None
        return document.jwks_uri

    def _fetch(self, options: Options) -> tuple[str, float, bool]:
        status: int | None = None
        try:
            raw = http_get(self.url, options)
            status = raw.status
            document = parse_key_set(raw.body)
        except JWKSFailure:
            raise
        except urllib.error.HTTPError as exc:
            raise failure_from(exc, exc.code) from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise failure_from(exc, status) from exc
        return (checked_jwks_uri(self.issuer, self.url, document, status), *cache_lifetime(raw.cache_control, options))


def checked_jwks_uri(issuer: str, url: str, document: dict[str, Any], status: int | None = None) -> str:
    """The ``jwks_uri`` of the document from ``url`` under the rules (exactly ``issuer``, http(s), no
    downgrade), else a ``discovery_issuer`` or ``jwks_uri`` failure: fetched documents and the fleet's alike."""
    named = document.get("issuer")
    if named != issuer:
        raise JWKSFailure(
            "discovery_issuer",
            f"the discovery document at {safe_url(url)} names issuer {_shown(named)}, not the configured "
            f"{shown_issuer(issuer)}: tokens from this issuer are rejected",
            status=status,
        )
    jwks_uri = document.get("jwks_uri")
    why = url_problem(jwks_uri)
    if not why and isinstance(jwks_uri, str) and _downgrades(url, jwks_uri):
        why = (
            f"is plain http ({safe_url(jwks_uri)}) although the document came over https: the keys could be "
            "replaced in transit"
        )
    if why or not isinstance(jwks_uri, str):
        raise JWKSFailure(
            "jwks_uri",
            f"the discovery document at {safe_url(url)}: jwks_uri {why}",
            status=status,
        )
    return jwks_uri


def _downgrades(document_url: str, jwks_uri: str) -> bool:
    """A document fetched over https that sends the key set fetch to plain http (refused: no downgrade)."""
    return urlsplit(document_url).scheme.lower() == "https" and urlsplit(jwks_uri).scheme.lower() != "https"


def _time_left(options: Options) -> float:
    """What is left of this request's deadline (:func:`~.deadline.request_deadline`), else ``JWKS_TIMEOUT``."""
    left = time_left()
    return options.timeout if left is None else min(left, options.timeout)
