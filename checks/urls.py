from django.urls import path

from checks import views

urlpatterns = [
    path("<str:token>", views.client_check, name="client_check"),
]
