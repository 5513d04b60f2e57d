import tempfile
import zipfile

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from audit.log import record
from audit.models import Action
from reports import services
from reports.access import get_job_for, require_reporter
from reports.formats import csv_bytes, xlsx_bytes
from reports.forms import ReportForm, ResearchForm, query_of
from reports.metrics import METRICS, RATE
from reports.models import JobStatus
from reports.report import build, n_text, value_text
from reports.research import copy_to
from reports.research import extracts as research_extracts


def _form(request, data):
    return ReportForm(data, is_admin=request.user.role == Role.ADMIN, min_cell=settings.REPORT_MIN_CELL)


@require_GET
def alliance(request):
    require_reporter(request.user)
    form = _form(request, request.GET)
    context = {"form": form, "metrics": METRICS, "min_cell": settings.REPORT_MIN_CELL,
               "is_admin": request.user.role == Role.ADMIN, "keep_days": settings.REPORT_KEEP_DAYS}
    if form.is_valid():
        filters = form.cleaned_data["filters"]
        report = build(request.user, filters, as_of=services.report_time())
        record(request, Action.VIEW, "alliance_report", detail=filters.as_dict())
        context.update(report=report, query=query_of(filters), tables=_tables(report))
    if request.htmx:
        return render(request, "reports/alliance.html#results", context)
    return render(request, "reports/alliance.html", context, status=400 if form.errors else 200)


def _tables(report):
    """The page's tables: the whole period by group, then each month for the first group."""
    def shown(metric, c):
        text = value_text(metric, c)
        if not c.value_hidden and c.value is not None and metric.kind == RATE:
            text = f"{c.value:.1%}"
        return {"value": text or "—", "n": n_text(c), "hidden": c.value_hidden, "metric": metric.slug}

    sections = {}
    for metric in METRICS:
        sections.setdefault(metric.section, []).append(metric)
    whole = [
        {"section": name, "metrics": metrics,
         "rows": [{"group": g, "cells": [shown(m, report.whole.cells[g][m.slug]) for m in metrics]}
                  for g in report.groups]}
        for name, metrics in sections.items()
    ]
    total = report.groups[0]
    months = [
        {"section": name, "metrics": metrics,
         "rows": [{"month": pf.period, "cells": [shown(m, pf.cells[total][m.slug]) for m in metrics]}
                  for pf in report.months]}
        for name, metrics in sections.items()
    ]
    return {"whole": whole, "months": months}


def _file(request, what, make, content_type, extension):
    require_reporter(request.user)
    form = _form(request, request.GET)
    if not form.is_valid():
        # The page shows each message beside its field.
        return alliance(request)
    filters = form.cleaned_data["filters"]
    report = build(request.user, filters, as_of=services.report_time())
    record(request, Action.EXPORT, "alliance_report", detail={**filters.as_dict(), "format": what})
    response = HttpResponse(make(report), content_type=content_type)
    name = f"alliance-report-{filters.period.start}-to-{filters.period.end}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
def alliance_csv(request):
    return _file(request, "csv", csv_bytes, "text/csv; charset=utf-8", "csv")


@require_GET
def alliance_xlsx(request):
    return _file(request, "xlsx", xlsx_bytes,
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")


@require_POST
def alliance_pdf(request):
    require_reporter(request.user)
    form = _form(request, request.POST)
    if not form.is_valid():
        context = {"form": form, "metrics": METRICS, "min_cell": settings.REPORT_MIN_CELL,
                   "is_admin": request.user.role == Role.ADMIN}
        return render(request, "reports/alliance.html", context, status=400)
    filters = form.cleaned_data["filters"]
    job = services.request_pdf(user=request.user, filters=filters)
    record(request, Action.EXPORT, "alliance_report", detail={**filters.as_dict(), "format": "pdf"})
    return redirect("report_job", job_id=job.pk)


@require_GET
def job(request, job_id):
    found = get_job_for(request.user, job_id)
    context = {"job": found, "waiting": found.status in (JobStatus.PENDING, JobStatus.RUNNING),
               "keep_days": settings.REPORT_KEEP_DAYS}
    if request.htmx:
        return render(request, "reports/job.html#status", context)
    return render(request, "reports/job.html", context)


@require_GET
def job_download(request, job_id):
    found = get_job_for(request.user, job_id)
    if found.status != JobStatus.DONE:
        return redirect("report_job", job_id=found.pk)
    record(request, Action.EXPORT, "alliance_report_pdf", key=str(found.pk), detail=found.filters)
    content = type(found).objects.filter(pk=found.pk).values_list("content", flat=True).get()
    response = HttpResponse(bytes(content), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    return response


@require_http_methods(["GET", "POST"])
def research(request):
    """The de-identified research extract, for clinic admins: a zip of the CSV files."""
    if not request.user.is_authenticated or request.user.role != Role.ADMIN:
        raise Http404
    form = ResearchForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        period = form.cleaned_data["period"]
        out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        sizes = {}
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for extract in research_extracts(period):
                with archive.open(extract.name, "w") as member:
                    sizes[extract.name] = copy_to(extract, member.write)
        record(request, Action.EXPORT, "research_extract",
               detail={"via": "web", "from": period.start.isoformat(), "to": period.end.isoformat(),
                       "files": sizes})
        out.seek(0)
        return FileResponse(out, as_attachment=True, content_type="application/zip",
                            filename=f"research-{period.start}-to-{period.end}.zip")
    status = 400 if request.method == "POST" else 200
    return render(request, "reports/research.html", {"form": form}, status=status)
