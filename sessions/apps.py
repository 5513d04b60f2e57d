from django.apps import AppConfig


class TherapySessionsConfig(AppConfig):
    # "sessions" is taken by django.contrib.sessions; the label keeps migrations,
    # tables and permissions apart. `makemigrations therapy_sessions`, never `sessions`.
    name = "sessions"
    label = "therapy_sessions"
    verbose_name = "Clients and sessions"
