from django.urls import path

from sessions import views

urlpatterns = [
    path("", views.client_list, name="client_list"),
    path("new", views.client_new, name="client_new"),
    path("<str:code>/", views.client_detail, name="client_detail"),
    path("<str:code>/edit", views.client_edit, name="client_edit"),
    path("<str:code>/sessions/new", views.session_new, name="session_new"),
]
