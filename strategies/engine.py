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
from .rules import (
    HOLD_BACK,
    NEXT_STEPS,
    RECURRENCE_MIN_SESSIONS,
    RECURRENCE_WINDOW,
    RULES,
    SAFETY_FIRST,
    TIMING,
)

_KINDS = vocabulary.slugs(vocabulary.KINDS)
_ACTORS = vocabulary.slugs(vocabulary.ACTORS)
_MARKERS = vocabulary.slugs(vocabulary.MARKERS)
_SIGNALS = vocabulary.slugs(vocabulary.INTERNAL_SIGNALS)
_SOURCES = vocabulary.slugs(vocabulary.SOURCES)
_RISKS = vocabulary.slugs(vocabulary.RISKS)
_STAGES = vocabulary.slugs(vocabulary.STAGES)
_OUTCOMES = vocabulary.slugs(vocabulary.REPAIR_STATUSES) - {"unaddressed"}
_STRATEGIES = vocabulary.slugs(vocabulary.STRATEGY_TABLE)

_TABLE_INDEX = {row[0]: index for index, row in enumerate(vocabulary.STRATEGY_TABLE)}
_LABEL = {row[0]: row[1] for row in vocabulary.STRATEGY_TABLE}
_MARKER_LABEL = dict(vocabulary.MARKERS)

_WINDOW_WORDS = {5: "five"}.get(RECURRENCE_WINDOW, str(RECURRENCE_WINDOW))


@dataclass(frozen=True)
class Attempt:
    strategy: str
    outcome: str
    stage_reached: str | None = None


@dataclass(frozen=True)
class RuptureFacts:
    kind: str
    actor: str
    markers: tuple[str, ...]
    intensity: int
    source: str
    internal_signals: tuple[str, ...] = ()
    risk: str = vocabulary.NO_RISK
    declined_relational_talk: bool = False
    # The nth held session of this therapy, when known.
    session_number: int | None = None
    # This rupture's own repair attempts so far, oldest first.
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class PastRupture:
    sessions_ago: int
    kind: str
    markers: tuple[str, ...]
    # Its repair attempts, oldest first.
    attempts: tuple[Attempt, ...] = ()


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
    when: str = ""
    # Ended unresolved at least twice with this client: ranked after everything else.
    failed_twice: bool = False


@dataclass(frozen=True)
class HeldBack:
    strategy: str
    label: str
    reason: str


@dataclass(frozen=True)
class Advice:
    """All the engine says about one rupture, in the order the page shows it."""

    # Section 6b: a risk concern puts the clinic's protocol before any strategy.
    risk: str
    safety_first: bool
    safety: str
    suggestions: tuple[Suggestion, ...]
    held_back: tuple[HeldBack, ...]
    # Section 6d: where to go from the stage the last attempt reached.
    stage_reached: str | None
    next_step: str


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


@dataclass(frozen=True)
class _Situation:
    """What the engine works out once from the rupture and the history."""

    counts: dict
    recurring: bool
    # Immediate strategies that ended unresolved for this kind of rupture, oldest first.
    failed_immediate: tuple[str, ...]
    # Per strategy, the outcomes with this client, oldest first.
    outcomes: dict
    last_stage: str | None


def _situation(rupture, history):
    counts = recurrence_counts(rupture, history)
    # Oldest first: the furthest session back, then this rupture's own attempts.
    past = sorted(history, key=lambda p: -p.sessions_ago)
    tried = [(p.kind, a) for p in past for a in p.attempts]
    tried += [(rupture.kind, a) for a in rupture.attempts]
    outcomes = {}
    for _, attempt in tried:
        outcomes.setdefault(attempt.strategy, []).append(attempt.outcome)
    failed_immediate = tuple(dict.fromkeys(
        a.strategy for kind, a in tried
        if kind == rupture.kind and a.outcome == "unresolved"
        and vocabulary.STRATEGY_FAMILY[a.strategy] == "immediate"
    ))
    stages = [a.stage_reached for a in rupture.attempts if a.stage_reached]
    return _Situation(
        counts=counts, recurring=bool(counts), failed_immediate=failed_immediate,
        outcomes=outcomes, last_stage=stages[-1] if stages else None,
    )


def _failures(outcomes):
    return sum(outcome == "unresolved" for outcome in outcomes)


