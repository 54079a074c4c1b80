"""The demand refetch: a set that has what a token needs (an unknown kid, a key replaced under its
kid), within the bound of docs/resilience.md, "The refetch policy and its bound".

:class:`DemandRefetch` looks, in order, at a set refreshed since the request looked, the fleet's newer
set (one bounded read), the result of a refresh in flight (waited for until the request's deadline),
then, budget permitting (:class:`~simplejwt_patches.refetch.DemandBudget`, and the fleet's with a
shared cache), makes one demand refetch -- or, when another process spent the fleet's budget, waits
for the set that process publishes.
"""

from __future__ import annotations

from collections.abc import Callable

from .conf import Options
from .deadline import fetch_time_left, unsent_without_idp_failure
from .fleet import Fleet
from .keyset import KeySet
from .refetch import DemandBudget
from .refresher import Now, Refresher
from .refusals import refresh_timed_out

__all__ = ["DemandRefetch"]


class DemandRefetch:
    """Demand refetches of one client's set: at most one per ``JWKS_REFETCH_COOLDOWN`` (per fleet)."""

    def __init__(self, refresher: Refresher, fleet: Fleet) -> None:
        self._refresher = refresher
        self._fleet = fleet
        self.budget = DemandBudget()  # this process's (the fleet's is in the shared cache)

    def __call__(self, options: Options, now: Now, wanted: Callable[[KeySet], bool], deadline: float) -> KeySet | None:
        """A set for which ``wanted(keyset)`` holds, or ``None`` (the bound allows no fetch for it)."""
        refresher, cooldown = self._refresher, options.refetch_cooldown
        keyset = refresher.keyset
        if keyset is not None and wanted(keyset):
            return keyset  # refreshed meanwhile
        if options.shared_cache:
            adopted = self._fleet.newer(options, now, refresher, deadline)
            if adopted is not None and wanted(adopted):
                return adopted
        if not refresher.acquire(deadline):
            raise refresh_timed_out(options)
        try:
            keyset = refresher.keyset
            if keyset is not None and wanted(keyset):
                return keyset  # the refresh this request waited for has it
            if refresher.memory.blocked(now[0], cooldown):
                return None
            if not fetch_time_left(options.timeout, deadline):
                raise refresh_timed_out(options)  # no time left to fetch in: the budget stays unspent
            if not self.budget.take(now[0], cooldown):
                return None  # spent by a fetch this process made (or waited for) less than a cooldown ago
            if options.shared_cache and self._fleet.take_budget(options) is False:
                self.budget.refused_by_fleet(now[0], cooldown)
                return self._fleet.published(options, now, refresher, deadline)
            try:
                return refresher.attempt(options, now, demand=True)
            except Exception as exc:
                if unsent_without_idp_failure(exc):  # the time went to the shared cache: nothing was sent,
                    self.budget.give_back()  # so nothing was spent (the fleet's too, for the next process)
                    if options.shared_cache:
                        self._fleet.give_back_budget(options)
                raise
        finally:
            refresher.release()
