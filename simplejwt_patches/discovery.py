"""One issuer's OpenID discovery document: where its keys are, fetched and cached like a key set.

:class:`Discovery` answers "what is this issuer's ``jwks_uri``" for a realm of
``SIMPLE_JWT_PATCHES["ISSUERS"]`` without a ``JWK_URL``. The document is fetched with the
package's transport (:func:`~simplejwt_patches.transport.http_get`: ``JWKS_TIMEOUT`` deadline,
headers, CA bundle or SSL context, proxy, redirect rule, ``JWKS_MAX_BYTES`` cap) and must name
exactly the configured issuer (OpenID Connect Discovery 1.0, 4.3), otherwise that realm fails
closed with a ``discovery_issuer`` failure. Cached for its ``Cache-Control`` lifetime within
``[JWKS_CACHE_MIN, JWKS_CACHE_MAX]`` (``JWKS_CACHE_LIFESPAN`` without ``max-age``); after
expiry one caller refreshes while the others keep the known ``jwks_uri``; a failed refresh keeps
serving it for ``JWKS_STALE_IF_ERROR`` seconds past expiry, and no attempt follows a failure
within ``JWKS_REFETCH_COOLDOWN``. Only the ``issuer`` and ``jwks_uri`` members are kept.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass

from .conf import Options
from .diagnostics import safe_url
from .failures import JWKSFailure, failure_from
from .issuer_settings import url_problem
from .schema import _shown
from .transport import cache_lifetime, http_get, parse_key_set

__all__ = ["Discovery", "DiscoveryState"]

logger = logging.getLogger("simplejwt_patches.jwks")


@dataclass(frozen=True)
class DiscoveryState:
    """What ``status()`` and the doctor show of one document."""

    url: str
    jwks_uri: str | None
    fresh: bool
    failure: str | None


class Discovery:
    """The discovery document of one issuer (see the module docstring for the policy)."""

    def __init__(self, issuer: str, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self.url = url
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._expires = 0.0
        self._stale_until = 0.0
        self._failed_at: float | None = None
        self._failure: JWKSFailure | None = None

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
        else:
            self._lock.acquire()  # cold: wait for the one fetch in flight (bounded by JWKS_TIMEOUT)
        try:
            uri, now = self._jwks_uri, self._clock()
            if uri is not None and now < self._expires:
                return uri
            if self._recently_failed(now, options):
                return self._serve_stale(now)
            return self._refresh(options)
        finally:
            self._lock.release()

    def state(self) -> DiscoveryState:
        """A snapshot for ``status()`` and the doctor."""
        failure = self._failure
        return DiscoveryState(
            safe_url(self.url), self._jwks_uri, self._clock() < self._expires, failure.detail if failure else None
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
        shown = safe_url(self.url)
        try:
            jwks_uri, lifetime = self._fetch(options)
        except JWKSFailure as failure:
            now = self._clock()
            self._failed_at, self._failure = now, failure
            serving = self._jwks_uri is not None and now < self._stale_until
            logger.warning(
                "discovery document of issuer %r at %s failed: %s; %s",
                self.issuer[:200],
                shown,
                failure.detail,
                "serving the last known jwks_uri (stale)" if serving else "tokens from this issuer are rejected",
            )
            return self._serve_stale(now)
        now = self._clock()
        self._jwks_uri, self._expires = jwks_uri, now + lifetime
        self._stale_until = self._expires + options.stale_if_error
        self._failed_at = self._failure = None
        logger.debug(
            "discovery document of issuer %r fetched from %s: jwks_uri=%s, cached %g s",
            self.issuer[:200],
            shown,
            safe_url(jwks_uri),
            lifetime,
        )
        return jwks_uri

    def _fetch(self, options: Options) -> tuple[str, float]:
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
        named = document.get("issuer")
        if named != self.issuer:
            raise JWKSFailure(
                "discovery_issuer",
                f"the discovery document at {safe_url(self.url)} names issuer {_shown(named)}, not the configured "
                f"{self.issuer[:200]!r}: tokens from this issuer are rejected",
                status=status,
            )
        jwks_uri = document.get("jwks_uri")
        why = url_problem(jwks_uri)
        if why or not isinstance(jwks_uri, str):
            raise JWKSFailure("malformed", f"the discovery document at {safe_url(self.url)}: jwks_uri {why}")
        return jwks_uri, cache_lifetime(raw.cache_control, options)[0]
