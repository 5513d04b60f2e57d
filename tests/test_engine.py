"""The strategy engine: plain functions, no database."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ruptures import vocabulary
from strategies import phrasing
from strategies.engine import (
    Attempt,
    EngineInputError,
    PastRupture,
    RuptureFacts,
    advise,
    format_track_record,
    history_from_list,
    is_recurring,
    rupture_from_dict,
    suggest,
)
from strategies.rules import METACOMMUNICATION, RULES, TIMING, HoldBack, Rule, When, check_table

VIGNETTES_DIR = Path(__file__).resolve().parents[1] / "strategies" / "vignettes"
VIGNETTES = [
    vignette
    for name in ("public.json", "depth.json")
    for vignette in json.loads((VIGNETTES_DIR / name).read_text(encoding="utf-8"))["vignettes"]
]

KINDS = [slug for slug, _ in vocabulary.KINDS]
ACTORS = [slug for slug, _ in vocabulary.ACTORS]
MARKERS = [slug for slug, _ in vocabulary.MARKERS]
SIGNALS = [slug for slug, _ in vocabulary.INTERNAL_SIGNALS]
SOURCES = [slug for slug, _ in vocabulary.SOURCES]
RISKS = [slug for slug, _ in vocabulary.RISKS]
STAGES = [slug for slug, _ in vocabulary.STAGES]
OUTCOMES = [slug for slug, _ in vocabulary.REPAIR_STATUSES if slug != "unaddressed"]
WHENS = {slug for slug, _ in vocabulary.WHENS}
STRATEGIES = [slug for slug, *_ in vocabulary.STRATEGY_TABLE]
FAMILY_APPROACH = {
    slug: (family, approach) for slug, _, family, approach in vocabulary.STRATEGY_TABLE
}


def facts(
    kind="withdrawal",
    actor="client",
    markers=("minimal_response",),
    intensity=3,
    source="unknown",
    internal_signals=(),
):
    return RuptureFacts(kind, actor, tuple(markers), intensity, source, tuple(internal_signals))


def past(sessions_ago, *markers, kind="withdrawal"):
    return PastRupture(sessions_ago, kind, markers)


def top(rupture, history=()):
    return suggest(rupture, history)[0]


def by_strategy(suggestions):
    return {s.strategy: s for s in suggestions}


# --- The public vignettes -------------------------------------------------------------


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_it_suggests_what_a_clinician_would_accept_for_the_vignettes(vignette):
    advice = advise(
        rupture_from_dict(vignette["rupture"]), history_from_list(vignette["history"])
    )
    suggestions = advice.suggestions
    expect = vignette["expect"]
    best = suggestions[0]
    assert advice.safety_first is expect.get("safety_first", False)
    if "top_when" in expect:
        assert best.when == expect["top_when"]
    if "family" in expect:
        assert best.family == expect["family"]
    if "approach" in expect:
        assert best.approach == expect["approach"]
    if "top_any_of" in expect:
        assert best.strategy in expect["top_any_of"]
    assert best.strategy not in expect.get("not_top", [])
    top3 = [s.strategy for s in suggestions[:3]]
    for strategy in expect.get("in_top3", []):
        assert strategy in top3


# --- Properties over generated ruptures ---------------------------------------------


@st.composite
def ruptures(draw, actor=None, source=None):
    actor = actor or draw(st.sampled_from(ACTORS))
    markers = draw(
        st.lists(
            st.sampled_from(MARKERS),
            unique=True,
            min_size=1 if actor == "client" else 0,
            max_size=6,
        )
    )
    return RuptureFacts(
        kind=draw(st.sampled_from(KINDS)),
        actor=actor,
        markers=tuple(markers),
        intensity=draw(st.integers(1, 5)),
        source=source or draw(st.sampled_from(SOURCES)),
        internal_signals=tuple(draw(st.lists(st.sampled_from(SIGNALS), unique=True, max_size=4))),
    )


@st.composite
def histories(draw, rupture):
    # Drawing mostly from the rupture's own markers makes recurrence come up often.
    pool = list(rupture.markers) * 3 + MARKERS
    past_rupture = st.builds(
        PastRupture,
        sessions_ago=st.integers(1, 8),
        kind=st.sampled_from(KINDS),
        markers=st.lists(st.sampled_from(pool), max_size=3).map(tuple),
    )
    return tuple(draw(st.lists(past_rupture, max_size=8)))


@st.composite
def cases(draw, actor=None, source=None, recurring=None):
    rupture = draw(ruptures(actor=actor, source=source))
    history = draw(histories(rupture))
    if recurring is True:
        history += (past(1, rupture.markers[0]), past(2, rupture.markers[0]))
    elif recurring is False:
        history = ()
    return rupture, history


track_records = st.dictionaries(
    st.sampled_from(STRATEGIES),
    st.integers(0, 20).flatmap(lambda tried: st.tuples(st.integers(0, tried), st.just(tried))),
)


@given(cases())
def test_it_suggests_something_for_any_valid_rupture(case):
    assert suggest(*case)


@given(cases())
def test_it_takes_family_and_approach_from_the_strategy_table(case):
    for suggestion in suggest(*case):
        assert (suggestion.family, suggestion.approach) == FAMILY_APPROACH[suggestion.strategy]


@given(cases())
def test_it_never_suggests_a_strategy_twice(case):
    strategies = [s.strategy for s in suggest(*case)]
    assert len(strategies) == len(set(strategies))


@given(cases())
def test_it_ranks_best_first(case):
    scores = [s.score for s in suggest(*case)]
    assert scores == sorted(scores, reverse=True)


@given(cases(), track_records)
def test_it_gives_the_same_answer_for_the_same_input(case, record):
    assert suggest(*case, track_record=record) == suggest(*case, track_record=dict(record))


@given(cases(), track_records)
def test_it_lets_the_track_record_reorder_only_equal_scores(case, record):
    plain = suggest(*case)
    with_record = suggest(*case, track_record=record)
    assert {(s.strategy, s.score) for s in plain} == {(s.strategy, s.score) for s in with_record}
    position = {s.strategy: i for i, s in enumerate(with_record)}
    for higher in plain:
        for lower in plain:
            if higher.score > lower.score:
                assert position[higher.strategy] < position[lower.strategy]


@given(cases())
def test_it_ties_every_rationale_to_a_reason_on_one_line(case):
    for suggestion in suggest(*case):
        assert suggestion.rationale.startswith("Suggested because ")
        assert "\n" not in suggestion.rationale
        assert "{" not in suggestion.rationale
        assert suggestion.example and suggestion.watch_for


@given(cases())
def test_it_keeps_redirecting_for_when_nothing_else_fits(case):
    suggestions = suggest(*case)
    if len(suggestions) > 1:
        assert suggestions[0].strategy != "redirect_refocus"


@given(cases(actor="therapist"))
def test_it_puts_reflection_first_for_a_therapist_side_rupture(case):
    assert top(*case).strategy == "acknowledge_contribution"


def caught_up(rupture):
    """Section 6c: the therapist is still caught up, so metacommunication waits."""
    return rupture.intensity >= 4 and bool(
        {"irritated", "defensive", "pressured"} & set(rupture.internal_signals)
    )


@given(cases(actor="client", recurring=True))
def test_it_leads_with_the_pattern_when_a_marker_recurs(case):
    best = top(*case)
    if caught_up(case[0]):
        assert best.strategy not in METACOMMUNICATION
        return
    assert best.family == "expressive"
    if case[0].source not in {"therapist_intervention", "identity_or_culture"}:
        assert best.strategy in {"link_to_session_pattern", "invite_discussion"}


@given(cases(actor="client", source="misunderstanding", recurring=False))
def test_it_clarifies_a_misunderstanding_first(case):
    assert top(*case).strategy == "clarify_misunderstanding"


@given(cases(actor="client", source="frame_concern", recurring=False))
def test_it_restates_the_frame_first(case):
    best = top(*case)
    assert (best.family, best.approach) == ("immediate", "direct")


@pytest.mark.parametrize("source", ["task_disagreement", "goal_disagreement"])
@given(data=st.data())
def test_it_revises_a_disputed_task_or_goal_together(source, data):
    case = data.draw(cases(actor="client", source=source, recurring=False))
    assert top(*case).strategy == "change_tasks_goals"


@given(cases(actor="client", source="therapist_intervention", recurring=False))
def test_it_owns_the_therapists_part_when_the_rupture_followed_an_intervention(case):
    best = top(*case)
    assert best.strategy in {"acknowledge_contribution", "invite_discussion"}


@given(cases(actor="client", source="pattern", recurring=False))
def test_it_explores_a_pattern_the_therapist_sees(case):
    if caught_up(case[0]):
        assert top(*case).strategy not in METACOMMUNICATION
    else:
        assert top(*case).family == "expressive"


@given(cases(actor="client", source="unknown", recurring=False))
def test_it_invites_rather_than_explains_when_the_source_is_unknown(case):
    rupture, _ = case
    if caught_up(rupture):
        assert top(*case).strategy not in METACOMMUNICATION
        return
    allowed = {
        "withdrawal": {"invite_discussion", "disclose_internal_experience"},
        "confrontation": {
            "invite_discussion",
            "acknowledge_contribution",
            "validate_defensive_posture",
        },
    }[rupture.kind]
    assert top(*case).strategy in allowed


# --- Recurrence ------------------------------------------------------------------------


def test_it_counts_a_marker_seen_in_two_of_the_previous_five_sessions_as_recurring():
    rupture = facts(markers=("topic_shift", "denial"))
    assert is_recurring(rupture, [past(1, "topic_shift"), past(5, "topic_shift")]) == {
        "topic_shift"
    }


def test_it_ignores_sessions_older_than_five():
    rupture = facts(markers=("topic_shift",))
    assert is_recurring(rupture, [past(5, "topic_shift"), past(6, "topic_shift")]) == set()


def test_it_counts_two_ruptures_in_one_session_once():
    rupture = facts(markers=("topic_shift",))
    history = [past(2, "topic_shift"), past(2, "topic_shift", "denial")]
    assert is_recurring(rupture, history) == set()


def test_it_counts_only_the_ruptures_own_markers():
    rupture = facts(markers=("minimal_response",))
    assert is_recurring(rupture, [past(1, "topic_shift"), past(2, "topic_shift")]) == set()


def test_it_treats_a_recurrence_as_a_pattern_whatever_the_source_says():
    rupture = facts(
        kind="confrontation", markers=("complaint_about_activities",), source="task_disagreement"
    )
    history = [
        past(1, "complaint_about_activities", kind="confrontation"),
        past(3, "complaint_about_activities", kind="confrontation"),
    ]
    assert top(rupture).strategy == "change_tasks_goals"
    assert top(rupture, history).strategy == "link_to_session_pattern"


def test_it_does_not_call_a_single_earlier_rupture_a_pattern():
    rupture = facts(
        kind="confrontation", markers=("complaint_about_activities",), source="task_disagreement"
    )
    history = [
        past(1, "complaint_about_activities", kind="confrontation"),
        past(7, "complaint_about_activities", kind="confrontation"),
    ]
    assert top(rupture, history).strategy == "change_tasks_goals"


# --- Rationales name the facts -----------------------------------------------------------


def test_it_names_the_source_in_the_rationale():
    rupture = facts(
        kind="confrontation", markers=("rejects_intervention",), source="task_disagreement"
    )
    assert "disagreement about the task" in top(rupture).rationale


def test_it_names_the_recurring_marker_and_how_often_it_came_up():
    rupture = facts(markers=("deferential_appeasing",))
    history = [
        past(1, "deferential_appeasing"),
        past(3, "deferential_appeasing"),
        past(4, "deferential_appeasing"),
    ]
    rationale = by_strategy(suggest(rupture, history))["link_to_session_pattern"].rationale
    assert "agreed too readily in 3 of the previous five sessions" in rationale


def test_it_names_what_the_therapist_felt():
    rupture = facts(
        kind="confrontation",
        markers=("defends_self",),
        source="therapist_intervention",
        internal_signals=("irritated",),
    )
    suggestion = by_strategy(suggest(rupture))["acknowledge_contribution"]
    assert "something you said or did" in suggestion.rationale
    assert "you felt irritated" in suggestion.rationale


def test_it_names_the_intensity_when_it_matters():
    rupture = facts(kind="confrontation", markers=("complaint_about_therapist",), intensity=5)
    rationale = by_strategy(suggest(rupture))["validate_defensive_posture"].rationale
    assert "intensity 5 of 5" in rationale


def test_it_offers_redirecting_only_for_a_mild_one_off_drift_and_says_so():
    mild = facts(markers=("topic_shift",), intensity=2)
    suggestions = suggest(mild)
    assert suggestions[-1].strategy == "redirect_refocus"
    assert "changed the subject mildly (intensity 2 of 5)" in suggestions[-1].rationale

    stronger = facts(markers=("topic_shift",), intensity=3)
    assert "redirect_refocus" not in by_strategy(suggest(stronger))
    history = [past(1, "topic_shift"), past(2, "topic_shift")]
    assert "redirect_refocus" not in by_strategy(suggest(mild, history))


def test_it_uses_the_phrasing_of_the_rule_that_fits_best():
    rupture = facts(actor="therapist", markers=(), internal_signals=("bored",))
    best = top(rupture)
    assert "drifted" in best.example
    assert "supervision" in best.watch_for


# --- Track record --------------------------------------------------------------------------


def test_it_orders_equal_scores_by_the_clinics_track_record():
    # A misheard remark scores inviting discussion and owning one's part equally.
    rupture = facts(
        kind="confrontation", markers=("complaint_about_therapist",), source="misunderstanding"
    )
    scores = {s.strategy: s.score for s in suggest(rupture)}
    assert scores["invite_discussion"] == scores["acknowledge_contribution"]

    record = {"acknowledge_contribution": (4, 5), "invite_discussion": (1, 5)}
    ranked = [s.strategy for s in suggest(rupture, track_record=record)]
    assert ranked.index("acknowledge_contribution") < ranked.index("invite_discussion")
    assert ranked[0] == "clarify_misunderstanding"
    invite = by_strategy(suggest(rupture, track_record=record))["invite_discussion"]
    assert invite.track_record == (1, 5)


def test_it_formats_a_track_record():
    assert format_track_record(2, 3) == "resolved 2 of 3 times"
    assert format_track_record(1, 1) == "resolved 1 of 1 time"
    assert format_track_record(0, 0) == "not tried yet"


# --- Reading input -----------------------------------------------------------------------

VALID = {
    "kind": "withdrawal",
    "actor": "client",
    "markers": ["minimal_response"],
    "intensity": 3,
    "source": "unknown",
    "internal_signals": ["shut_out"],
}


def with_(**changes):
    data = {**VALID, **changes}
    return {key: value for key, value in data.items() if value is not ...}


def test_it_reads_a_rupture_and_its_history():
    assert rupture_from_dict(VALID) == facts(internal_signals=("shut_out",))
    assert history_from_list([{"sessions_ago": 2, "kind": "withdrawal", "markers": []}]) == (
        PastRupture(2, "withdrawal", ()),
    )


def test_it_defaults_the_actor_to_client_and_the_signals_to_none():
    rupture = rupture_from_dict(with_(actor=..., internal_signals=...))
    assert rupture.actor == "client"
    assert rupture.internal_signals == ()


def test_it_lets_a_therapist_side_rupture_go_without_markers():
    rupture = rupture_from_dict(with_(actor="therapist", markers=...))
    assert rupture.markers == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            with_(markers=["minimal_response", "sulking"]),
            'rupture.markers[1]: unknown marker "sulking"',
        ),
        (with_(markers=[]), "rupture.markers: a client-side rupture needs at least one marker"),
        (with_(markers=...), "rupture.markers: is required"),
        (with_(markers="minimal_response"), "rupture.markers: must be a list of marker slugs"),
        (with_(markers=[3]), "rupture.markers[0]: must be a marker slug (a string)"),
        (with_(kind=...), "rupture.kind: is required"),
        (with_(kind="sulk"), 'rupture.kind: unknown kind "sulk"'),
        (with_(actor="supervisor"), 'rupture.actor: unknown actor "supervisor"'),
        (with_(intensity=0), "rupture.intensity: must be a whole number from 1 to 5"),
        (with_(intensity=6), "rupture.intensity: must be a whole number from 1 to 5"),
        (with_(intensity="3"), "rupture.intensity: must be a whole number from 1 to 5"),
        (with_(intensity=2.5), "rupture.intensity: must be a whole number from 1 to 5"),
        (with_(intensity=True), "rupture.intensity: must be a whole number from 1 to 5"),
        (with_(intensity=...), "rupture.intensity: is required"),
        (with_(source=...), "rupture.source: is required"),
        (with_(source="fate"), 'rupture.source: unknown source "fate"'),
        (
            with_(internal_signals=["calm"]),
            'rupture.internal_signals[0]: unknown internal signal "calm"',
        ),
        (["withdrawal"], "rupture: must be an object"),
    ],
)
def test_it_rejects_a_bad_rupture_naming_the_field(data, message):
    with pytest.raises(EngineInputError) as error:
        rupture_from_dict(data)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [{"sessions_ago": 0, "kind": "withdrawal", "markers": []}],
            "history[0].sessions_ago: must be a positive whole number",
        ),
        (
            [{"sessions_ago": "1", "kind": "withdrawal", "markers": []}],
            "history[0].sessions_ago: must be a positive whole number",
        ),
        (
            [{"sessions_ago": 1.5, "kind": "withdrawal", "markers": []}],
            "history[0].sessions_ago: must be a positive whole number",
        ),
        ([{"kind": "withdrawal", "markers": []}], "history[0].sessions_ago: is required"),
        (
            [
                {"sessions_ago": 1, "kind": "withdrawal", "markers": []},
                {"sessions_ago": 2, "kind": "withdrawal", "markers": ["sulking"]},
            ],
            'history[1].markers[0]: unknown marker "sulking"',
        ),
        ([{"sessions_ago": 1, "markers": []}], "history[0].kind: is required"),
        ([{"sessions_ago": 1, "kind": "withdrawal"}], "history[0].markers: is required"),
        ([42], "history[0]: must be an object"),
        ({"sessions_ago": 1}, "history: must be a list"),
    ],
)
def test_it_rejects_a_bad_history_naming_the_field(items, message):
    with pytest.raises(EngineInputError) as error:
        history_from_list(items)
    assert str(error.value) == message


def test_it_prefixes_errors_with_the_path_it_is_given():
    with pytest.raises(EngineInputError) as error:
        rupture_from_dict(with_(markers=["sulking"]), path="vignettes[3].rupture")
    assert error.value.path == "vignettes[3].rupture.markers[0]"
    assert error.value.problem == 'unknown marker "sulking"'


# --- The table itself ----------------------------------------------------------------------


def test_it_has_default_phrasing_for_every_strategy_marker_and_signal():
    assert set(phrasing.EXAMPLES) == set(STRATEGIES)
    assert set(phrasing.WATCH_FOR) == set(STRATEGIES)
    assert set(phrasing.MARKER_PHRASES) == set(MARKERS)
    assert set(phrasing.SIGNAL_PHRASES) == set(SIGNALS)


def test_it_refuses_a_rule_that_could_never_work():
    misspelt = Rule("typo", When(source_in={"misunderstandng"}), {"invite_discussion": 1}, "x")
    with pytest.raises(ValueError, match="misunderstandng"):
        check_table(RULES + (misspelt,))
    unknown_strategy = Rule("typo", When(), {"hug": 1}, "x")
    with pytest.raises(ValueError, match="hug"):
        check_table(RULES + (unknown_strategy,))


def test_it_does_not_import_django():
    code = "import sys, strategies.engine; sys.exit('django' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# --- Clinical depth: safety, when, what failed before, holding back, stages -------------


attempts_ = st.builds(
    Attempt,
    strategy=st.sampled_from(STRATEGIES),
    outcome=st.sampled_from(OUTCOMES),
    stage_reached=st.one_of(st.none(), st.sampled_from(STAGES)),
)


@st.composite
def deep_cases(draw):
    rupture, history = draw(cases())
    rupture = RuptureFacts(
        **{
            **rupture.__dict__,
            "risk": draw(st.sampled_from(RISKS)),
            "declined_relational_talk": draw(st.booleans()),
            "session_number": draw(st.one_of(st.none(), st.integers(1, 30))),
            "attempts": tuple(draw(st.lists(attempts_, max_size=4))),
        }
    )
    history = tuple(
        PastRupture(p.sessions_ago, p.kind, p.markers, tuple(draw(st.lists(attempts_, max_size=3))))
        for p in history
    )
    return rupture, history


def must_hold_back_metacommunication(rupture):
    return (
        rupture.risk != "none"
        or rupture.declined_relational_talk
        or (rupture.session_number is not None and rupture.session_number <= 2)
        or caught_up(rupture)
    )


@given(deep_cases())
def test_it_puts_safety_first_exactly_when_a_risk_is_recorded(case):
    advice = advise(*case, protocol="the Clinic Risk Protocol")
    assert advice.safety_first is (case[0].risk != "none")
    if advice.safety_first:
        assert advice.safety.startswith("Safety first")
        assert "the Clinic Risk Protocol" in advice.safety
    else:
        assert advice.safety == ""


@given(deep_cases())
def test_it_never_puts_a_held_back_strategy_on_top(case):
    advice = advise(*case)
    assert advice.suggestions
    held = {h.strategy for h in advice.held_back}
    assert not held & {s.strategy for s in advice.suggestions}
    assert all(h.reason and "{" not in h.reason for h in advice.held_back)
    rupture = case[0]
    if must_hold_back_metacommunication(rupture):
        assert advice.suggestions[0].strategy not in METACOMMUNICATION
    if rupture.source == "identity_or_culture":
        assert advice.suggestions[0].strategy not in {"link_to_session_pattern", "link_to_outside_pattern"}
    if rupture.risk == "acute_crisis":
        assert not METACOMMUNICATION & {s.strategy for s in advice.suggestions}


@given(deep_cases())
def test_it_says_when_every_suggestion_is_for(case):
    for suggestion in suggest(*case):
        assert suggestion.when in WHENS
        assert suggestion.when == TIMING[suggestion.strategy]


@given(deep_cases(), track_records)
def test_it_still_lets_the_track_record_only_break_ties(case, record):
    plain = suggest(*case)
    with_record = suggest(*case, track_record=record)
    assert {(s.strategy, s.score) for s in plain} == {(s.strategy, s.score) for s in with_record}
    position = {s.strategy: i for i, s in enumerate(with_record)}
    for higher in plain:
        for lower in plain:
            if (higher.failed_twice, -higher.score) < (lower.failed_twice, -lower.score):
                assert position[higher.strategy] < position[lower.strategy]


@given(deep_cases())
def test_it_puts_a_strategy_that_failed_twice_last_unless_nothing_else_fits(case):
    suggestions = suggest(*case)
    flags = [s.failed_twice for s in suggestions]
    assert flags == sorted(flags)
    for suggestion in suggestions:
        assert ("It comes after the others" in suggestion.rationale) is suggestion.failed_twice


def unresolved(strategy):
    return Attempt(strategy, "unresolved")


def test_it_says_a_strategy_did_not_help_the_last_two_times():
    rupture = facts(source="task_disagreement")
    history = (
        PastRupture(2, "confrontation", ("rejects_intervention",), (unresolved("change_tasks_goals"),)),
        PastRupture(1, "confrontation", ("rejects_intervention",), (unresolved("change_tasks_goals"),)),
    )
    suggestions = suggest(rupture, history)
    assert suggestions[0].strategy != "change_tasks_goals"
    failed = next(s for s in suggestions if s.strategy == "change_tasks_goals")
    assert "revising the task did not help the last two times with this client" in failed.rationale
    assert suggestions[-1] == failed


def test_it_moves_towards_expressive_work_when_immediate_repair_failed_for_this_kind():
    rupture = facts(source="task_disagreement")
    assert top(rupture).family == "immediate"
    other_kind = (PastRupture(1, "confrontation", ("rejects_intervention",), (unresolved("change_tasks_goals"),)),)
    assert top(rupture, other_kind).family == "immediate"
    same_kind = (PastRupture(1, "withdrawal", ("denial",), (unresolved("change_tasks_goals"),)),)
    best = top(rupture, same_kind)
    assert best.family == "expressive"
    assert "revising the task did not help before" in best.rationale
    own = RuptureFacts(**{**rupture.__dict__, "attempts": (unresolved("change_tasks_goals"),)})
    assert top(own).family == "expressive"


def test_it_lists_what_it_held_back_and_why():
    rupture = RuptureFacts(**{**facts().__dict__, "declined_relational_talk": True})
    advice = advise(rupture)
    assert {h.strategy for h in advice.held_back} == {"invite_discussion", "disclose_internal_experience"}
    assert all("declined to talk about the relationship" in h.reason for h in advice.held_back)
    first = RuptureFacts(**{**facts().__dict__, "session_number": 2})
    assert "session 2 of the therapy" in advise(first).held_back[0].reason
    assert advise(RuptureFacts(**{**facts().__dict__, "session_number": 3})).held_back == ()


def test_it_starts_the_next_step_from_the_stage_the_last_attempt_reached():
    reached = (
        Attempt("invite_discussion", "attempted", "attended"),
        Attempt("disclose_internal_experience", "attempted", "explored_avoidance"),
        Attempt("validate_defensive_posture", "attempted", None),
    )
    withdrawal = RuptureFacts(**{**facts().__dict__, "attempts": reached})
    advice = advise(withdrawal)
    assert advice.stage_reached == "explored_avoidance"
    assert "assert" in advice.next_step
    assert "invite_discussion" in {h.strategy for h in advice.held_back}
    assert advice.suggestions[0].strategy == "new_relational_experience"
    confrontation = RuptureFacts(
        **{**facts(kind="confrontation", markers=("defends_self",)).__dict__, "attempts": reached}
    )
    assert "vulnerability" in advise(confrontation).next_step
    assert advise(facts()).next_step == ""


def test_it_refuses_a_hold_back_row_that_could_never_work():
    typo = HoldBack("typo", When(risk_in={"doom"}), frozenset({"invite_discussion"}), "x")
    with pytest.raises(ValueError, match="doom"):
        check_table(hold_back=(typo,))
