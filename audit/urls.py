from django.urls import path

from audit import views

urlpatterns = [
    path("", views.deletion_list, name="deletion_list"),
    path("<int:pk>/restore", views.deletion_restore, name="deletion_restore"),
]
