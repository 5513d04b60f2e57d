"""The one way views reach ruptures: same rule as sessions.access, 404 for the rest."""

from django.shortcuts import get_object_or_404

from ruptures.models import RuptureEvent


def get_rupture_for(user, pk, *, write=False):
    ruptures = (
        RuptureEvent.objects.editable_by(user) if write else RuptureEvent.objects.visible_to(user)
    )
    return get_object_or_404(
        ruptures.select_related("session__client", "session__therapist", "created_by", "updated_by"),
        pk=pk,
    )
