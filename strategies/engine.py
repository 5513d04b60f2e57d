"""Ranked repair suggestions for a logged rupture.

Pure Python, no Django: the form can call it as the therapist types, and the management
command and the tests call it on plain data. The principles themselves are the table
in ``strategies/rules.py``; this module only matches facts against it, adds up the
weights and words the result.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Formatter

from ruptures import vocabulary

from . import phrasing
from .rules import RECURRENCE_MIN_SESSIONS, RECURRENCE_WINDOW, RULES

_KINDS = vocabulary.slugs(vocabulary.KINDS)
_ACTORS = vocabulary.slugs(vocabulary.ACTORS)
_MARKERS = vocabulary.slugs(vocabulary.MARKERS)
_SIGNALS = vocabulary.slugs(vocabulary.INTERNAL_SIGNALS)
_SOURCES = vocabulary.slugs(vocabulary.SOURCES)

_TABLE_INDEX = {row[0]: index for index, row in enumerate(vocabulary.STRATEGY_TABLE)}
_LABEL = {row[0]: row[1] for row in vocabulary.STRATEGY_TABLE}
_MARKER_LABEL = dict(vocabulary.MARKERS)

_WINDOW_WORDS = {5: "five"}.get(RECURRENCE_WINDOW, str(RECURRENCE_WINDOW))


@dataclass(frozen=True)
class RuptureFacts:
    kind: str
    actor: str
    markers: tuple[str, ...]
    intensity: int
    source: str
    internal_signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class PastRupture:
    sessions_ago: int
    kind: str
    markers: tuple[str, ...]


@dataclass(frozen=True)
class Suggestion:
    strategy: str
    label: str
    family: str
    approach: str
    rationale: str
    example: str
    watch_for: str
    score: int
    # The clinic's (resolved, tried) for this strategy, when a track record was given.
    track_record: tuple[int, int] | None = None


class EngineInputError(ValueError):
    def __init__(self, path, problem):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


# --- Recurrence ---------------------------------------------------------------------


def recurrence_counts(rupture, history):
    """For each of the rupture's markers that recurs: in how many recent sessions."""
    wanted = set(rupture.markers)
    sessions = {}
    for past in history:
        if 1 <= past.sessions_ago <= RECURRENCE_WINDOW:
            for marker in wanted.intersection(past.markers):
                sessions.setdefault(marker, set()).add(past.sessions_ago)
    # Keeping the rupture's own marker order makes the rationale read the same each time.
    return {
        marker: len(sessions[marker])
        for marker in rupture.markers
        if len(sessions.get(marker, ())) >= RECURRENCE_MIN_SESSIONS
    }


def is_recurring(rupture, history) -> frozenset[str]:
    return frozenset(recurrence_counts(rupture, history))


# --- Scoring -------------------------------------------------------------------------


def _holds(when, rupture, recurring):
    return (
        (not when.source_in or rupture.source in when.source_in)
        and (when.kind is None or rupture.kind == when.kind)
        and (when.actor is None or rupture.actor == when.actor)
        and (when.recurring is None or when.recurring == recurring)
        and when.min_intensity <= rupture.intensity <= when.max_intensity
        and (not when.any_marker or not when.any_marker.isdisjoint(rupture.markers))
        and (not when.any_signal or not when.any_signal.isdisjoint(rupture.internal_signals))
    )


# Only the placeholders a rationale actually uses get worded: most use none.
_PLACEHOLDERS = {
    rule.name: frozenset(name for _, name, _, _ in Formatter().parse(rule.because) if name)
    for rule in RULES
}
_WEIGHTS = {rule.name: tuple(rule.weights.items()) for rule in RULES}


def _track_rank(track_record, strategy):
    # Laplace-smoothed success rate, so one lucky try does not outrank a long record
    # and a strategy never tried sits in the middle, at 1/2.
    resolved, tried = track_record.get(strategy, (0, 0))
    if tried <= 0:
        return -0.5
    return -(min(max(resolved, 0), tried) + 1) / (tried + 2)


def suggest(
    rupture: RuptureFacts,
    history: Sequence[PastRupture] = (),
    track_record: Mapping[str, tuple[int, int]] | None = None,
) -> list[Suggestion]:
    counts = recurrence_counts(rupture, history)
    recurring = bool(counts)
    scores = {}
    contributions = {}
    for rule in RULES:
        if _holds(rule.when, rupture, recurring):
            for strategy, weight in _WEIGHTS[rule.name]:
                scores[strategy] = scores.get(strategy, 0) + weight
                contributions.setdefault(strategy, []).append((weight, rule))

    # The clinic's record only reorders what the principles rank equal.
    record = track_record or {}
    order = sorted(scores, key=lambda s: (-scores[s], _track_rank(record, s), _TABLE_INDEX[s]))

    # One rule often backs several strategies; word its reason once.
    reasons = {}
    return [
        _suggestion(
            strategy,
            scores[strategy],
            contributions[strategy],
            rupture,
            counts,
            track_record,
            reasons,
        )
        for strategy in order
    ]


