"""The repair principles of docs/domain.md section 6, as a table to review.

How to read it: every rule whose condition holds for a rupture adds its weights to
the strategies it names; the strategies are then ranked by their total. A rule's
``because`` text becomes the suggestion's rationale, filled in with the facts that
made it match, so each suggestion can say which rules put it where it is.

The weights come in tiers, so that a principle always beats a nudge:

    60        a therapist-side rupture: reflection and supervision first
    40        the rupture recurs (same marker in 2 of the previous 5 sessions)
    30        the lead strategy for the therapist's read of the source
    4 to 22   the strategies that follow it for that source
    1 to 5    nudges from the kind, the markers, the intensity, the internal signals

The nudges are grouped (one rule per group of markers or signals, however many of the
group were seen) so that a long list of markers cannot outvote the source.
``tests/test_engine.py`` checks these principles on generated ruptures.

Slugs come from ``ruptures.vocabulary`` through the namespaces below, so a misspelt
slug fails at import instead of silently never matching.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

from ruptures import vocabulary


def _names(table):
    return SimpleNamespace(**{row[0]: row[0] for row in table})


STRATEGY = _names(vocabulary.STRATEGY_TABLE)
SOURCE = _names(vocabulary.SOURCES)
MARKER = _names(vocabulary.MARKERS)
SIGNAL = _names(vocabulary.INTERNAL_SIGNALS)
KIND = _names(vocabulary.KINDS)
ACTOR = _names(vocabulary.ACTORS)

# The recurrence rule's window and threshold: one home, in the vocabulary.
RECURRENCE_WINDOW = vocabulary.RECURRENCE_WINDOW
RECURRENCE_MIN_SESSIONS = vocabulary.RECURRENCE_MIN_SESSIONS


@dataclass(frozen=True)
class When:
    """Which facts a rule matches. Empty or ``None`` means "any"; all given must hold."""

    source_in: frozenset = frozenset()
    kind: str | None = None
    actor: str | None = None
    recurring: bool | None = None
    any_marker: frozenset = frozenset()
    any_signal: frozenset = frozenset()
    min_intensity: int = 1
    max_intensity: int = 5

    def __post_init__(self):
        # The table is written with plain sets for readability; freeze them here.
        for name in ("source_in", "any_marker", "any_signal"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))


@dataclass(frozen=True)
class Rule:
    name: str
    when: When
    weights: Mapping[str, int]
    # Filled in with {markers}, {signals}, {recurring}, {recurring_marks}, {intensity}.
    because: str
    # Phrasings and cautions that fit this situation better than the defaults.
    examples: Mapping[str, str] = field(default_factory=dict)
    watch_for: Mapping[str, str] = field(default_factory=dict)


RULES = (
    # --- Who moved: a therapist-side rupture -----------------------------------------
    Rule(
        "therapist-moved-away",
        When(actor=ACTOR.therapist, kind=KIND.withdrawal),
        {
            STRATEGY.acknowledge_contribution: 60,
            STRATEGY.invite_discussion: 10,
            STRATEGY.disclose_internal_experience: 8,
        },
        "you moved away from the client, and a therapist-side rupture calls for "
        "reflection and supervision first",
        examples={
            STRATEGY.acknowledge_contribution: (
                "I realise I drifted a little while you were telling me about that, and "
                "I'm sorry. It matters, and I'd like to hear it properly. Would you go "
                "back to it with me?"
            ),
        },
        watch_for={
            STRATEGY.acknowledge_contribution: (
                "Before the next session, reflect on what pulled you away and bring it to "
                "supervision; notice whether the client had already sensed it."
            ),
        },
    ),
    Rule(
        "therapist-moved-against",
        When(actor=ACTOR.therapist, kind=KIND.confrontation),
        {
            STRATEGY.acknowledge_contribution: 60,
            STRATEGY.invite_discussion: 10,
            STRATEGY.validate_defensive_posture: 6,
        },
        "you moved against the client, and a therapist-side rupture calls for "
        "reflection and supervision first",
        examples={
            STRATEGY.acknowledge_contribution: (
                "I think I came on too strongly just now and didn't leave much room for "
                "your view. I'm sorry. I'd like to hear what you think."
            ),
        },
        watch_for={
            STRATEGY.acknowledge_contribution: (
                "Before the next session, reflect on what made you push and bring it to "
                "supervision; watch whether the client now defers to you to keep the peace."
            ),
        },
    ),
    Rule(
        "therapist-side-recurs",
        When(actor=ACTOR.therapist, recurring=True),
        {STRATEGY.link_to_session_pattern: 12},
        "it keeps happening: {recurring_marks}",
    ),
    # --- Recurrence, detected from the history whatever the source says ---------------
    Rule(
        "recurs",
        When(actor=ACTOR.client, recurring=True),
        {
            STRATEGY.link_to_session_pattern: 40,
            STRATEGY.invite_discussion: 16,
            STRATEGY.link_to_outside_pattern: 12,
            STRATEGY.new_relational_experience: 6,
        },
        "it recurs: the client {recurring}",
        examples={
            STRATEGY.link_to_session_pattern: (
                "I've noticed this has come up between us a few times now, in the last "
                "few sessions too. I don't mean it as a criticism; I think it may tell us "
                "something important. Could we look at what happens for you in those "
                "moments, and at what I might be doing that's part of it?"
            ),
            STRATEGY.invite_discussion: (
                "This has happened between us a few times lately. I wonder what it's like "
                "for you when it does, and what you might want to say to me then, if it "
                "felt safe to say it?"
            ),
        },
    ),
    # --- The therapist's read of the source --------------------------------------------
    Rule(
        "source-misunderstanding",
        When(source_in={SOURCE.misunderstanding}),
        {
            STRATEGY.clarify_misunderstanding: 30,
            STRATEGY.invite_discussion: 12,
            STRATEGY.acknowledge_contribution: 10,
            STRATEGY.provide_rationale: 8,
        },
        "the source is a misunderstanding that can be named and corrected now",
        examples={
            STRATEGY.acknowledge_contribution: (
                "I can see how what I said came across that way, and I'm sorry it hurt. "
                "That wasn't what I meant, and I'd like to put it better."
            ),
        },
    ),
    Rule(
        "source-frame",
        When(source_in={SOURCE.frame_concern}),
        {
            STRATEGY.provide_rationale: 30,
            STRATEGY.clarify_misunderstanding: 22,
            STRATEGY.invite_discussion: 10,
        },
        "the source is a concern about the frame, which can be restated and explained now",
        examples={
            STRATEGY.provide_rationale: (
                "I'd like to go back over how this part of our work is arranged, and why we "
                "do it this way. Then tell me what worries you about it; your concern "
                "matters to me."
            ),
            STRATEGY.clarify_misunderstanding: (
                "Can I check what you've understood about how things work here? I want to "
                "be sure nothing has left you with the wrong impression about who hears "
                "what you tell me, or about the arrangements between us."
            ),
        },
    ),
    Rule(
        "source-task",
        When(source_in={SOURCE.task_disagreement}),
        {
            STRATEGY.change_tasks_goals: 30,
            STRATEGY.validate_defensive_posture: 12,
            STRATEGY.provide_rationale: 10,
            STRATEGY.invite_discussion: 8,
        },
        "the source is a disagreement about the task, best revised together",
        examples={
            STRATEGY.provide_rationale: (
                "Let me say why I suggested this exercise, because I didn't explain it "
                "well. If it still doesn't fit once you've heard it, we'll find another "
                "way in."
            ),
        },
    ),
    Rule(
        "source-goal",
        When(source_in={SOURCE.goal_disagreement}),
        {
            STRATEGY.change_tasks_goals: 30,
            STRATEGY.invite_discussion: 12,
            STRATEGY.provide_rationale: 6,
        },
        "the source is a disagreement about the goal, best revised together",
        examples={
            STRATEGY.change_tasks_goals: (
                "It sounds as if the goal we wrote down is more someone else's than yours, "
                "and that matters. What would you want to get out of our work, for "
                "yourself?"
            ),
        },
    ),
    Rule(
        "source-therapist-intervention",
        When(source_in={SOURCE.therapist_intervention}),
        {
            STRATEGY.acknowledge_contribution: 30,
            STRATEGY.invite_discussion: 22,
            STRATEGY.clarify_misunderstanding: 8,
        },
        "the rupture followed something you said or did, so own your part first",
        examples={
            STRATEGY.acknowledge_contribution: (
                "I think what I said a few minutes ago didn't land well, and that's on me. "
                "Could you tell me what it was like to hear it?"
            ),
            STRATEGY.invite_discussion: (
                "Something shifted after I said that. I'd really like to know what it "
                "stirred up for you, even if it's that I got it wrong."
            ),
        },
    ),
    Rule(
        "source-pattern",
        When(source_in={SOURCE.pattern}),
        {
            STRATEGY.link_to_session_pattern: 30,
            STRATEGY.invite_discussion: 20,
            STRATEGY.link_to_outside_pattern: 16,
            STRATEGY.new_relational_experience: 10,
        },
        "there is no single trigger: it reflects how the client relates",
    ),
    Rule(
        "source-unknown-client-moved-away",
        When(source_in={SOURCE.unknown}, actor=ACTOR.client, kind=KIND.withdrawal),
        {
            STRATEGY.invite_discussion: 30,
            STRATEGY.disclose_internal_experience: 22,
            STRATEGY.new_relational_experience: 4,
        },
        "the source is not known yet, so ask gently rather than guess",
        examples={
            STRATEGY.invite_discussion: (
                "I have a sense that something shifted between us a moment ago. I might be "
                "wrong, but I wonder what's happening for you right now? There's no wrong "
                "answer."
            ),
            STRATEGY.disclose_internal_experience: (
                "I notice I'm feeling a little further away from you than I was earlier, "
                "and I find myself wondering whether something I did made it harder to "
                "stay connected. Does that fit anything for you?"
            ),
        },
    ),
    Rule(
        "source-unknown-client-moved-against",
        When(source_in={SOURCE.unknown}, actor=ACTOR.client, kind=KIND.confrontation),
        {
            STRATEGY.invite_discussion: 30,
            STRATEGY.acknowledge_contribution: 20,
            STRATEGY.validate_defensive_posture: 19,
        },
        "the source is not known yet, so hear the complaint out rather than explain or defend",
        examples={
            STRATEGY.invite_discussion: (
                "You're telling me something important, and I want to hear it properly "
                "rather than argue with it. What has it been like for you, working with me?"
            ),
            STRATEGY.acknowledge_contribution: (
                "You may well be right that there are things I don't understand yet. I'd "
                "like to, and I'll need your help with it."
            ),
            STRATEGY.validate_defensive_posture: (
                "It makes sense that you'd question whether I can help; you're trusting me "
                "with a lot."
            ),
        },
    ),
    # --- Nudges: the kind of rupture ----------------------------------------------------
    Rule(
        "client-moved-against",
        When(actor=ACTOR.client, kind=KIND.confrontation),
        {
            STRATEGY.invite_discussion: 4,
            STRATEGY.validate_defensive_posture: 4,
            STRATEGY.acknowledge_contribution: 3,
        },
        "the client moved against you: invite, acknowledge and validate rather than defend",
    ),
    Rule(
        "client-moved-away",
        When(actor=ACTOR.client, kind=KIND.withdrawal),
        {
            STRATEGY.invite_discussion: 4,
            STRATEGY.disclose_internal_experience: 3,
        },
        "the client moved away, and the work is helping them put it into words",
    ),
    # --- Nudges: what was seen in the client --------------------------------------------
    Rule(
        "client-went-quiet-or-off-topic",
        When(
            actor=ACTOR.client,
            any_marker={
                MARKER.minimal_response,
                MARKER.abstract_communication,
                MARKER.avoidant_storytelling,
                MARKER.topic_shift,
                MARKER.content_affect_split,
                MARKER.denial,
            },
        ),
        {STRATEGY.disclose_internal_experience: 2, STRATEGY.invite_discussion: 1},
        "the client {markers}, and naming what you notice can open it up",
        examples={
            STRATEGY.disclose_internal_experience: (
                "I notice it's gone a bit quiet between us, and I find myself wondering "
                "what's happening for you. Is something hard to say just now?"
            ),
        },
    ),
    Rule(
        "client-appeased-or-gave-up",
        When(
            actor=ACTOR.client,
            any_marker={MARKER.deferential_appeasing, MARKER.self_criticism_hopelessness},
        ),
        {STRATEGY.new_relational_experience: 3, STRATEGY.invite_discussion: 1},
        "the client {markers}, and may expect their own view to be unwelcome",
        examples={
            STRATEGY.new_relational_experience: (
                "(When the client disagrees even slightly, welcome it warmly.) \"I'm really "
                'glad you said that. Tell me more about where you see it differently."'
            ),
        },
    ),
    Rule(
        "client-complained-about-therapist",
        When(actor=ACTOR.client, any_marker={MARKER.complaint_about_therapist}),
        {STRATEGY.acknowledge_contribution: 3, STRATEGY.validate_defensive_posture: 1},
        "the client {markers}, and owning what is fair in it keeps you from defending",
        examples={
            STRATEGY.acknowledge_contribution: (
                "You may have a point. I don't always get it right, and I'd much rather "
                "hear about it than not."
            ),
        },
    ),
    Rule(
        "client-pushed-back",
        When(
            actor=ACTOR.client,
            any_marker={
                MARKER.rejects_intervention,
                MARKER.defends_self,
                MARKER.control_pressure,
            },
        ),
        {STRATEGY.validate_defensive_posture: 3, STRATEGY.acknowledge_contribution: 1},
        "the client {markers}, and siding with the reluctance works better than pushing through it",
    ),
    Rule(
        "client-complained-about-the-work",
        When(
            actor=ACTOR.client,
            any_marker={MARKER.complaint_about_activities, MARKER.complaint_about_progress},
        ),
        {STRATEGY.change_tasks_goals: 3, STRATEGY.provide_rationale: 1},
        "the client {markers}",
    ),
    Rule(
        "client-complained-about-the-frame",
        When(actor=ACTOR.client, any_marker={MARKER.complaint_about_parameters}),
        {STRATEGY.provide_rationale: 3, STRATEGY.clarify_misunderstanding: 1},
        "the client {markers}",
    ),
    # --- Nudges: how strong it was ------------------------------------------------------
    Rule(
        "strong-confrontation",
        When(actor=ACTOR.client, kind=KIND.confrontation, min_intensity=4),
        {STRATEGY.validate_defensive_posture: 4, STRATEGY.acknowledge_contribution: 1},
        "the feeling is strong (intensity {intensity} of 5): side with it before anything else",
        examples={
            STRATEGY.validate_defensive_posture: (
                "You're really angry about this, and you have every right to be. I'm not "
                "going to argue with it; I'd like to understand it."
            ),
        },
    ),
    Rule(
        "marked-withdrawal",
        When(actor=ACTOR.client, kind=KIND.withdrawal, min_intensity=4),
        {STRATEGY.new_relational_experience: 3, STRATEGY.invite_discussion: 1},
        "the withdrawal is marked (intensity {intensity} of 5): stay warm without pressing",
    ),
    # Returning to the focus can bypass a rupture, so it is only offered for a mild,
    # one-off drift with nothing else known, and always at the bottom.
    Rule(
        "mild-one-off-drift",
        When(
            actor=ACTOR.client,
            source_in={SOURCE.unknown},
            recurring=False,
            max_intensity=2,
            any_marker={
                MARKER.topic_shift,
                MARKER.avoidant_storytelling,
                MARKER.abstract_communication,
            },
        ),
        {STRATEGY.redirect_refocus: 2},
        "the client {markers} mildly (intensity {intensity} of 5) and it has not recurred, "
        "so gently coming back to the agreed focus is an option",
    ),
    # --- Nudges: what the therapist noticed in themself ---------------------------------
    Rule(
        "felt-irritated-or-defensive",
        When(any_signal={SIGNAL.irritated, SIGNAL.defensive}),
        {STRATEGY.acknowledge_contribution: 4, STRATEGY.disclose_internal_experience: 3},
        "you felt {signals}, and owning your part keeps you from defending",
        examples={
            STRATEGY.acknowledge_contribution: (
                "I think I got a bit defensive just then, and that can't have made it "
                "easier for you to say what you needed to. I'm sorry."
            ),
            STRATEGY.disclose_internal_experience: (
                "I notice I've been getting a bit tense in how I respond, and I don't want "
                "that to get in our way. Can we slow down and look at what's happening "
                "between us?"
            ),
        },
    ),
    Rule(
        "felt-bored-or-disengaged",
        When(any_signal={SIGNAL.bored, SIGNAL.disengaged}),
        {STRATEGY.disclose_internal_experience: 3, STRATEGY.acknowledge_contribution: 2},
        "you felt {signals}, which often means something has moved away between you",
        examples={
            STRATEGY.disclose_internal_experience: (
                "I notice I've been finding it harder to stay with you just now, and I "
                "wonder whether we've moved away from something that matters. Did "
                "something I said earlier stay with you?"
            ),
        },
    ),
    Rule(
        "felt-shut-out-or-pressured",
        When(any_signal={SIGNAL.shut_out, SIGNAL.pressured}),
        {STRATEGY.disclose_internal_experience: 3},
        "you felt {signals}, and saying so with care can open the interaction up",
    ),
    Rule(
        "felt-confused",
        When(any_signal={SIGNAL.confused}),
        {STRATEGY.clarify_misunderstanding: 5, STRATEGY.invite_discussion: 1},
        "you felt {signals}, so something may have been misheard on either side",
    ),
    Rule(
        "felt-guilty",
        When(any_signal={SIGNAL.guilty}),
        {STRATEGY.acknowledge_contribution: 3},
        "you felt {signals}, which may point to your own part in it",
    ),
    Rule(
        "felt-anxious",
        When(any_signal={SIGNAL.anxious}),
        {STRATEGY.invite_discussion: 2},
        "you felt {signals}, so check what is happening with the client rather than guess",
    ),
)


def check_table(rules=RULES):
    """Raise ``ValueError`` on a rule that could never work as written."""
    known = {
        "source_in": vocabulary.slugs(vocabulary.SOURCES),
        "any_marker": vocabulary.slugs(vocabulary.MARKERS),
        "any_signal": vocabulary.slugs(vocabulary.INTERNAL_SIGNALS),
    }
    strategies = vocabulary.slugs(vocabulary.STRATEGY_TABLE)
    names = set()
    for rule in rules:
        if rule.name in names:
            raise ValueError(f"rule {rule.name!r} appears twice")
        names.add(rule.name)
        for attr, allowed in known.items():
            unknown = getattr(rule.when, attr) - allowed
            if unknown:
                raise ValueError(f"rule {rule.name!r}: unknown {attr} {sorted(unknown)}")
        for mapping in (rule.weights, rule.examples, rule.watch_for):
            unknown = set(mapping) - strategies
            if unknown:
                raise ValueError(f"rule {rule.name!r}: unknown strategy {sorted(unknown)}")
        if not rule.weights or min(rule.weights.values()) <= 0:
            raise ValueError(f"rule {rule.name!r}: weights must be positive")
        if set(rule.examples) - set(rule.weights) or set(rule.watch_for) - set(rule.weights):
            raise ValueError(f"rule {rule.name!r}: phrasing for a strategy it does not weigh")


check_table()
