from django.contrib import messages
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from exchange import services
from exchange.access import get_upload_for, require_clinic_admin
from exchange.forms import ExportForm, SizeLimitHandler, UploadForm
from exchange.models import CaseloadUpload

COUNT_LABELS = [
    ("users", "People"),
    ("supervision", "Supervision links"),
    ("clients", "Clients"),
    ("sessions", "Sessions"),
    ("ruptures", "Ruptures"),
    ("attempts", "Repair attempts"),
]
# The page lists this many problems; the full report is a download.
PROBLEMS_SHOWN = 500
RECENT_UPLOADS = 10


@require_GET
def exchange_home(request):
    require_clinic_admin(request.user)
    return _home(request, UploadForm(), ExportForm())


def _home(request, upload_form, export_form, status=200):
    context = {
        "upload_form": upload_form,
        "export_form": export_form,
        "uploads": CaseloadUpload.objects.of(request.user).defer("content", "problems")[
            :RECENT_UPLOADS
        ],
        "exports_per_window": services.EXPORTS_PER_WINDOW,
    }
    return render(request, "exchange/exchange.html", context, status=status)


@csrf_exempt
@require_POST
def upload_new(request):
    # The size limit has to be in place before anything reads the body, and the CSRF
    # check reads it; so the check runs after, in _upload_new (Django's documented way).
    require_clinic_admin(request.user)
    handler = SizeLimitHandler(request)
    request.upload_handlers.insert(0, handler)
    return _upload_new(request, handler)


@csrf_protect
def _upload_new(request, handler):
    form = UploadForm(request.POST, request.FILES, limit_handler=handler)
    if not form.is_valid():
        return _home(request, form, ExportForm(), status=400)
    upload = form.cleaned_data["file"]
    upload = services.check_upload(request=request, filename=upload.name, data=upload.read())
    return redirect(upload)


@require_GET
def upload_detail(request, pk):
    require_clinic_admin(request.user)
    upload = get_upload_for(request.user, pk)
    context = {
        "upload": upload,
        "problems": upload.problems[:PROBLEMS_SHOWN],
        "more_problems": max(0, len(upload.problems) - PROBLEMS_SHOWN),
        "counts": [
            (label, upload.counts[name]) for name, label in COUNT_LABELS if name in upload.counts
        ],
    }
    return render(request, "exchange/upload.html", context)


@require_GET
def upload_report(request, pk):
    require_clinic_admin(request.user)
    upload = get_upload_for(request.user, pk)
    lines = [f"{path}: {message}\n" for path, message in upload.problems]
    response = HttpResponse(
        "".join(lines) or "No problems.\n", content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="caseload-upload-{upload.pk}-problems.txt"'
    )
    return response


@require_POST
def upload_apply(request, pk):
    require_clinic_admin(request.user)
    upload = get_upload_for(request.user, pk)
    result = services.apply_upload(request=request, upload_id=upload.pk)
    if result is None:
        messages.error(
            request, "This file is no longer waiting to be applied; upload it again if needed."
        )
    elif result.applied:
        messages.success(request, "The caseload file was imported.")
    else:
        messages.error(
            request,
            "The database changed since the file was checked, and now the file "
            "has problems. Nothing was imported.",
        )
    return redirect(upload)


@require_POST
def upload_discard(request, pk):
    require_clinic_admin(request.user)
    upload = get_upload_for(request.user, pk)
    if services.discard_upload(upload=upload):
        messages.success(request, "The uploaded file was discarded; nothing was imported.")
    return redirect("exchange")


@require_POST
def export_download(request):
    require_clinic_admin(request.user)
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _home(request, UploadForm(), form, status=400)
    deidentify = form.cleaned_data["kind"] == "pseudonymised"
    try:
        out, _counts = services.export_for_download(request=request, deidentify=deidentify)
    except services.ExportLimited as limited:
        messages.error(
            request,
            (
                f"You have downloaded {services.EXPORTS_PER_WINDOW} exports in the last hour, "
                "the most allowed. The next one is possible from "
                f"{timezone.localtime(limited.next_at):%H:%M}."
            ),
        )
        return redirect("exchange")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    name = f"caseload-{stamp}{'-pseudonymised' if deidentify else '-without-free-text'}.json"
    return FileResponse(out, as_attachment=True, filename=name, content_type="application/json")
