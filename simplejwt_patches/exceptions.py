"""Exceptions this package raises to DRF."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

__all__ = ["JWKSUnavailable"]


class JWKSUnavailable(exceptions.APIException):
    """503 with ``Retry-After`` when the identity provider's key set cannot be had.

    Raised instead of SimpleJWT's 401 only with ``SIMPLE_JWT_PATCHES["JWKS_FAILURE_STATUS"] = 503``,
    so clients retry instead of logging the user out because the IdP blipped. DRF's exception
    handler turns ``wait`` into the ``Retry-After`` header.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Token verification is temporarily unavailable; retry later.")
    default_code = "jwks_unavailable"

    def __init__(self, wait: int) -> None:
        # Same body shape as SimpleJWT's errors: {"detail": ..., "code": ...}.
        super().__init__({"detail": self.default_detail, "code": self.default_code})
        self.wait = wait
