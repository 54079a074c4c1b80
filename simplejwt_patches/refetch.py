"""The refetch policy's memory, kept apart from :class:`~simplejwt_patches.keysource.KeySource`.

* :class:`DemandBudget` - one demand refetch per ``JWKS_REFETCH_COOLDOWN`` per process (the fleet's
  budget is a key in the shared cache); a process the fleet refused asks the fleet again after
  :data:`FLEET_RETRY`, so the fleet's next window is taken as soon as it opens, whoever spent the last.
* :class:`FailureMemory` - the last attempt and its outcome: a failed fetch is not retried sooner
  than a cooldown later, and its error is the cause of the refusals meanwhile.
* :class:`FleetReads` - the "is there a newer set in the shared cache" read, single-flight and at
  most one per :data:`FLEET_READ_INTERVAL` per process: a caller waits for the next read that
  *starts after it arrived* (never trusts an older answer), so any number of unknown kids cost at most
  ``1 / FLEET_READ_INTERVAL`` cache reads per second per process.
* :func:`await_fleet` - wait (bounded) for the set that another process's in-flight fetch publishes.

Waits use :func:`elapsed`, the real monotonic clock, even where the bookkeeping clock is a test's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = [
    "FLEET_POLL",
    "FLEET_READ_INTERVAL",
    "FLEET_RETRY",
    "DemandBudget",
    "FailureMemory",
    "FleetReads",
    "await_fleet",
    "elapsed",
]

#: Seconds between two reads of the shared cache's set by one process (at most 20 per second).
FLEET_READ_INTERVAL = 0.05
#: Seconds after the fleet refused its budget before this process asks it again.
FLEET_RETRY = 0.25
#: Seconds between two looks at the shared cache while another process's fetch is in flight.
FLEET_POLL = 0.05

T = TypeVar("T")

_clock_gettime = getattr(time, "clock_gettime", None)
_CLOCK_MONOTONIC = getattr(time, "CLOCK_MONOTONIC", None)


def elapsed() -> float:
    """The real monotonic clock in seconds (waits and deadlines are real, also under a frozen test clock)."""
    if _clock_gettime is not None and _CLOCK_MONOTONIC is not None:
        return float(_clock_gettime(_CLOCK_MONOTONIC))
    return time.monotonic()  # pragma: no cover - platforms without clock_gettime


class DemandBudget:
    """One demand refetch per cooldown for this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: float | None = None  # bookkeeping clock: when the next demand refetch may start
        self._before: float | None = None  # what _next was before the last take

    def take(self, now: float, cooldown: float) -> bool:
        """Spend the budget (``True``) unless it was spent less than ``cooldown`` ago."""
        with self._lock:
            if self._next is not None and now < self._next:
                return False
            self._before, self._next = self._next, now + cooldown
            return True

    def give_back(self) -> None:
        """Undo the last :meth:`take`: its refetch was never sent (the caller holds the single flight)."""
        with self._lock:
            self._next = self._before

    def refused_by_fleet(self, now: float, cooldown: float) -> None:
        """Another process spent the fleet's budget: ask the fleet again soon, not a cooldown later."""
        with self._lock:
            self._next = now + min(cooldown, FLEET_RETRY)


class FailureMemory:
    """The last fetch attempt (any kind) and whether it failed."""

    def __init__(self) -> None:
        self.attempt: float | None = None  # bookkeeping clock
        self.ok = True
        self.error: BaseException | None = None

    def record(self, started: float, error: BaseException | None) -> None:
        self.attempt, self.ok, self.error = started, error is None, error

    def blocked(self, now: float, cooldown: float) -> bool:
        """Whether the last attempt failed less than ``cooldown`` ago (not retried sooner)."""
        return not self.ok and self.attempt is not None and now - self.attempt < cooldown


class FleetReads(Generic[T]):
    """Single-flight, rate-limited reads: each caller gets the answer of a read begun after it arrived."""

    def __init__(self, interval: float = FLEET_READ_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._started = 0  # reads begun
        self._last = -float("inf")  # elapsed() when the last read began
        self._answer: T | None = None
        self.reads = 0  # reads made (tests and the soak count them)

    def read(self, fetch: Callable[[], T | None], deadline: float) -> T | None:
        """``fetch()``'s answer from a read that began after this call; ``None`` past ``deadline``."""
        need = self._started + 1  # a read in progress now began before us: its answer is too old
        if not self._lock.acquire(timeout=max(0.0, deadline - elapsed())):
            return None
        try:
            if self._started >= need:
                return self._answer  # a read began after we arrived and has finished
            wait = self._last + self.interval - elapsed()
            if wait > 0:
                if elapsed() + wait > deadline:
                    return None
                time.sleep(wait)
            self._started += 1
            self._last = elapsed()
            self.reads += 1
            self._answer = None
            self._answer = fetch()
            return self._answer
        finally:
            self._lock.release()


def await_fleet(poll: Callable[[], T | None], fetching: Callable[[], bool], deadline: float) -> T | None:
    """Wait for the set another process's fetch publishes: ``poll()`` until it answers, while
    ``fetching()`` says that fetch is in flight (looked at once more after one :data:`FLEET_POLL`,
    the gap between that process taking the budget and taking the lock), never past ``deadline``."""
    for round_ in range(10_000):  # bounded by the deadline long before this
        in_flight = round_ == 0 or fetching()  # looked at before the poll: a publish in between is seen
        found = poll()
        if found is not None:
            return found
        if not in_flight:
            return None  # nobody is fetching: the fetch that spent the budget is over
        if elapsed() + FLEET_POLL > deadline:
            return None
        time.sleep(FLEET_POLL)
    return None  # pragma: no cover
