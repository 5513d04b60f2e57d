from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "reminders"
    verbose_name = "Reminders"

    def ready(self):
        from audit.signals import caseload_changed
        from reminders import checks  # noqa: F401  (registers the system checks)
        from reminders.services import sweep_on_change

        caseload_changed.connect(sweep_on_change, dispatch_uid="reminders.sweep_on_change")
