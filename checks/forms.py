from django import forms

from checks.models import Instrument


def scale_choices(item):
    anchors = item.get("anchors", {})
    return [(str(n), f"{n}" + (f" ({anchors[str(n)]})" if str(n) in anchors else "")) for n in range(1, 6)]


class CheckForm(forms.Form):
    """An instrument's questions as a form: fields named by item slug, values the answer slugs.

    Items asked only after a given answer are optional here, and their answers are
    dropped when that answer was not given (a page without JavaScript shows them all).
    """

    def __init__(self, *args, instrument: Instrument, **kwargs):
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        for item in instrument.items:
            required = not item.get("optional") and "asked_if" not in item
            label = item["text"]
            if item["type"] == "choice":
                field = forms.ChoiceField(
                    label=label, required=required, widget=forms.RadioSelect,
                    choices=[(c["slug"], c["label"]) for c in item["choices"]],
                )
            elif item["type"] == "scale":
                field = forms.ChoiceField(
                    label=label, required=required, widget=forms.RadioSelect, choices=scale_choices(item),
                )
            else:
                field = forms.CharField(
                    label=label, required=required, max_length=item["max_length"], strip=True,
                    widget=forms.Textarea(attrs={"rows": 3}),
                )
            field.item = item
            self.fields[item["slug"]] = field

    def clean(self):
        cleaned = super().clean()
        for item in self.instrument.items:
            condition = item.get("asked_if")
            if condition and cleaned.get(condition["item"]) != condition["answer"]:
                cleaned[item["slug"]] = ""
        return cleaned

    def answers(self) -> dict:
        """{item slug: value}: scales as numbers, unanswered items left out."""
        found = {}
        for item in self.instrument.items:
            value = self.cleaned_data.get(item["slug"])
            if value in (None, ""):
                continue
            found[item["slug"]] = int(value) if item["type"] == "scale" else value
        return found

    def groups(self):
        """[(field, follow-up fields, the answer that asks them, its label)], in the instrument's order."""
        groups = []
        for field in self:
            condition = field.field.item.get("asked_if")
            if condition is None:
                groups.append([field, [], None, None])
                continue
            for group in groups:
                if group[0].name == condition["item"]:
                    group[1].append(field)
                    group[2] = condition["answer"]
                    group[3] = dict(group[0].field.choices).get(condition["answer"], condition["answer"])
        return groups
