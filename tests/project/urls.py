from django.urls import path

from .views import Pid, WhoAmI

urlpatterns = [path("api/whoami", WhoAmI.as_view()), path("api/pid", Pid.as_view())]
