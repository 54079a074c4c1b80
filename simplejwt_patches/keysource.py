"""The serving policy of the signing-key lookup: a kid in, a key or a reasoned refusal out.

One :class:`KeySource` per managed ``PyJWKClient`` replaces PyJWT's lookup (fixer
``pyjwt.client.key-source``); the policy in full is docs/resilience.md ("The refetch policy and its
bound", "Declared fail-closed windows"). :class:`KeySource` decides, on its injectable clock:

* a kid in the cached set is a dict lookup, without a lock or the network (PyJWT 2.14+'s global lock,
  held across network I/O, is never taken);
* an expired set keeps serving while one background refresh runs, and for ``JWKS_STALE_IF_ERROR``
  past its expiry while refreshes fail (WARNING once per cooldown), then the source fails closed;
* an unknown kid, or a cached kid whose signature fails, asks for a demand refetch within its bound --
  also on a cold process's first token when the set it took is the fleet's (published before a rotation);
  a kid still unknown after that is rejected with the last failure in its cause chain;
* a failed attempt is not retried before ``JWKS_REFETCH_COOLDOWN``: its failure answers meanwhile.

The collaborators hold the rest: :mod:`.refresher` (the current set, single flight, background
refresh, attempts), :mod:`.demand` (the demand refetch and its budget), :mod:`.fleet` (the shared
cache), :mod:`.keyfetch` (the IdP fetch), :mod:`.keyset` (the parsed set), :mod:`.refusals` (errors).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .conf import Options, get_options
from .deadline import time_left
from .demand import DemandRefetch
from .diagnostics import describe, root_cause, safe_url
from .failures import JWKSFailure
from .fleet import Fleet
from .keyset import KeySet, build_keyset
from .refetch import FailureMemory, FleetReads, elapsed
from .refresher import Refresher
from .refusals import tried_recently, unknown_kid

__all__ = ["KeySet", "KeySource", "build_keyset"]

logger = logging.getLogger("simplejwt_patches.jwks")


class KeySource:
    """Signing keys for one managed client (see the module docstring for the policy)."""

    def __init__(self, client_ref: Any, clock: Any = None) -> None:
        self._client_ref = client_ref  # weak reference to the managed PyJWKClient
        self._clock = clock or (lambda: (time.monotonic(), time.time()))  # (monotonic, wall) - injectable
        self._fleet = Fleet(client_ref)
        self._refresher = Refresher(fetch=self._fleet.fetch, fallback=self._fleet.stale)
        self._demand = DemandRefetch(self._refresher, self._fleet)
        self._stale_warned: float | None = None

    @property
    def keyset(self) -> KeySet | None:
        """The current key set (possibly expired), or ``None`` before the first fetch."""
        return self._refresher.current[1]

    @property
    def last_attempt(self) -> FailureMemory:
        """This source's last fetch attempt and its outcome (what ``status()`` shows of it)."""
        return self._refresher.memory

    def now(self) -> tuple[float, float]:
        """This source's clock, ``(monotonic, wall)``: what ``status()`` measures ages with."""
        now_mono, now_wall = self._clock()
        return float(now_mono), float(now_wall)

    @property
    def _refresh_lock(self) -> threading.Lock:  # what the resilience tests look at
        return self._refresher.lock

    @property
    def _fleet_reads(self) -> FleetReads[KeySet]:  # what the rotation tests count
        return self._fleet.reads

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait for a background refresh to finish (tests and benchmarks); ``False`` on timeout."""
        return self._refresher.wait_idle(timeout)

    def get_signing_key(self, kid: str | None) -> Any:
        """The PyJWK for ``kid``; raises PyJWT errors chained to the root cause."""
        import jwt

        options = get_options()
        now, wall = self._clock()
        if not isinstance(kid, str):  # a hostile header: a list or an object is no key id
            raise jwt.PyJWKClientError("Unable to find a signing key: the token's kid is not a string") from (
                JWKSFailure("unknown_kid", f"the token's kid is a {type(kid).__name__}")
            )
        refresher = self._refresher
        generation, keyset = refresher.current
        if keyset is not None and now < keyset.expires_mono + options.stale_if_error:
            ahead = min(options.refresh_ahead, keyset.lifetime / 2)
            if now >= keyset.expires_mono - ahead:
                refresher.in_background(options, (now, wall), generation)
                if now >= keyset.expires_mono and not refresher.memory.ok:
                    self._warn_stale(keyset, now, options)
            key = keyset.keys.get(kid)
            if key is not None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("JWKS cache hit for kid %s (%d signing keys, expires in %.0f s)", kid,
                                 len(keyset.keys), keyset.expires_mono - now)  # fmt: skip
                return key
            refreshed = self._demand(options, (now, wall), lambda ks: kid in ks.keys, _deadline(options))
            key = refreshed.keys.get(kid) if refreshed is not None else None
            if key is not None:
                return key
            raise unknown_kid(kid, None if refresher.memory.ok else refresher.memory.error)
        if refresher.memory.blocked(now, options.refetch_cooldown):
            raise tried_recently(refresher.memory, now, options)
        deadline = _deadline(options)
        keyset = refresher.refresh(options, (now, wall), deadline)
        key = keyset.keys.get(kid)
        if key is None and keyset.shared:
            # The fleet's set, published before this process started: it may predate a rotation, so the kid
            # gets the demand refetch a warm process would make (within the same budget), not a rejection.
            refreshed = self._demand(options, (now, wall), lambda ks: kid in ks.keys, deadline)
            key = refreshed.keys.get(kid) if refreshed is not None else None
            if key is None:
                raise unknown_kid(kid, None if refresher.memory.ok else refresher.memory.error)
        if key is None:
            raise unknown_kid(kid)
        return key

    def refetch_replaced(self, kid: Any, key: Any) -> Any:
        """A fresh key for ``kid`` when the cached ``key`` failed to verify a signature, else ``None``.

        Uses the demand-refetch budget (at most one per ``JWKS_REFETCH_COOLDOWN``); returns a key only
        when the refetched set publishes a *different* key under the same kid (a key replaced in place).
        Never raises: the caller's signature error stands when nothing better is found.
        """
        if not isinstance(kid, str):
            return None
        options = get_options()
        now, wall = self._clock()
        if self.keyset is None:
            return None

        def replaced(keyset: KeySet) -> bool:
            fresh = keyset.keys.get(kid)
            return fresh is not None and fresh is not key and not _same_jwk(fresh, key)

        try:
            refreshed = self._demand(options, (now, wall), replaced, _deadline(options))
        except Exception:  # noqa: BLE001 - logged by the transport; the signature error stands
            return None
        return refreshed.keys[kid] if refreshed is not None and replaced(refreshed) else None

    def prime(self, payload: dict[str, Any], lifetime: float, *, storable: bool = True) -> bool:
        """Use a key set fetched elsewhere in this process (the doctor's probe) when none is cached.

        Counts as a successful cold fetch (no demand budget used); ``False`` when a set is already
        cached or ``payload`` has no usable signing key.
        """
        if self.keyset is not None:
            return False
        now = self._clock()
        try:
            keyset = build_keyset(payload, lifetime, now=now, storable=storable)
        except Exception:  # noqa: BLE001 - an unusable set is left to the normal fetch
            return False
        return self._refresher.prime(now, keyset)

    def prime_failure(self, error: BaseException) -> bool:
        """Record a failed fetch made elsewhere in this process (the doctor's probe) as this source's
        last attempt, so the same failure answers without a second request; ``False`` when a set is cached."""
        if self.keyset is not None:
            return False
        return self._refresher.prime(self._clock(), error)

    def _warn_stale(self, keyset: KeySet, now: float, options: Options) -> None:
        if self._stale_warned is not None and now - self._stale_warned < options.refetch_cooldown:
            return
        self._stale_warned = now
        error = self._refresher.memory.error
        logger.warning(
            "serving the last good JWKS for %s, expired %.0f s ago (JWKS_STALE_IF_ERROR=%g s), because refreshing "
            "it failed: %s",
            safe_url(self._fleet.url()),
            now - keyset.expires_mono,
            options.stale_if_error,
            describe(root_cause(error)) if error else "unknown",
        )


def _same_jwk(a: Any, b: Any) -> bool:
    """Whether two PyJWK objects hold the same public key (by their JWK dict when available)."""
    da, db = getattr(a, "_jwk_data", None), getattr(b, "_jwk_data", None)
    if isinstance(da, dict) and isinstance(db, dict):
        return {k: da.get(k) for k in ("kty", "n", "e", "x", "y", "crv", "k")} == {
            k: db.get(k) for k in ("kty", "n", "e", "x", "y", "crv", "k")
        }
    return False


def _deadline(options: Options) -> float:
    """When every wait of this request ends: ``JWKS_TIMEOUT`` from now, or sooner when the request
    already spent part of it (a realm's discovery document fetched first: one deadline per request)."""
    left = time_left()
    return elapsed() + (options.timeout if left is None else min(options.timeout, left))
