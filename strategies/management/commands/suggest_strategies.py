import json

from django.core.management.base import BaseCommand, CommandError

from strategies.engine import EngineInputError, advise, history_from_list, rupture_from_dict

# What the command prints per suggestion; the rest of a Suggestion is for the UI.
FIELDS = ("strategy", "family", "approach", "when", "rationale", "example")


class Command(BaseCommand):
    help = (
        "Print ranked repair suggestions, best first, for each vignette in a JSON file "
        'of the form {"vignettes": [{"id", "rupture", "history"}, ...]}, with whether '
        "safety comes first and what was held back, and why."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the vignettes JSON file")

    def handle(self, *args, file, **options):
        vignettes = read_vignettes(file)
        results = [suggestions_for(vignette, index) for index, vignette in enumerate(vignettes)]
        self.stdout.write(json.dumps(results, indent=2, ensure_ascii=False))


def read_vignettes(file):
    try:
        with open(file, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise CommandError(f"{file}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"{file}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{file}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("vignettes"), list):
        raise CommandError(f'{file}: expected an object with a "vignettes" list')
    return data["vignettes"]


def suggestions_for(vignette, index):
    # Name the vignette by its id when it has one, so the error points at the right entry.
    name = f"vignette #{index}"
    if isinstance(vignette, dict) and isinstance(vignette.get("id"), str | int):
        name = f"vignette {json.dumps(vignette['id'], ensure_ascii=False)}"
    if not isinstance(vignette, dict):
        raise CommandError(f"{name}: must be an object")
    try:
        if "rupture" not in vignette:
            raise EngineInputError("rupture", "is required")
        rupture = rupture_from_dict(vignette["rupture"])
        history = history_from_list(vignette.get("history"))
    except EngineInputError as exc:
        raise CommandError(f"{name}: {exc}") from exc
    advice = advise(rupture, history)
    return {
        "id": vignette.get("id"),
        "safety_first": advice.safety_first,
        "suggestions": [
            {field: getattr(suggestion, field) for field in FIELDS}
            for suggestion in advice.suggestions
        ],
        "held_back": [{"strategy": h.strategy, "reason": h.reason} for h in advice.held_back],
    }