def _suggestion(strategy, score, contributions, rupture, counts, track_record, reasons_by_rule):
    # Heaviest rule first; on a tie the one naming what was seen or felt says more
    # than a general one, and after that table order holds, since sort is stable.
    rules = [
        rule
        for _, rule in sorted(
            contributions, key=lambda pair: (-pair[0], not _PLACEHOLDERS[pair[1].name])
        )
    ]
    reasons = []
    for rule in rules[:2]:
        reason = reasons_by_rule.get(rule.name)
        if reason is None:
            reason = reasons_by_rule[rule.name] = _because(rule, rupture, counts)
        if reason not in reasons:
            reasons.append(reason)
    rationale = "Suggested because " + "; also, ".join(reasons) + "."
    example = next(
        (r.examples[strategy] for r in rules if strategy in r.examples),
        phrasing.EXAMPLES[strategy],
    )
    watch_for = next(
        (r.watch_for[strategy] for r in rules if strategy in r.watch_for),
        phrasing.WATCH_FOR[strategy],
    )
    record = None
    if track_record is not None and strategy in track_record:
        record = tuple(track_record[strategy])
    return Suggestion(
        strategy=strategy,
        label=_LABEL[strategy],
        family=vocabulary.STRATEGY_FAMILY[strategy],
        approach=vocabulary.STRATEGY_APPROACH[strategy],
        rationale=rationale,
        example=example,
        watch_for=watch_for,
        score=score,
        track_record=record,
    )


def _because(rule, rupture, counts):
    wanted = _PLACEHOLDERS[rule.name]
    if not wanted:
        return rule.because
    when = rule.when
    facts = {}
    if "markers" in wanted:
        facts["markers"] = _and(
            phrasing.MARKER_PHRASES[m] for m in rupture.markers if m in when.any_marker
        )
    if "signals" in wanted:
        facts["signals"] = _and(
            phrasing.SIGNAL_PHRASES[s] for s in rupture.internal_signals if s in when.any_signal
        )
    if "recurring" in wanted:
        facts["recurring"] = _and(
            f"{phrasing.MARKER_PHRASES[m]} in {n} of the previous {_WINDOW_WORDS} sessions too"
            for m, n in counts.items()
        )
    if "recurring_marks" in wanted:
        facts["recurring_marks"] = _and(
            f'"{_MARKER_LABEL[m]}" in {n} of the previous {_WINDOW_WORDS} sessions'
            for m, n in counts.items()
        )
    if "intensity" in wanted:
        facts["intensity"] = rupture.intensity
    return rule.because.format(**facts)


def _and(phrases):
    phrases = list(phrases)
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def format_track_record(resolved: int, tried: int) -> str:
    if tried <= 0:
        return "not tried yet"
    return f"resolved {resolved} of {tried} time{'' if tried == 1 else 's'}"


# --- Reading the vignette / form format ----------------------------------------------


def _quoted(value):
    return json.dumps(value, ensure_ascii=False)


def _present(data, key):
    return key in data and data[key] is not None


def _object(data, path):
    if not isinstance(data, Mapping):
        raise EngineInputError(path, "must be an object")
    return data


def _slug(value, path, allowed, what):
    if not isinstance(value, str):
        raise EngineInputError(path, f"must be a {what} slug (a string)")
    if value not in allowed:
        raise EngineInputError(path, f"unknown {what} {_quoted(value)}")
    return value


def _slug_list(value, path, allowed, what):
    if not isinstance(value, list | tuple):
        raise EngineInputError(path, f"must be a list of {what} slugs")
    items = [_slug(item, f"{path}[{i}]", allowed, what) for i, item in enumerate(value)]
    # A marker ticked twice is still one marker; keep the first position.
    return tuple(dict.fromkeys(items))


def _whole_number(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _required_slug(data, key, path, allowed, what):
    if not _present(data, key):
        raise EngineInputError(f"{path}.{key}", "is required")
    return _slug(data[key], f"{path}.{key}", allowed, what)


def rupture_from_dict(data, path="rupture") -> RuptureFacts:
    _object(data, path)
    kind = _required_slug(data, "kind", path, _KINDS, "kind")
    actor = "client"
    if _present(data, "actor"):
        actor = _slug(data["actor"], f"{path}.actor", _ACTORS, "actor")

    if _present(data, "markers"):
        markers = _slug_list(data["markers"], f"{path}.markers", _MARKERS, "marker")
    elif actor == "client":
        raise EngineInputError(f"{path}.markers", "is required")
    else:
        markers = ()
    if actor == "client" and not markers:
        raise EngineInputError(f"{path}.markers", "a client-side rupture needs at least one marker")

    if not _present(data, "intensity"):
        raise EngineInputError(f"{path}.intensity", "is required")
    intensity = data["intensity"]
    if not _whole_number(intensity) or not 1 <= intensity <= 5:
        raise EngineInputError(f"{path}.intensity", "must be a whole number from 1 to 5")

    source = _required_slug(data, "source", path, _SOURCES, "source")
    signals = ()
    if _present(data, "internal_signals"):
        signals = _slug_list(
            data["internal_signals"], f"{path}.internal_signals", _SIGNALS, "internal signal"
        )
    return RuptureFacts(
        kind=kind,
        actor=actor,
        markers=markers,
        intensity=intensity,
        source=source,
        internal_signals=signals,
    )


def past_rupture_from_dict(data, path) -> PastRupture:
    _object(data, path)
    if not _present(data, "sessions_ago"):
        raise EngineInputError(f"{path}.sessions_ago", "is required")
    sessions_ago = data["sessions_ago"]
    if not _whole_number(sessions_ago) or sessions_ago < 1:
        raise EngineInputError(f"{path}.sessions_ago", "must be a positive whole number")
    kind = _required_slug(data, "kind", path, _KINDS, "kind")
    if not _present(data, "markers"):
        raise EngineInputError(f"{path}.markers", "is required")
    markers = _slug_list(data["markers"], f"{path}.markers", _MARKERS, "marker")
    return PastRupture(sessions_ago=sessions_ago, kind=kind, markers=markers)


def history_from_list(items, path="history") -> tuple[PastRupture, ...]:
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise EngineInputError(path, "must be a list")
    return tuple(past_rupture_from_dict(item, f"{path}[{i}]") for i, item in enumerate(items))
