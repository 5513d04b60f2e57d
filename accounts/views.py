import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRedirect

from accounts.middleware import SIGNED_IN_AT
from accounts.models import NAME_FIELDS, Role, User, name_fields, supervisee_ids
from config import folds
from config.lookups import AnyOf
from reminders.models import Flag, FlagReason
from ruptures.models import RuptureEvent, open_ruptures_of_client
from sessions.models import Client, ClientStatus, TherapySession
from supervision.models import SupervisionNote

UPCOMING_DAYS = 7
# Longer lists on the home page show this many rows first, the most pressing, and a link
# to the rest with their count: a busy caseload's home stays one screen to scan, and
# costs no more to draw than a quiet one's.
# A supervisor's escalated flags fold within each supervisee's list ("escalated": that
# many of each): the soonest of every supervisee in view, so one busy caseload hides no
# one else's.
SHOWN_AT_FIRST = {"awaiting": 5, "agenda": 5, "notes": 5, "stalled": 5, "open": 10, "escalated": 3}
# A supervisor's note on one of the therapist's ruptures is shown on their home this long.
NOTES_DAYS = 14


@require_GET
def home(request):
    user = request.user
    unfolded = request.GET.get("all", "")
    if user.role == Role.SUPERVISOR:
        return render(request, "accounts/home_supervisor.html", supervisor_home(user, unfolded=unfolded))
    if user.role == Role.ADMIN:
        return render(request, "accounts/home_admin.html", admin_home())
    return render(request, "accounts/home_therapist.html", therapist_home(user, unfolded=unfolded))


def fold(queryset, name, unfolded=""):
    """A home list's first rows and its length (config.folds); `unfolded` names the list
    shown whole (?all=open)."""
    return folds.fold(queryset, SHOWN_AT_FIRST[name], whole=name == unfolded)


def flag_summary(agenda, shown):
    """What the agenda's count line says of the flags under the coming sessions: open
    ruptures and client checks apart (a check's flag is not a rupture), and how many sit
    under the sessions a fold hides (`shown`: those in view), escalated ones apart, so
    nothing flagged is out of view without a word."""
    flags = [flag for session in agenda for flag in session.home_flags]
    hidden = [flag for session in agenda[len(shown):] for flag in session.home_flags]
    ruptures = sum(flag.reason == FlagReason.RUPTURE for flag in flags)
    return {"ruptures": ruptures, "checks": len(flags) - ruptures,
            "folded": len(hidden), "escalated": sum(flag.escalated for flag in hidden)}


def therapist_home(user, now=None, unfolded=""):
    """What needs doing now first: the sessions just held, then the coming ones with
    their flags, then the open ruptures by whose session comes first."""
    now = now or timezone.now()
    # Each list loads only the columns it shows: a home page is opened many times a day,
    # and the minimum necessary of a client's record is what it names (tests/test_home.py
    # holds the lists to a fixed number of queries, which a column read late would break).
    sessions = TherapySession.objects.editable_by(user).select_related("client").only(
        "starts_at", "status", "client__code"
    )
    next_session = (
        TherapySession.objects.upcoming(now)
        .filter(client=OuterRef("session__client"))
        .order_by("starts_at")
        .values("starts_at")[:1]
    )
    # The whole week's agenda: the count line sums the flags under the folded sessions too.
    agenda = list(
        sessions.upcoming(now)
        .filter(starts_at__lt=now + timedelta(days=UPCOMING_DAYS))
        .annotate(open_ruptures=Subquery(open_ruptures_of_client("client")))
        .order_by("starts_at", "pk")
    )
    flags = list(Flag.objects.editable_by(user).upcoming(now).under_their_sessions())
    flags_by_session = {}
    for flag in flags:
        flags_by_session.setdefault(flag.session_id, []).append(flag)
    for session in agenda:
        session.home_flags = flags_by_session.get(session.pk, [])
    agenda_fold = folds.fold_rows(agenda, SHOWN_AT_FIRST["agenda"], whole=unfolded == "agenda")
    return {
        # The session just held comes first: it is the one to log before the next client.
        "awaiting_log": fold(sessions.awaiting_log(now).order_by("-starts_at", "-pk"), "awaiting", unfolded),
        "agenda": agenda_fold,
        "flag_summary": flag_summary(agenda, agenda_fold.rows),
        "open_ruptures": fold(
            RuptureEvent.objects.open_in_caseload(user, write=True)
            .select_related("session__client")
            .only("kind", "intensity", "repair_status", "plan", "session__starts_at", "session__client__code")
            .annotate(next_session_at=Subquery(next_session))
            .order_by(F("next_session_at").asc(nulls_last=True), "-intensity", "session__starts_at", "pk"),
            "open", unfolded,
        ),
        "flags": flags,
        "new_notes": fold(
            SupervisionNote.objects.editable_by(user).filter(created_at__gte=now - timedelta(days=NOTES_DAYS))
            # The client through the rupture's copy, the join editable_by filters on.
            .select_related("supervisor", "rupture__session", "rupture__session_client")
            .only("comment", "created_at", "rupture__kind", "rupture__session__starts_at",
                  "rupture__session_client__code", *name_fields("supervisor"))
            .order_by("-created_at", "-pk"),
            "notes", unfolded,
        ),
        "notes_days": NOTES_DAYS,
        # No session to be flagged before: open ruptures with no next step.
        "stalled": fold(
            Flag.objects.stalled_visible_to(user).without_next_session(now).stalled_listing(), "stalled", unfolded
        ),
        "now": now,
        "upcoming_days": UPCOMING_DAYS,
    }


