import re
from datetime import date, timedelta

from django import forms
from django.utils import timezone

from reports.report import CLINIC, SUPERVISOR, THERAPIST, Filters, default_period
from ruptures.models import Kind
from supervision.forms import EARLIEST, LATEST, DateInput
from supervision.measures import Period

PERIOD_CHOICES = [("month", "A month"), ("quarter", "A quarter"), ("custom", "Custom dates")]
# Each month of a report is its own query: a bound on the months keeps a report's cost fixed.
MAX_MONTHS = 24


def _day(d):
    return f"{d.day} {d:%b %Y}"


class ReportForm(forms.Form):
    """The report's filters, all read from (and kept in) the URL."""

    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False, label="Period",
                               error_messages={"invalid_choice": "Choose a month, a quarter or custom dates."})
    month = forms.CharField(required=False, label="Month", help_text="YYYY-MM",
                            widget=forms.TextInput(attrs={"type": "month", "placeholder": "2026-11"}))
    quarter = forms.CharField(required=False, label="Quarter", help_text="YYYY-Q1 to YYYY-Q4",
                              widget=forms.TextInput(attrs={"placeholder": "2026-Q3", "size": 8}))
    start = forms.DateField(required=False, label="From", widget=DateInput(), input_formats=["%Y-%m-%d"],
                            error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 2026-09-01."})
    end = forms.DateField(required=False, label="To", widget=DateInput(), input_formats=["%Y-%m-%d"],
                          error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 2026-09-30."})
    by = forms.ChoiceField(
        required=False, label="Grouping",
        choices=[(CLINIC, "Whole clinic"), (SUPERVISOR, "By supervisor"), (THERAPIST, "By therapist")],
        error_messages={"invalid_choice": "Choose clinic, supervisor or therapist."},
    )
    kind = forms.ChoiceField(
        choices=[("", "Any kind"), *Kind.choices], required=False, label="Kind of rupture",
        error_messages={"invalid_choice": "Choose withdrawal, confrontation or any kind."},
    )
    pseudonymise = forms.BooleanField(required=False, label="Pseudonyms for therapists")

    def __init__(self, data, *, is_admin, min_cell, today=None):
        super().__init__(data)
        self.today = today or timezone.localdate()
        self.min_cell = min_cell
        if not is_admin:
            # A supervisor's report is about their own supervisees: no grouping by supervisor.
            self.fields["by"].choices = [c for c in self.fields["by"].choices if c[0] != SUPERVISOR]
        last = default_period(self.today)
        self.default_month = f"{last.start:%Y-%m}"

    def clean_month(self):
        text = self.cleaned_data["month"].strip()
        if not text:
            return None
        found = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not found or not 1 <= int(found[2]) <= 12:
            raise forms.ValidationError("Enter a month as YYYY-MM, for example 2026-11.")
        return _first_day(int(found[1]), int(found[2]))

    def clean_quarter(self):
        text = self.cleaned_data["quarter"].strip().upper()
        if not text:
            return None
        found = re.fullmatch(r"(\d{4})-?Q([1-4])", text)
        if not found:
            raise forms.ValidationError("Enter a quarter as YYYY-Qn, for example 2026-Q3.")
        return _first_day(int(found[1]), 3 * int(found[2]) - 2)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        kind = cleaned.get("period") or ("custom" if cleaned.get("start") or cleaned.get("end") else "month")
        cleaned["period"] = kind
        if kind == "month":
            first = cleaned.get("month") or default_period(self.today).start
            period = Period(first, _month_end(first))
        elif kind == "quarter":
            first = cleaned.get("quarter")
            if first is None:
                self.add_error("quarter", "Enter the quarter, for example 2026-Q3.")
                return cleaned
            period = Period(first, _month_end(first.replace(month=first.month + 2)))
        else:
            start, end = cleaned.get("start"), cleaned.get("end")
            if start is None:
                self.add_error("start", "Enter the first day of the custom period.")
            if end is None:
                self.add_error("end", "Enter the last day of the custom period.")
            if self.errors:
                return cleaned
            if start > end:
                self.add_error("end", "The last day must be on or after the first day.")
                return cleaned
            period = Period(start, end)
        for name, day in (("start", period.start), ("end", period.end)):
            if not EARLIEST <= day <= LATEST:
                field = name if kind == "custom" else kind
                self.add_error(field, f"Choose dates from {_day(EARLIEST)} to {_day(LATEST)}.")
                return cleaned
        months = (period.end.year - period.start.year) * 12 + period.end.month - period.start.month + 1
        if months > MAX_MONTHS:
            self.add_error("end" if kind == "custom" else kind,
                           f"A report covers at most {MAX_MONTHS} calendar months; choose a shorter period.")
            return cleaned
        cleaned["filters"] = Filters(
            period=period, by=cleaned.get("by") or CLINIC, kind=cleaned.get("kind") or "",
            pseudonymise=bool(cleaned.get("pseudonymise")), min_cell=self.min_cell,
        )
        return cleaned


def _first_day(year, month):
    # Checked here, before any date arithmetic: year 0 or 9999 would overflow it.
    if not EARLIEST.year <= year <= LATEST.year:
        raise forms.ValidationError(f"Choose a year from {EARLIEST.year} to {LATEST.year}.")
    return date(year, month, 1)


def _month_end(first):
    return (first.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def query_of(filters: Filters) -> str:
    """The filters as a custom-dates query string: links and downloads that keep them."""
    from urllib.parse import urlencode

    params = {"period": "custom", "start": filters.period.start.isoformat(),
              "end": filters.period.end.isoformat(), "by": filters.by}
    if filters.kind:
        params["kind"] = filters.kind
    if filters.pseudonymise:
        params["pseudonymise"] = "on"
    return urlencode(params)


class ResearchForm(forms.Form):
    start = forms.DateField(label="From", widget=DateInput(), input_formats=["%Y-%m-%d"],
                            error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 2026-01-01.",
                                            "required": "Enter the first day."})
    end = forms.DateField(label="To", widget=DateInput(), input_formats=["%Y-%m-%d"],
                          error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 2026-12-31.",
                                          "required": "Enter the last day."})

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        for name, day in (("start", start), ("end", end)):
            if day is not None and not EARLIEST <= day <= LATEST:
                self.add_error(name, f"Choose dates from {_day(EARLIEST)} to {_day(LATEST)}.")
        if start and end and start > end and not self.errors:
            self.add_error("end", "The last day must be on or after the first day.")
        if not self.errors:
            cleaned["period"] = Period(start, end)
        return cleaned
