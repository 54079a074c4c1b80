"""Refresh scheduling for one client's key set: the current set and its generation, single flight
(one fetch at a time; callers wait for it, never past their request's deadline), the background
refresh that keeps serving the set it replaces, and the attempts with their failure memory.

:class:`Refresher` does not decide what a refresh is for (that is
:class:`~simplejwt_patches.keysource.KeySource`'s policy) nor where a set comes from: it is given
``fetch`` (the IdP, through the fleet's shared cache when there is one) and ``fallback`` (a last good
set from elsewhere when a process without one cannot fetch). Timestamps are the requesting thread's
``(monotonic, wall)`` pair, passed in, so an injected clock drives all bookkeeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .conf import Options
from .deadline import unsent_without_idp_failure
from .keyset import KeySet
from .refetch import FailureMemory, elapsed
from .refusals import refresh_timed_out, tried_recently

__all__ = ["Fallback", "Fetch", "Refresher"]

Now = tuple[float, float]  # (monotonic, wall)
#: ``fetch(options, now, previous, demand)``: a fresh set (``previous`` is the one held).
Fetch = Callable[[Options, Now, "KeySet | None", bool], KeySet]
#: ``fallback(options, now, error)``: a last good set for a process that has none and whose fetch
#: failed with ``error`` (the fallback decides which failures allow it).
Fallback = Callable[[Options, Now, BaseException], "KeySet | None"]


class Refresher:
    """The current key set of one client and the single flight that replaces it."""

    def __init__(self, fetch: Fetch, fallback: Fallback) -> None:
        self._fetch = fetch
        self._fallback = fallback
        #: ``(generation, keyset)`` in one attribute, read without a lock on the warm path; the
        #: generation counts completed attempts and adopted sets ("refreshed since I looked?").
        self.current: tuple[int, KeySet | None] = (0, None)
        self.memory = FailureMemory()  # the last attempt: bounds retries after a failure
        self.lock = threading.Lock()  # single flight: held by the one fetch in progress
        self._adopt_lock = threading.Lock()
        self._bg_guard = threading.Lock()
        self._bg_thread: threading.Thread | None = None

    @property
    def keyset(self) -> KeySet | None:
        return self.current[1]

    def _publish(self, keyset: KeySet | None) -> None:
        self.current = (self.current[0] + 1, keyset)

    def acquire(self, deadline: float) -> bool:
        """Take the single flight, waiting for a refresh in progress until ``deadline`` (:func:`elapsed`)."""
        return self.lock.acquire(timeout=max(0.0, deadline - elapsed()))

    def release(self) -> None:
        self.lock.release()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait for a background refresh to finish; ``False`` on timeout."""
        thread = self._bg_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def attempt(self, options: Options, now: Now, *, demand: bool = False) -> KeySet:
        """One refresh (the caller holds the single flight); its outcome goes into :attr:`memory`.

        A fetch not sent for want of time, in a request no fetch of which failed at the IdP (the time went
        to a slow shared cache), is no attempt: nothing is remembered and the set's generation is kept, so
        the next request (and a waiter for this one) fetches itself instead of being refused for a cooldown
        on the account of a fetch the IdP never saw.
        """
        try:
            keyset = self._fetch(options, now, self.keyset, demand)
        except Exception as exc:
            if unsent_without_idp_failure(exc):
                raise
            self.memory.record(now[0], exc)
            self._publish(self.keyset)
            stale = self._fallback(options, now, exc) if self.keyset is None else None
            if stale is None:
                raise
            self.current = (self.current[0], stale)  # a process (re)started in an outage: the fleet's last set
            return stale
        self.memory.record(now[0], None)
        self._publish(keyset)
        return keyset

    def adopt(self, keyset: KeySet) -> KeySet | None:
        """Install a set another process fetched unless ours is as new: the set now held for it, else ``None``."""
        with self._adopt_lock:
            current = self.keyset
            if current is not None and current.fetched_wall >= keyset.fetched_wall:
                return current if current.fetched_wall == keyset.fetched_wall else None
            self._publish(keyset)
        return keyset

    def refresh(self, options: Options, now: Now, deadline: float) -> KeySet:
        """A set for a caller that has none usable (cold, or expired past ``JWKS_STALE_IF_ERROR``)."""
        generation = self.current[0]
        # Single flight: wait for a refresh already in progress, but never past the request's deadline
        # (the fetch itself has that deadline; a waiter must not queue behind it indefinitely).
        if not self.acquire(deadline):
            keyset = self.keyset
            if keyset is not None and now[0] < keyset.expires_mono + options.stale_if_error:
                return keyset  # the stale set, while a slow refresh is still running
            raise refresh_timed_out(options)
        try:
            generation_now, keyset = self.current
            if generation_now != generation:  # the refresh this caller waited for
                if self.memory.ok and keyset is not None:
                    return keyset
                raise tried_recently(self.memory, now[0], options)
            return self.attempt(options, now)
        finally:
            self.release()

    def in_background(self, options: Options, now: Now, generation: int) -> None:
        """Start one background refresh unless one is in flight or the set changed since ``generation``."""
        if self.lock.locked() or self.current[0] != generation:
            return
        if self.memory.blocked(now[0], options.refetch_cooldown):
            return
        with self._bg_guard:
            if self._bg_thread is not None and self._bg_thread.is_alive():
                return
            self._bg_thread = threading.Thread(
                target=self._background,
                args=(options, now, generation),
                name="simplejwt-patches-jwks-refresh",
                daemon=True,
            )
            self._bg_thread.start()

    def _background(self, options: Options, now: Now, generation: int) -> None:
        # Timestamps come from the requesting thread (one clock for all bookkeeping).
        if not self.lock.acquire(blocking=False):
            return
        try:
            if self.current[0] == generation:  # nobody refreshed meanwhile
                self.attempt(options, now)
        except Exception:  # noqa: BLE001 - the failure was logged by the transport; stale set keeps serving
            pass
        finally:
            self.lock.release()
            if options.shared_cache:
                from django.db import connections

                connections.close_all()  # this thread's connections only (a database cache backend)

    def prime(self, now: Now, outcome: KeySet | BaseException) -> bool:
        """A fetch made elsewhere in this process (the doctor's probe) as the first attempt: its set
        (a successful cold fetch, no budget used) or its error; ``False`` when a set is held."""
        with self.lock:
            if self.keyset is not None:
                return False
            if isinstance(outcome, BaseException):
                self.memory.record(now[0], outcome)
                self._publish(self.keyset)
            else:
                self.memory.record(now[0], None)
                self._publish(outcome)
        return True
