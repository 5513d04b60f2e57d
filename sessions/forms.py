from datetime import timedelta

from django import forms
from django.utils import timezone

from sessions.models import Client, ClientStatus, Ending, SessionStatus, TherapySession


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = ["code", "name", "status", "started_on"]
        widgets = {"started_on": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The case code is the client's key in URLs and in caseload files.
            self.fields["code"].disabled = True
            self.fields["code"].help_text = "The case code cannot change once a client exists."
        else:
            self.fields["code"].help_text = "The clinic's case code, e.g. C-0042. Never a name."
        if self.instance.status != ClientStatus.DISCHARGED:
            # Discharging asks how the therapy ended and shows what is still open: its own form.
            self.fields["status"].choices = [
                c for c in self.fields["status"].choices if c[0] != ClientStatus.DISCHARGED
            ]
            self.fields["status"].help_text = "To discharge the client, use Discharge on the client's page."


class DischargeForm(forms.Form):
    ending = forms.ChoiceField(
        choices=Ending.choices, widget=forms.RadioSelect, label="How did the therapy end?",
        error_messages={"required": "Say how the therapy ended: the clinic's reports count endings."},
    )


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


SESSION_YEARS_AWAY = 10


class SessionForm(forms.ModelForm):
    status = forms.ChoiceField(
        choices=[(SessionStatus.SCHEDULED, "Scheduled"), (SessionStatus.HELD, "Held (already took place)")],
        initial=SessionStatus.SCHEDULED,
        widget=forms.RadioSelect,
    )

    class Meta:
        model = TherapySession
        fields = ["starts_at", "duration_minutes", "status", "note"]
        widgets = {
            "starts_at": DateTimeLocalInput(),
            "note": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"starts_at": "Starts at", "duration_minutes": "Length (minutes)"}

    def clean_starts_at(self):
        # A typo'd year is caught here; at the edges (year 1, 9999) it would also overflow
        # in PostgreSQL once converted from a time zone east or west of UTC: a 500.
        starts_at = self.cleaned_data["starts_at"]
        if abs(starts_at - timezone.now()) > timedelta(days=SESSION_YEARS_AWAY * 366):
            raise forms.ValidationError(
                f"Check the year: a session must be within {SESSION_YEARS_AWAY} years of today."
            )
        return starts_at

    def clean(self):
        cleaned = super().clean()
        starts_at, status = cleaned.get("starts_at"), cleaned.get("status")
        if starts_at and status:
            now = timezone.now()
            if status == SessionStatus.HELD and starts_at > now:
                self.add_error("starts_at", "A held session cannot start in the future.")
            if status == SessionStatus.SCHEDULED and starts_at < now:
                self.add_error(
                    "starts_at",
                    "A scheduled session must start in the future; mark a past session as held.",
                )
        return cleaned


class SessionStatusForm(forms.Form):
    status = forms.ChoiceField(choices=SessionStatus.choices)

    def __init__(self, *args, session, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session

    def clean_status(self):
        status = self.cleaned_data["status"]
        session = self.session
        in_future = session.starts_at > timezone.now()
        if status in (SessionStatus.HELD, SessionStatus.NO_SHOW) and in_future:
            self.add_error("status", "This session has not started yet.")
        if status == SessionStatus.SCHEDULED and not in_future:
            self.add_error("status", "A session in the past cannot go back to scheduled.")
        if status in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW) and session.ruptures.exists():
            self.add_error(
                "status", "Ruptures are logged for this session, so it took place: keep it held."
            )
        return status
