from django.apps import AppConfig


class SupervisionConfig(AppConfig):
    name = "supervision"
    verbose_name = "Supervision"

    def ready(self):
        from ruptures.history import register
        from supervision.history import supervision_entries

        register(supervision_entries)
