from django import forms
from django.utils import timezone
from django.utils.formats import date_format

from ruptures import vocabulary as v
from ruptures.models import (
    ATTEMPT_OUTCOMES,
    Actor,
    InternalSignal,
    Kind,
    Marker,
    RepairAttempt,
    RepairStatus,
    Risk,
    RuptureEvent,
    Source,
    Stage,
    Strategy,
)
from sessions.models import SessionStatus

MISSING_VERSION = (
    "This change does not say which version of the rupture it started from, so nothing was saved: "
    "reload the rupture and make the change again."
)

class FirstChoiceFocused(forms.RadioSelect):
    """Radio buttons whose first option takes the focus when the page opens."""

    def create_option(self, *args, **kwargs):
        option = super().create_option(*args, **kwargs)
        if option["index"] == "0":
            option["attrs"]["autofocus"] = True
        return option


class RuptureForm(forms.ModelForm):
    """Ordered for the minute after a session: kind, markers, intensity, then the rest."""

    MULTI_FIELDS = ("markers", "internal_signals")

    kind = forms.ChoiceField(choices=Kind.choices, widget=forms.RadioSelect)
    actor = forms.ChoiceField(
        choices=Actor.choices, widget=forms.RadioSelect, initial=Actor.CLIENT,
        label="Who moved away or against?",
    )
    markers = forms.MultipleChoiceField(
        choices=Marker.choices, widget=forms.CheckboxSelectMultiple, required=False,
        label="What did you see?",
    )
    intensity = forms.TypedChoiceField(
        choices=[(i, str(i)) for i in range(1, 6)], coerce=int, widget=forms.RadioSelect,
        help_text="1 = barely noticeable, 5 = threatened the work.",
    )
    source = forms.ChoiceField(
        choices=Source.choices, widget=forms.RadioSelect, initial=Source.UNKNOWN,
        label="What do you think set it off?",
    )
    internal_signals = forms.MultipleChoiceField(
        choices=InternalSignal.choices, widget=forms.CheckboxSelectMultiple, required=False,
        label="What did you notice in yourself?",
    )
    risk = forms.ChoiceField(
        choices=Risk.choices, widget=forms.RadioSelect, required=False,
        label="Is there a risk concern?",
        help_text=(
            "Asked whenever hopelessness is marked at intensity 4 or 5. Any risk puts the "
            "clinic's risk protocol first and tells your supervisor at once."
        ),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = RuptureEvent
        fields = [
            "kind", "actor", "markers", "intensity", "minute", "source", "internal_signals",
            "internal_signals_other", "risk", "declined_relational_talk", "noticed", "hypothesis", "plan",
        ]
        widgets = {
            "noticed": forms.Textarea(attrs={"rows": 2}),
            "hypothesis": forms.Textarea(attrs={"rows": 2}),
            "plan": forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. Ask next session how my remark landed."}),
            "minute": forms.NumberInput(attrs={"min": 0, "max": v.SESSION_MAX_MINUTES, "inputmode": "numeric"}),
        }

    def __init__(self, *args, session, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        if self.instance.pk:
            # An edit names the version it started from, or it could silently undo another.
            self.fields["version"].initial = self.instance.version
            self.fields["version"].required = True
            self.fields["version"].error_messages["required"] = MISSING_VERSION
        elif not self.is_bound:
            # A new rupture is logged in the minute after a session: the page opens on its
            # first question rather than on the navigation.
            self.fields["kind"].widget = FirstChoiceFocused(choices=Kind.choices)

    @property
    def chosen_kind(self):
        """The kind whose markers to offer first: submitted, else the saved one."""
        raw = self.data.get("kind") if self.is_bound else self.initial.get("kind")
        raw = raw or self.instance.kind
        return raw if raw in Kind.values else None

    def primary_markers(self):
        return self._marker_boxes(lambda kind: kind == self.chosen_kind)

    def other_markers(self):
        return self._marker_boxes(lambda kind: kind != self.chosen_kind)

    def other_marker_ticked(self):
        """Open the mixed-rupture section when one of its markers is already ticked."""
        return any(box.data["selected"] for box in self.other_markers())

    def _marker_boxes(self, keep):
        return [box for box in self["markers"] if keep(v.MARKER_KIND[box.data["value"]])]

    def clean_minute(self):
        minute = self.cleaned_data.get("minute")
        if minute is not None and minute > self.session.duration_minutes:
            raise forms.ValidationError(
                f"The session lasted {self.session.duration_minutes} minutes."
            )
        return minute

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("actor") == Actor.CLIENT and not cleaned.get("markers"):
            self.add_error("markers", "Pick at least one marker: what did the client do?")
        signals = cleaned.get("internal_signals") or []
        other_text = (cleaned.get("internal_signals_other") or "").strip()
        if InternalSignal.OTHER in signals and not other_text:
            self.add_error("internal_signals_other", "Say in a few words what the other signal was.")
        if other_text and InternalSignal.OTHER not in signals:
            cleaned["internal_signals"] = [*signals, InternalSignal.OTHER]
        if not cleaned.get("risk"):
            if self.asks_about_risk(cleaned):
                self.add_error(
                    "risk",
                    "You marked hopelessness at intensity 4 or 5: say whether there is a risk "
                    "concern (choose \"No risk concern\" if there is none).",
                )
            cleaned["risk"] = Risk.NONE
        if "version" in self.errors:
            # A hidden field: its error is said at the top of the form.
            self.add_error(None, MISSING_VERSION)
        return cleaned

    def asks_about_risk(self, data=None):
        """Section 6b: hopelessness at intensity 4-5 makes the form ask about risk."""
        if data is None:
            source = self.data if self.is_bound else {**self.initial}
            markers = source.getlist("markers") if hasattr(source, "getlist") else source.get("markers") or []
            if not markers and not self.is_bound and self.instance.pk:
                markers = self.instance.markers
            try:
                intensity = int(source.get("intensity") or (self.instance.intensity or 0))
            except (TypeError, ValueError):
                intensity = 0
        else:
            markers, intensity = data.get("markers") or [], data.get("intensity") or 0
        return v.RISK_PROMPT_MARKER in markers and intensity >= v.RISK_PROMPT_MIN_INTENSITY

    def clean_markers(self):
        # Keep the vocabulary's order so that equal sets are stored identically.
        chosen = set(self.cleaned_data["markers"])
        return [slug for slug in Marker.values if slug in chosen]

    def clean_internal_signals(self):
        chosen = set(self.cleaned_data["internal_signals"])
        return [slug for slug in InternalSignal.values if slug in chosen]


class RepairAttemptForm(forms.ModelForm):
    strategy = forms.ChoiceField(choices=[("", "Choose the strategy you used")] + Strategy.choices,
                                 label="Strategy used")
    outcome = forms.ChoiceField(
        choices=[(s, RepairStatus(s).label) for s in ATTEMPT_OUTCOMES], widget=forms.RadioSelect
    )
    stage_reached = forms.ChoiceField(
        choices=[("", "Not recorded")] + Stage.choices, required=False, label="How far did it get?",
        help_text="The furthest stage of resolution reached; the next suggestions start from it.",
    )

    class Meta:
        model = RepairAttempt
        fields = ["session", "strategy", "outcome", "stage_reached", "note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}
        labels = {"session": "Tried in session"}

    def __init__(self, *args, rupture, **kwargs):
        super().__init__(*args, **kwargs)
        # The rupture's own session or a later one of the same client that took place.
        sessions = rupture.session.client.sessions.filter(
            starts_at__gte=rupture.session.starts_at, status=SessionStatus.HELD
        ).order_by("starts_at")
        self.fields["session"].queryset = sessions
        # Listed once, in one query: the field's own iterator would read them through a
        # server-side cursor (several round trips) each time the choices are rendered.
        # Dated as on every other page, in the clinic's time; the client is the rupture's own.
        self.fields["session"].choices = [(s.pk, _session_label(s)) for s in sessions]
        self.fields["session"].initial = rupture.session_id


def _session_label(session):
    return date_format(timezone.localtime(session.starts_at), "D j M Y, H:i")


class RepairStatusForm(forms.Form):
    repair_status = forms.ChoiceField(choices=RepairStatus.choices, label="Repair status")
    version = forms.IntegerField(widget=forms.HiddenInput)
