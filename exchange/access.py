"""The one way views reach the exchange: clinic admins only, each to their own uploads."""

from django.http import Http404
from django.shortcuts import get_object_or_404

from exchange.models import CaseloadUpload


def require_clinic_admin(user):
    # A 404, like every record a person may not reach: the page's existence is not confirmed.
    if not user.is_authenticated or not user.is_clinic_admin:
        raise Http404


def get_upload_for(user, pk, *, with_content=False):
    uploads = CaseloadUpload.objects.of(user)
    if not with_content:
        uploads = uploads.defer("content")
    return get_object_or_404(uploads, pk=pk)
