"""An app whose ready() imports rest_framework_simplejwt.state before simplejwt_patches runs."""

from django.apps import AppConfig

CLIENT_BEFORE_PATCHES: list[object] = []


class EarlyConfig(AppConfig):
    name = "tests.project.early"
    label = "sjp_early"

    def ready(self) -> None:
        from rest_framework_simplejwt import state

        CLIENT_BEFORE_PATCHES.append(state.token_backend.jwks_client)
