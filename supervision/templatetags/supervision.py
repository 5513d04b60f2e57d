from django import template

from accounts.models import Role
from supervision.forms import SupervisionNoteForm
from supervision.models import SupervisionNote

register = template.Library()


@register.inclusion_tag("supervision/rupture_notes.html", takes_context=True)
def supervision_notes(context, rupture):
    """The rupture page's "Supervision" section: the notes, and the supervisor's form.

    The rupture page is reached through ruptures.access.get_rupture_for, so whoever sees
    this is the rupture's therapist or their current supervisor.
    """
    user = context["request"].user
    return {
        "rupture": rupture,
        "notes": list(SupervisionNote.objects.for_rupture(rupture)),
        "form": SupervisionNoteForm() if user.role == Role.SUPERVISOR else None,
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def signed(value):
    """A change with its sign spelled out (+0.12, −0.05), or a dash when there is none."""
    if value is None:
        return "—"
    if round(value, 2) == 0:
        return "±0.00"
    return f"{'+' if value > 0 else '−'}{abs(value):.2f}"
