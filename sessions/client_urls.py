from django.urls import path, register_converter

from audit.views import client_access_log
from sessions import views
from sessions.models import CASE_CODE_RE


class CaseCodeConverter:
    # Only a string that could be a case code reaches a view: anything else (a NUL
    # byte, a slash, a name typed into the address bar) is a 404 from the resolver.
    regex = CASE_CODE_RE.strip("^$")

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(CaseCodeConverter, "code")

urlpatterns = [
    path("", views.client_list, name="client_list"),
    path("new", views.client_new, name="client_new"),
    path("<code:code>/", views.client_detail, name="client_detail"),
    path("<code:code>/edit", views.client_edit, name="client_edit"),
    path("<code:code>/delete", views.client_delete, name="client_delete"),
    path("<code:code>/discharge", views.client_discharge, name="client_discharge"),
    path("<code:code>/sessions/new", views.session_new, name="session_new"),
    path("<code:code>/access-log", client_access_log, name="client_access_log"),
]