def supervisor_home(user, unfolded=""):
    # Subqueries through the default managers: a join past them would count deleted rows.
    active = (
        Client.objects.filter(therapist=OuterRef("pk"), status=ClientStatus.ACTIVE)
        .order_by().values("therapist").annotate(n=Count("pk")).values("n")
    )
    open_ruptures = (
        RuptureEvent.objects.open().filter(session_client__therapist=OuterRef("pk"))
        .order_by().values("session_client__therapist").annotate(n=Count("pk")).values("n")
    )
    supervisees = (
        User.objects.filter(pk__in=supervisee_ids(user)).only(*NAME_FIELDS)
        .annotate(
            active_clients=Coalesce(Subquery(active), 0),
            open_ruptures=Coalesce(Subquery(open_ruptures), 0),
        )
        .order_by("last_name", "username")
    )
    # The supervisees' clients as keys first, through the therapist index (their links
    # read into one array: `therapist__in=<subquery>` read every client of the clinic).
    clients = Client.objects.filter(AnyOf(F("therapist"), ArraySubquery(supervisee_ids(user))))
    escalated_flags = folds.fold_groups(
        Flag.objects.visible_to(user).of_clients(clients.values_list("pk", flat=True))
        .escalated().upcoming().by_supervisee(),
        "session__client__therapist", SHOWN_AT_FIRST["escalated"], whole=unfolded == "escalated",
    )
    return {
        "risks": recent_risks(user),
        "risk_days": settings.RISK_ALERT_DAYS,
        "supervisees": supervisees,
        "escalated_flags": escalated_flags,
        "stalled": Flag.objects.stalled_visible_to(user).escalated().without_next_session().stalled_listing(),
        "stalled_days": settings.STALLED_ESCALATE_DAYS,
    }


def recent_risks(user, now=None):
    """The supervisees' risk concerns that are news, newest first: what the sweep alerts
    the supervisor of, by the same definition (6b)."""
    return (
        RuptureEvent.objects.visible_to(user).risk_news(now)
        .select_related("session__client__therapist")
        # What the table prints: not the client's name, the rupture's narrative, or the
        # therapist's password hash.
        .only("kind", "intensity", "risk", "session__starts_at", "session__client__code",
              *name_fields("session__client__therapist"))
        .newest_news_first()
    )


def admin_home():
    # Counts only: an admin manages people and assignments, never reads clinical text.
    by_role = dict(User.objects.filter(is_active=True).values_list("role").annotate(n=Count("pk")))
    return {
        "people": [(label, by_role.get(value, 0)) for value, label in Role.choices],
        "clients": Client.objects.filter(status=ClientStatus.ACTIVE).count(),
    }


def locked_out(request, credentials, *args, **kwargs):
    """django-axes' lockout page: says when the pause ends, in the clinic's time."""
    cooloff = settings.AXES_COOLOFF_TIME
    context = {"cooloff_minutes": int(cooloff.total_seconds() // 60), "try_again_at": timezone.now() + cooloff}
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(reverse("login"))
    return render(request, "registration/locked_out.html", context, status=429)


class SignInView(LoginView):
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        # The 12-hour limit counts from here (accounts.middleware.SessionLimitsMiddleware).
        self.request.session[SIGNED_IN_AT] = time.time()
        return response


def csrf_failure(request, reason=""):
    """An expired form: say so plainly (Django's own page needs inline styles the CSP forbids)."""
    return render(request, "403_csrf.html", status=403)
