from django.urls import path
from rest_framework_simplejwt.views import TokenRefreshSlidingView, TokenRefreshView, TokenVerifyView

from .views import Pid, WhoAmI

urlpatterns = [
    path("api/whoami", WhoAmI.as_view()),
    path("api/pid", Pid.as_view()),
    path("api/token/verify", TokenVerifyView.as_view()),
    path("api/token/refresh", TokenRefreshView.as_view()),
    path("api/token/refresh-sliding", TokenRefreshSlidingView.as_view()),
]
