"""Instrument files: checked as a whole, every problem listed with its path, or loaded.

An instrument file is JSON: {"format": "rupture-log instrument", "instruments": [...]},
each instrument {slug, version, respondent, title, items}, each item {slug, text,
type: choice|scale|text, ...}. `choices` for a choice ([{slug, label}]), `anchors` for
a 1-5 scale ({"1": label, "5": label}, at least the two ends), `max_length` for free
text; `optional`, `asked_if` ({item, answer}: asked only after that answer to an
earlier choice item) and `meaning` (§8a) for any. Nothing is written unless the whole
file is clean, and a version once stored is never changed: new wording, new version.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from checks import meaning as m

FORMAT = "rupture-log instrument"
SHIPPED = Path(__file__).resolve().parent / "data" / "alliance_check.v1.json"
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
SLUG_RULE = "use lower-case letters, digits and underscores, starting with a letter"
RESPONDENTS = ("therapist", "client")
TYPES = ("choice", "scale", "text")
ITEM_FIELDS = {"slug", "text", "type", "choices", "anchors", "max_length", "optional", "asked_if", "meaning"}
INSTRUMENT_FIELDS = {"slug", "version", "respondent", "title", "items"}
MAX_TEXT_LENGTH = 5000


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


def parse(data: bytes):
    try:
        return json.loads(data.decode("utf-8")), []
    except UnicodeDecodeError:
        return None, [Problem("file", "not UTF-8 text")]
    except ValueError as exc:
        return None, [Problem("file", f"not JSON ({exc})")]


def check_file(doc, stored=frozenset()) -> list[Problem]:
    """Every problem of an instrument file; `stored` holds (slug, version, respondent) already in use."""
    problems = []
    if not isinstance(doc, dict):
        return [Problem("file", "expected a JSON object")]
    if doc.get("format") != FORMAT:
        problems.append(Problem("format", f'expected "{FORMAT}"'))
    for name in sorted(set(doc) - {"format", "instruments"}):
        problems.append(Problem(name, "unknown field"))
    instruments = doc.get("instruments")
    if not isinstance(instruments, list) or not instruments:
        return [*problems, Problem("instruments", "expected a non-empty list")]
    seen = set()
    for i, instrument in enumerate(instruments):
        path = f"instruments[{i}]"
        problems += check_instrument(instrument, path)
        if isinstance(instrument, dict):
            ident = (instrument.get("slug"), instrument.get("version"), instrument.get("respondent"))
            if ident in seen:
                problems.append(Problem(path, "the same slug, version and respondent appear twice"))
            elif ident in stored:
                problems.append(Problem(
                    path, f"{ident[0]} version {ident[1]} for the {ident[2]} is already loaded; "
                    "versions never change: give the new wording a new version",
                ))
            seen.add(ident)
    return problems


def check_instrument(instrument, path) -> list[Problem]:
    if not isinstance(instrument, dict):
        return [Problem(path, "expected an object")]
    problems = [Problem(f"{path}.{name}", "unknown field") for name in sorted(set(instrument) - INSTRUMENT_FIELDS)]
    problems += [Problem(f"{path}.{name}", "missing") for name in sorted(INSTRUMENT_FIELDS - set(instrument))]
    slug = instrument.get("slug")
    if "slug" in instrument and not (isinstance(slug, str) and SLUG_RE.match(slug)):
        problems.append(Problem(f"{path}.slug", SLUG_RULE))
    version = instrument.get("version")
    if "version" in instrument and (type(version) is not int or not 1 <= version <= 32767):
        problems.append(Problem(f"{path}.version", "expected a whole number from 1"))
    if "respondent" in instrument and instrument["respondent"] not in RESPONDENTS:
        problems.append(Problem(f"{path}.respondent", 'expected "therapist" or "client"'))
    title = instrument.get("title")
    if "title" in instrument and not (isinstance(title, str) and 0 < len(title.strip()) <= 200):
        problems.append(Problem(f"{path}.title", "expected text of 1-200 characters"))
    items = instrument.get("items")
    if "items" not in instrument:
        return problems
    if not isinstance(items, list) or not items:
        return [*problems, Problem(f"{path}.items", "expected a non-empty list")]
    earlier, meanings = {}, {}
    for j, item in enumerate(items):
        item_path = f"{path}.items[{j}]"
        problems += check_item(item, item_path, earlier)
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("slug"), str):
            if item["slug"] in earlier:
                problems.append(Problem(f"{item_path}.slug", f"{item['slug']!r} is used by an earlier item"))
            earlier.setdefault(item["slug"], item)
        meaning = item.get("meaning")
        if meaning in meanings:
            problems.append(
                Problem(f"{item_path}.meaning", f"{meaning!r} is already the meaning of {meanings[meaning]!r}")
            )
        elif meaning is not None:
            meanings[meaning] = item.get("slug")
    return problems


def check_item(item, path, earlier) -> list[Problem]:
    if not isinstance(item, dict):
        return [Problem(path, "expected an object")]
    problems = [Problem(f"{path}.{name}", "unknown field") for name in sorted(set(item) - ITEM_FIELDS)]
    for name in ("slug", "text", "type"):
        if name not in item:
            problems.append(Problem(f"{path}.{name}", "missing"))
    slug, kind = item.get("slug"), item.get("type")
    if "slug" in item and not (isinstance(slug, str) and SLUG_RE.match(slug)):
        problems.append(Problem(f"{path}.slug", SLUG_RULE))
    text = item.get("text")
    if "text" in item and not (isinstance(text, str) and 0 < len(text.strip()) <= 500):
        problems.append(Problem(f"{path}.text", "expected the question, 1-500 characters"))
    if "type" in item and kind not in TYPES:
        problems.append(Problem(f"{path}.type", "expected choice, scale or text"))
    problems += _answer_fields(item, path, kind)
    if "optional" in item and not isinstance(item["optional"], bool):
        problems.append(Problem(f"{path}.optional", "expected true or false"))
    if "asked_if" in item:
        problems += _asked_if(item["asked_if"], f"{path}.asked_if", earlier)
    if "meaning" in item:
        problems += _meaning(item, path, kind)
    return problems


def _answer_fields(item, path, kind):
    problems = []
    for name, owner in (("choices", "choice"), ("anchors", "scale"), ("max_length", "text")):
        if name in item and kind != owner:
            problems.append(Problem(f"{path}.{name}", f"only a {owner} item has {name}"))
    if kind == "choice":
        choices = item.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            return [*problems, Problem(f"{path}.choices", "expected a list of at least two {slug, label}")]
        slugs = set()
        for k, choice in enumerate(choices):
            where = f"{path}.choices[{k}]"
            if not (isinstance(choice, dict) and set(choice) == {"slug", "label"}):
                problems.append(Problem(where, "expected {slug, label}"))
                continue
            if not (isinstance(choice["slug"], str) and SLUG_RE.match(choice["slug"])):
                problems.append(Problem(f"{where}.slug", "use lower-case letters, digits and underscores"))
            elif choice["slug"] in slugs:
                problems.append(Problem(f"{where}.slug", f"{choice['slug']!r} appears twice"))
            slugs.add(choice["slug"])
            if not (isinstance(choice["label"], str) and 0 < len(choice["label"].strip()) <= 100):
                problems.append(Problem(f"{where}.label", "expected text of 1-100 characters"))
    elif kind == "scale":
        anchors = item.get("anchors")
        if not isinstance(anchors, dict) or not {"1", "5"} <= set(anchors):
            return [*problems, Problem(f"{path}.anchors", 'expected labels for at least "1" and "5"')]
        for point, label in anchors.items():
            if point not in {"1", "2", "3", "4", "5"}:
                problems.append(Problem(f"{path}.anchors.{point}", "a 1-5 scale has points 1 to 5"))
            elif not (isinstance(label, str) and 0 < len(label.strip()) <= 100):
                problems.append(Problem(f"{path}.anchors.{point}", "expected text of 1-100 characters"))
    elif kind == "text":
        limit = item.get("max_length")
        if type(limit) is not int or not 1 <= limit <= MAX_TEXT_LENGTH:
            problems.append(Problem(f"{path}.max_length", f"expected a whole number from 1 to {MAX_TEXT_LENGTH}"))
    return problems


def _asked_if(condition, path, earlier):
    if not (isinstance(condition, dict) and set(condition) == {"item", "answer"}):
        return [Problem(path, "expected {item, answer}")]
    target = earlier.get(condition["item"]) if isinstance(condition["item"], str) else None
    if target is None:
        return [Problem(f"{path}.item", "expected the slug of an earlier item")]
    if target.get("type") != "choice":
        return [Problem(f"{path}.item", "only a choice item can decide whether another is asked")]
    answers = [c.get("slug") for c in target.get("choices", []) if isinstance(c, dict)]
    if condition["answer"] not in answers:
        return [Problem(f"{path}.answer", f"expected one of {', '.join(map(str, answers))}")]
    return []


def _meaning(item, path, kind):
    meaning = item["meaning"]
    if meaning not in m.MEANINGS:
        return [Problem(f"{path}.meaning", f"expected one of {', '.join(m.MEANINGS)}")]
    if meaning == "tension":
        slugs = {c.get("slug") for c in item.get("choices") or [] if isinstance(c, dict)}
        if kind != "choice" or not {"yes", "no"} <= slugs <= set(m.TENSION_ANSWERS):
            return [Problem(f"{path}.meaning", "tension is a choice of yes and no (and, for clients, rather_not_say)")]
    elif kind != "scale":
        return [Problem(f"{path}.meaning", f"{meaning} is a 1-5 scale")]
    return []


def load_file(data: bytes, *, instrument_model):
    """Check a whole file, then store its instruments: (instruments stored, problems)."""
    doc, problems = parse(data)
    if problems:
        return [], problems
    stored = set(instrument_model.objects.values_list("slug", "version", "respondent"))
    problems = check_file(doc, stored)
    if problems:
        return [], problems
    made = [
        instrument_model.objects.create(
            slug=i["slug"], version=i["version"], respondent=i["respondent"], title=i["title"].strip(),
            items=i["items"],
        )
        for i in doc["instruments"]
    ]
    return made, []
