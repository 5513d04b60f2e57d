from datetime import date, timedelta

from django import forms
from django.utils import timezone

from ruptures.models import Kind
from supervision.measures import Period
from supervision.models import NOTE_MAX_LENGTH, SupervisionNote

PRESET_WEEKS = {"4": 4, "12": 12, "26": 26}
PERIOD_CHOICES = [("4", "Last 4 weeks"), ("12", "Last 12 weeks"), ("26", "Last 26 weeks"),
                  ("custom", "Custom dates")]
DEFAULT_PERIOD = "12"
# Far enough back for any clinic's history, near enough that date arithmetic never overflows.
EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)


def _day(d):
    return f"{d.day} {d:%b %Y}"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


def _date_field(label):
    return forms.DateField(
        label=label, required=False, widget=DateInput(), input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 2026-09-01."},
    )


class FiltersForm(forms.Form):
    """The dashboard's filters and sort order, all read from (and kept in) the URL."""

    period = forms.ChoiceField(
        choices=PERIOD_CHOICES, required=False,
        error_messages={"invalid_choice": "Choose one of the listed periods."},
    )
    start = _date_field("From")
    end = _date_field("To")
    supervisee = forms.ChoiceField(
        required=False, label="Supervisee",
        error_messages={"invalid_choice": "Choose one of the listed people."},
    )
    kind = forms.ChoiceField(
        choices=[("", "Any kind"), *Kind.choices], required=False, label="Kind",
        error_messages={"invalid_choice": "Choose withdrawal, confrontation or any kind."},
    )
    sort = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data, *, people=None, person_label="Supervisee", sort_keys=(), today=None):
        data = data.copy()
        if not any(data.get(name) for name in ("period", "start", "end")):
            data["period"] = DEFAULT_PERIOD  # so the form shows the period in force
        super().__init__(data)
        self.today = today or timezone.localdate()
        if people is None:
            del self.fields["supervisee"]
        else:
            self.fields["supervisee"].label = person_label
            self.fields["supervisee"].choices = [("", "Everyone"), *people]
        self.sort_keys = {k for key in sort_keys for k in (key, f"-{key}")}
        self.sort_warning = ""

    def clean_sort(self):
        # A bad sort order is no reason to withhold the figures: say so and sort by name.
        sort = self.cleaned_data.get("sort") or "name"
        if sort not in self.sort_keys:
            self.sort_warning = (
                "That is not a column of this table, so the rows are sorted by name."
            )
            return "name"
        return sort

    def clean(self):
        cleaned = super().clean()
        if "period" in self.errors:
            return cleaned
        start, end = cleaned.get("start"), cleaned.get("end")
        period = cleaned.get("period") or ("custom" if start or end else DEFAULT_PERIOD)
        cleaned["period"] = period
        if period in PRESET_WEEKS:
            first = self.today - timedelta(weeks=PRESET_WEEKS[period]) + timedelta(days=1)
            cleaned["range"] = Period(first, self.today)
            return cleaned
        if "start" in self.errors or "end" in self.errors:
            return cleaned
        if start is None:
            self.add_error("start", "Enter the first day of the custom period.")
        if end is None:
            self.add_error("end", "Enter the last day of the custom period.")
        for name, day in (("start", start), ("end", end)):
            if day is not None and not EARLIEST <= day <= LATEST:
                self.add_error(name, f"Choose a date from {_day(EARLIEST)} to {_day(LATEST)}.")
        if start and end and start > end and not self.errors:
            self.add_error("end", "The last day must be on or after the first day.")
        if not self.errors:
            cleaned["range"] = Period(start, end)
        return cleaned


class SupervisionNoteForm(forms.ModelForm):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": NOTE_MAX_LENGTH}),
        max_length=NOTE_MAX_LENGTH,
        help_text=f"What was discussed, or what to try next. Up to {NOTE_MAX_LENGTH} characters; "
                  "the therapist sees it on this rupture.",
        error_messages={"required": "Write a short comment on what was discussed."},
    )

    class Meta:
        model = SupervisionNote
        fields = ["comment"]
