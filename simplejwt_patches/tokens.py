"""Token classes for identity providers whose access tokens say ``typ: "Bearer"``."""

from __future__ import annotations

from rest_framework_simplejwt.tokens import AccessToken

__all__ = ["BearerAccessToken"]


class BearerAccessToken(AccessToken):
    """An access token whose type claim is ``"Bearer"`` (Keycloak).

    Use with ``SIMPLE_JWT = {"TOKEN_TYPE_CLAIM": "typ", "AUTH_TOKEN_CLASSES":
    ("simplejwt_patches.tokens.BearerAccessToken",), ...}``: Keycloak sends ``typ: "Bearer"``
    where SimpleJWT's ``AccessToken`` expects ``token_type: "access"``.
    """

    token_type = "Bearer"
