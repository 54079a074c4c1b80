"""Every read of the shared cache goes to the server that takes its writes (review of the lock protocol).

With several servers in ``LOCATION``, Django's RedisCache and django-redis send reads to a replica. The
package reads the lock, the budget and the entry to decide what to write, and a replica that lags showed a
lock that was not there yet, or missed the set just published, so each process fetched again. A second,
empty redis-server stands for a replica that has not caught up (Django reads from ``LOCATION[1:]``).
"""

from __future__ import annotations

import weakref

import pytest
from django.conf import settings
from django.test import override_settings

from simplejwt_patches.conf import get_options
from simplejwt_patches.fleet import Fleet
from simplejwt_patches.refresher import Refresher
from tests.test_keysource_parts import client_of, now_wall

pytestmark = [pytest.mark.django_db, pytest.mark.fixer("pyjwt.client.key-source")]


def test_a_lagging_replica_never_makes_a_process_fetch_the_published_set_again(idp, redis):
    from tests.conftest import spawn_redis

    with spawn_redis() as (_, replica):
        caches = {**settings.CACHES, "jwks": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                              "LOCATION": [redis, replica]}}  # fmt: skip
        conf = {"JWKS_REFRESH_AHEAD": 0, "JWKS_SHARED_CACHE": "jwks"}
        with override_settings(CACHES=caches, SIMPLE_JWT_PATCHES=conf):
            opts = get_options()
            clients = client_of(idp), client_of(idp)
            first, second = (Refresher(f.fetch, f.stale) for f in (Fleet(weakref.ref(c)) for c in clients))
            published = first.attempt(opts, now_wall())  # fetched and published (to the primary)
            adopted = second.attempt(opts, now_wall())
    assert adopted.fetched_wall == published.fetched_wall  # the primary's entry, not a fetch of its own
    assert len(idp.jwks_requests()) == 1
