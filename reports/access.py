"""The one way report views reach a report or a made file."""

import uuid

from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import Role
from reports.models import ReportJob

REPORT_ROLES = (Role.ADMIN, Role.SUPERVISOR)


def require_reporter(user):
    """Admins (the whole clinic) and supervisors (their supervisees); a 404 for anyone else."""
    if not user.is_authenticated or user.role not in REPORT_ROLES:
        raise Http404


def get_job_for(user, job_id):
    """A made report, for the person who asked for it only."""
    require_reporter(user)
    if not isinstance(job_id, uuid.UUID):
        raise Http404
    return get_object_or_404(ReportJob.objects.for_requester(user).defer("content"), pk=job_id)
