"""Signals for metrics and breadcrumbs - wire Prometheus or Sentry without patching anything.

All are sent with ``send_robust`` semantics: a failing receiver is logged, never breaks
authentication. The sender is the class of the object involved (``PyJWKClient`` or
``JWTAuthentication``). No signal carries a token, a signature or a secret header value.

``jwks_fetched(sender, client, url, status, duration_ms, size, kids, issuer)``
    A managed JWKS client fetched the key set (``url`` without credentials or query); after a
    ``304 Not Modified``, ``size`` and ``kids`` are those of the cached set it revalidated.
    ``issuer`` is the trusted issuer (``ISSUERS``) whose keys these are, ``None`` for SimpleJWT's
    single ``JWK_URL``.
``jwks_fetch_failed(sender, client, url, status, reason, kind, exception, duration_ms, issuer)``
    A fetch failed; ``status`` is the HTTP status or ``None``; ``reason`` e.g. ``"HTTP 403 Forbidden"``;
    ``kind`` one of :data:`simplejwt_patches.failures.CATEGORIES` (``refused``, ``status``, ...).
``token_rejected(sender, reason_code, reason, kid, token_classes, root_cause, fingerprint, issuer)``
    ``JWTAuthentication`` rejected a token. ``reason_code`` is one of :data:`REASON_CODES`;
    ``fingerprint`` holds the unverified kid/alg/iss/aud/exp/jti and a SHA-256 prefix; ``issuer``
    is the trusted issuer the token's ``iss`` names (``None``: not a trusted one).

Example (Prometheus)::

    from django.dispatch import receiver
    from prometheus_client import Counter
    from simplejwt_patches.signals import jwks_fetch_failed, token_rejected

    REJECTED = Counter("jwt_rejected_total", "Rejected JWTs", ["reason"])

    @receiver(token_rejected)
    def count_rejection(sender, reason_code, **kwargs):
        REJECTED.labels(reason_code).inc()
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

from .failures import REASON_CODES as _REASON_CODES

__all__ = ["REASON_CODES", "jwks_fetch_failed", "jwks_fetched", "send", "token_rejected"]

logger = logging.getLogger("simplejwt_patches.signals")

jwks_fetched = Signal()
jwks_fetch_failed = Signal()
token_rejected = Signal()

#: ``token_rejected`` reason codes (declared with their client-safe texts in :mod:`.failures`).
REASON_CODES = _REASON_CODES


def send(signal: Signal, instance: Any, **kwargs: Any) -> None:
    """``send_robust`` and log receivers that raised (cheap when nobody listens)."""
    if not signal.receivers:
        return
    for receiver, result in signal.send_robust(sender=type(instance), **kwargs):
        if isinstance(result, Exception):
            logger.error("simplejwt_patches signal receiver %r raised %r", receiver, result)
