"""Our own pages for requests Django refuses before any view runs."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from audit.records import FREE_TEXT_MAX


def bad_request(request, exception=None):
    """A 400, or a 413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE: a page that says what
    happened, that nothing was saved, and leads back to where the user was."""
    if isinstance(exception, RequestDataTooBig):
        context = {
            "limit_mb": settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 2**20,
            "text_max": FREE_TEXT_MAX,
            "back": _same_site_referer(request),
        }
        return render(request, "413.html", context, status=413)
    return render(request, "400.html", {"back": _same_site_referer(request)}, status=400)


def _same_site_referer(request):
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
        return referer
    return ""
