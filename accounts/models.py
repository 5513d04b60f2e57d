from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as BaseUserManager
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


class Role(models.TextChoices):
    THERAPIST = "therapist", "Therapist"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Clinic admin"


class UserManager(BaseUserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # Operators run the system: a clinic admin's role and pages, plus everything
        # only a superuser may change in the admin site (README, "Who sees what").
        from accounts.services import set_role

        extra_fields.setdefault("role", Role.ADMIN)
        user = super().create_superuser(username, email, password, **extra_fields)
        return set_role(user=user, role=user.role)


class User(AbstractUser):
    # The role decides what a person may see; the group of the same name carries the
    # Django permissions that the admin site checks (kept in step by services.set_role).
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.THERAPIST)
    display_name = models.CharField(max_length=150, blank=True)
    # Moving this on ends every session the person has open (get_session_auth_hash):
    # bumped when a second factor is added or removed, and by an admin's resets.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)
    # The address before an admin last changed it: warnings about the account go there too.
    previous_email = models.EmailField(blank=True, editable=False)
    email_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = UserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="user_role_valid"),
        ]

    def __str__(self):
        return self.display_name or self.get_full_name() or self.username

    def _get_session_auth_hash(self, secret=None):
        if not self.session_epoch:
            return super()._get_session_auth_hash(secret=secret)  # sessions from before epochs stay valid
        return salted_hmac(
            "accounts.User.get_session_auth_hash", f"{self.password}:{self.session_epoch}",
            secret=secret, algorithm="sha256",
        ).hexdigest()

    @property
    def is_therapist(self):
        return self.role == Role.THERAPIST

    @property
    def is_supervisor(self):
        return self.role == Role.SUPERVISOR

    @property
    def is_clinic_admin(self):
        return self.role == Role.ADMIN


class SupervisionLinkQuerySet(models.QuerySet):
    def active(self, on=None):
        on = on or timezone.localdate()
        return self.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on), starts_on__lte=on)


class SupervisionLink(models.Model):
    supervisor = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="supervisee_links",
        limit_choices_to={"role": Role.SUPERVISOR},
    )
    therapist = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="supervisor_links",
        limit_choices_to={"role": Role.THERAPIST},
    )
    starts_on = models.DateField(default=timezone.localdate)
    ends_on = models.DateField(null=True, blank=True)

    objects = SupervisionLinkQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(supervisor=models.F("therapist")), name="supervision_not_self"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="supervision_ends_after_start",
            ),
            # One open-ended supervisor per therapist at a time.
            models.UniqueConstraint(
                fields=["therapist"], condition=Q(ends_on__isnull=True),
                name="supervision_one_open_link_per_therapist",
            ),
        ]

    def __str__(self):
        return f"{self.supervisor} supervises {self.therapist}"


# What str(user) reads: a list naming people loads these columns of them and no others
# (not the password hash, never shown).
NAME_FIELDS = ("display_name", "first_name", "last_name", "username")


def name_fields(via):
    """NAME_FIELDS reached through the relation `via`, for QuerySet.only()."""
    return [f"{via}__{name}" for name in NAME_FIELDS]


def supervisee_ids(supervisor):
    """Subquery of the therapists a supervisor oversees today."""
    return SupervisionLink.objects.active().filter(supervisor=supervisor).values("therapist_id")


class RecoveryCodes(TimestampMixin, ThrottlingMixin, Device):
    """One-time recovery codes for a lost phone, kept as password hashes.

    django-otp's own static device stores its codes in clear text, where anyone who can
    read the database could sign in past the second factor; these are checked like
    passwords and struck off once used.
    """

    hashes = models.JSONField(default=list)

    class Meta(Device.Meta):
        verbose_name = "recovery codes"
        verbose_name_plural = "recovery codes"

    def get_throttle_factor(self):
        return 1

    def verify_token(self, token):
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = "".join(str(token).split()).lower()
        for index, hashed in enumerate(self.hashes):
            if check_password(token, hashed):
                del self.hashes[index]
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
                return True
        self.throttle_increment()
        return False