def _holds(when, rupture, situation):
    recurring = situation.recurring
    early = rupture.session_number is not None and when.max_session_number is not None and (
        rupture.session_number <= when.max_session_number
    )
    return (
        (not when.risk_in or rupture.risk in when.risk_in)
        and (when.declined_relational_talk is None
             or when.declined_relational_talk == rupture.declined_relational_talk)
        and (when.max_session_number is None or early)
        and (when.failed_immediate is None or when.failed_immediate == bool(situation.failed_immediate))
        and (not when.last_stage_in or situation.last_stage in when.last_stage_in)
        and (not when.source_in or rupture.source in when.source_in)
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
_PLACEHOLDERS.update({
    "hold:" + row.name: frozenset(name for _, name, _, _ in Formatter().parse(row.reason) if name)
    for row in HOLD_BACK
})
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
    """The ranked suggestions alone (see ``advise`` for everything the engine says)."""
    return list(advise(rupture, history, track_record).suggestions)


def advise(
    rupture: RuptureFacts,
    history: Sequence[PastRupture] = (),
    track_record: Mapping[str, tuple[int, int]] | None = None,
    *,
    protocol: str = "the clinic's risk protocol",
) -> Advice:
    situation = _situation(rupture, history)
    scores = {}
    contributions = {}
    for rule in RULES:
        if _holds(rule.when, rupture, situation):
            for strategy, weight in _WEIGHTS[rule.name]:
                scores[strategy] = scores.get(strategy, 0) + weight
                contributions.setdefault(strategy, []).append((weight, rule))

    # One rule often backs several strategies; word its reason once.
    reasons = {}
    held = {}
    for row in HOLD_BACK:
        if _holds(row.when, rupture, situation):
            for strategy in row.strategies:
                if strategy in scores and strategy not in held:
                    held[strategy] = _because("hold:" + row.name, row.reason, row.when, rupture, situation)

    # A strategy that failed twice with this client goes after everything else; the
    # clinic's record only reorders what the principles rank equal.
    failed_twice = {s for s in scores if _failures(situation.outcomes.get(s, ())) >= 2}
    record = track_record or {}
    order = sorted(
        (s for s in scores if s not in held),
        key=lambda s: (s in failed_twice, -scores[s], _track_rank(record, s), _TABLE_INDEX[s]),
    )
    suggestions = tuple(
        _suggestion(
            strategy,
            scores[strategy],
            contributions[strategy],
            rupture,
            situation,
            track_record,
            reasons,
        )
        for strategy in order
    )
    held_back = tuple(
        HeldBack(strategy=s, label=_LABEL[s], reason=held[s])
        for s in sorted(held, key=lambda s: (-scores[s], _TABLE_INDEX[s]))
    )
    safety_first = rupture.risk != vocabulary.NO_RISK
    next_step = ""
    if situation.last_stage:
        step = NEXT_STEPS[situation.last_stage]
        next_step = step[rupture.kind] if isinstance(step, Mapping) else step
    return Advice(
        risk=rupture.risk,
        safety_first=safety_first,
        safety=SAFETY_FIRST.format(protocol=protocol) if safety_first else "",
        suggestions=suggestions,
        held_back=held_back,
        stage_reached=situation.last_stage,
        next_step=next_step,
    )


def _suggestion(strategy, score, contributions, rupture, situation, track_record, reasons_by_rule):
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
            reason = reasons_by_rule[rule.name] = _because(
                rule.name, rule.because, rule.when, rupture, situation
            )
        if reason not in reasons:
            reasons.append(reason)
    rationale = "Suggested because " + "; also, ".join(reasons) + "."
    outcomes = situation.outcomes.get(strategy, ())
    failed_twice = _failures(outcomes) >= 2
    if failed_twice:
        rationale += f" It comes after the others: {_did_not_help(strategy, outcomes)}."
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
        when=TIMING[strategy],
        failed_twice=failed_twice,
    )


def _did_not_help(strategy, outcomes):
    phrase = phrasing.TRIED_PHRASES[strategy]
    if len(outcomes) >= 2 and outcomes[-1] == outcomes[-2] == "unresolved":
        return f"{phrase} did not help the last two times with this client"
    return f"{phrase} did not help {_times(_failures(outcomes))} with this client"


def _times(n):
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _because(name, text, when, rupture, situation):
    wanted = _PLACEHOLDERS[name]
    if not wanted:
        return text
    counts = situation.counts
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
    if "session_number" in wanted:
        facts["session_number"] = rupture.session_number
    if "failed_before" in wanted:
        phrases = [phrasing.TRIED_PHRASES[s] for s in situation.failed_immediate]
        facts["failed_before"] = _and(phrases) + " did not help before"
    return text.format(**facts)


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
    risk = vocabulary.NO_RISK
    if _present(data, "risk"):
        risk = _slug(data["risk"], f"{path}.risk", _RISKS, "risk")
    declined = False
    if _present(data, "declined_relational_talk"):
        declined = data["declined_relational_talk"]
        if not isinstance(declined, bool):
            raise EngineInputError(f"{path}.declined_relational_talk", "must be true or false")
    session_number = None
    if _present(data, "session_number"):
        session_number = data["session_number"]
        if not _whole_number(session_number) or session_number < 1:
            raise EngineInputError(f"{path}.session_number", "must be a positive whole number")
    attempts = attempts_from_list(data.get("attempts"), f"{path}.attempts", stages=True)
    return RuptureFacts(
        kind=kind,
        actor=actor,
        markers=markers,
        intensity=intensity,
        source=source,
        internal_signals=signals,
        risk=risk,
        declined_relational_talk=declined,
        session_number=session_number,
        attempts=attempts,
    )


def attempts_from_list(items, path, *, stages) -> tuple[Attempt, ...]:
    """Repair attempts, oldest first: `strategy`, `outcome` and, where given, `stage_reached`."""
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise EngineInputError(path, "must be a list")
    attempts = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        _object(item, where)
        strategy = _required_slug(item, "strategy", where, _STRATEGIES, "strategy")
        outcome = _required_slug(item, "outcome", where, _OUTCOMES, "outcome")
        stage = None
        if stages and _present(item, "stage_reached"):
            stage = _slug(item["stage_reached"], f"{where}.stage_reached", _STAGES, "stage")
        attempts.append(Attempt(strategy=strategy, outcome=outcome, stage_reached=stage))
    return tuple(attempts)


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
    attempts = attempts_from_list(data.get("attempts"), f"{path}.attempts", stages=False)
    return PastRupture(sessions_ago=sessions_ago, kind=kind, markers=markers, attempts=attempts)


def history_from_list(items, path="history") -> tuple[PastRupture, ...]:
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise EngineInputError(path, "must be a list")
    return tuple(past_rupture_from_dict(item, f"{path}[{i}]") for i, item in enumerate(items))
