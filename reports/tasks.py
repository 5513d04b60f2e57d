"""Celery's side of reports: thin wrappers taking ids and strings, returning no figures."""

from datetime import date

from celery import shared_task

from reports import services


@shared_task(name="reports.make_pdf")
def make_pdf(job_id: str) -> str:
    return services.make_pdf(job_id=job_id)


@shared_task(name="reports.remove_old")
def remove_old() -> int:
    return services.remove_old()


@shared_task(name="reports.monthly")
def monthly(today_iso: str | None = None) -> int:
    return services.monthly(today=date.fromisoformat(today_iso) if today_iso else None)
