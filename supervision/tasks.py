"""The whole clinic's dashboard figures, refreshed in the background.

The admins' dashboard aggregates every caseload of the clinic, which costs more the
larger the clinic; computed on a page request it would make that request as slow as
the clinic is large. Beat runs `refresh_clinic_figures` every
SUPERVISION_CLINIC_REFRESH_SECONDS and keeps its figures (for the default filters) a
little longer than that, so the page reads them from the cache and shows when they were
taken. Other filters are computed on request, as a supervisor's are.
"""

from celery import shared_task
from django.conf import settings


@shared_task(name="supervision.refresh_clinic_figures")
def refresh_clinic_figures() -> dict:
    from accounts.models import Role, User
    from supervision.cache import keep_fresh
    from supervision.forms import FiltersForm
    from supervision.views import CLINIC_SETS, clinic_team

    if settings.SUPERVISION_CACHE_SECONDS <= 0:
        return {"refreshed": 0}  # nothing is kept, so there is nothing to refresh
    admins = list(User.objects.filter(role=Role.ADMIN, is_active=True))
    if not admins:
        return {"refreshed": 0}
    people = clinic_team()
    form = FiltersForm({}, people=[(p.username, str(p)) for p in people])
    if not form.is_valid():  # the defaults are always valid; this guards a future change
        return {"refreshed": 0}
    seconds = settings.SUPERVISION_CLINIC_REFRESH_SECONDS + settings.SUPERVISION_CACHE_SECONDS
    keep_fresh(admins, [(p.pk, p.supervisor_id) for p in people], form.cleaned_data["range"],
               form.cleaned_data["kind"], CLINIC_SETS, seconds=seconds)
    return {"refreshed": len(admins), "therapists": len(people)}
