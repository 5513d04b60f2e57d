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

Besides the weights, four smaller tables (after ``RULES``) say what the weights cannot:
``WHEN`` (section 6a: when each strategy is for), ``HOLD_BACK`` (section 6c and the
identity rule: what must not lead, and why), ``NEXT_STEPS`` (section 6d: where the
next attempt starts from the stage the last one reached) and ``SAFETY_FIRST`` (6b).

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
RISK = _names(vocabulary.RISKS)
STAGE = _names(vocabulary.STAGES)
WHEN = _names(vocabulary.WHENS)

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
    risk_in: frozenset = frozenset()
    declined_relational_talk: bool | None = None
    # The rupture came in one of the first N sessions of the therapy (when known).
    max_session_number: int | None = None
    # An immediate strategy ended unresolved with this client for this kind of rupture.
    failed_immediate: bool | None = None
    # The stage the last repair attempt on this rupture reached.
    last_stage_in: frozenset = frozenset()

    def __post_init__(self):
        # The table is written with plain sets for readability; freeze them here.
        for name in ("source_in", "any_marker", "any_signal", "risk_in", "last_stage_in"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))


@dataclass(frozen=True)
class Rule:
    name: str
    when: When
    weights: Mapping[str, int]
    # Filled in with {markers}, {signals}, {recurring}, {recurring_marks}, {intensity},
    # {failed_before}, {session_number}.
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
                "Can I check what you've understood about who hears what you tell me? I keep "
                "brief notes, and my clinical supervisor reads them to help me help you; "
                "beyond that, I'd only share anything if someone's safety were at serious "
                "risk, and I'd try to talk with you first. What worries you about it?"
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
    Rule(
        "source-identity-or-culture",
        When(source_in={SOURCE.identity_or_culture}),
        {
            STRATEGY.acknowledge_contribution: 30,
            STRATEGY.invite_discussion: 22,
            STRATEGY.validate_defensive_posture: 12,
            STRATEGY.clarify_misunderstanding: 4,
        },
        "the client experienced something about their identity, culture or background as "
        "misunderstood or slighted: own it and validate first",
        examples={
            STRATEGY.acknowledge_contribution: (
                "I think what I said came from my own assumptions rather than from what "
                "you've told me about your life, and I'm sorry. I'd like to understand how "
                "it really is for you, if you're willing to tell me."
            ),
            STRATEGY.invite_discussion: (
                "I'd like to hear what it was like to hear that from me. I may well have "
                "got something wrong about where you come from, and I'd rather know than "
                "carry on as if I hadn't."
            ),
            STRATEGY.validate_defensive_posture: (
                "It makes sense that you'd bristle at that. You shouldn't have to explain "
                "or defend who you are to me."
            ),
        },
        watch_for={
            STRATEGY.acknowledge_contribution: (
                "Whether the client has to reassure you or educate you; keep the focus on "
                "their experience, and take your own assumptions to supervision."
            ),
        },
    ),
    # --- Safety, and when talk about the relationship waits (sections 6b and 6c) ---------
    # These keep a non-metacommunicative move available whenever HOLD_BACK sets the
    # metacommunication aside, so the top suggestion is never one that was held back.
    Rule(
        "risk-after-safety",
        When(risk_in={RISK.self_harm, RISK.harm_to_others, RISK.acute_crisis, RISK.safeguarding}),
        {STRATEGY.new_relational_experience: 12, STRATEGY.validate_defensive_posture: 10},
        "there is a risk concern: once safety has been addressed, stay steady and warm "
        "without pressing for talk about the relationship",
        examples={
            STRATEGY.new_relational_experience: (
                "(Once the risk protocol has been followed: stay steady, warm and "
                "unhurried.) \"I'm glad you told me how bad it has got. We'll take it one "
                'step at a time, together."'
            ),
            STRATEGY.validate_defensive_posture: (
                "It makes sense that you don't feel like talking about much else right now. "
                "We don't have to; what matters first is that you're safe."
            ),
        },
    ),
    Rule(
        "therapist-caught-up",
        When(any_signal={SIGNAL.irritated, SIGNAL.defensive, SIGNAL.pressured}, min_intensity=4),
        {STRATEGY.validate_defensive_posture: 6, STRATEGY.acknowledge_contribution: 2},
        "you felt {signals} in a strong rupture (intensity {intensity} of 5): step back "
        "first, then side with the client's position rather than argue",
        watch_for={
            STRATEGY.validate_defensive_posture: (
                "Your own pull to win the point; if it is still there before the next "
                "session, take it to supervision first."
            ),
        },
    ),
    Rule(
        "declined-relational-talk",
        When(declined_relational_talk=True),
        {STRATEGY.new_relational_experience: 12, STRATEGY.validate_defensive_posture: 10},
        "the client has said they do not want to talk about the relationship, so respond "
        "in a way that shows it differently rather than naming it",
    ),
    Rule(
        "first-sessions",
        When(max_session_number=2),
        {
            STRATEGY.provide_rationale: 12,
            STRATEGY.validate_defensive_posture: 8,
            STRATEGY.clarify_misunderstanding: 6,
        },
        "it is session {session_number} of the therapy, where explaining how the work goes "
        "and siding with the client's caution fit better than talk about the relationship",
        examples={
            STRATEGY.provide_rationale: (
                "Since we're just starting, can I say a little about how this works? There's "
                "no right way to do it, and it helps me most when you tell me if something "
                "doesn't fit, even if it's something I suggested."
            ),
        },
    ),
    # --- What failed before (section 6) ---------------------------------------------------
    Rule(
        "immediate-repair-failed-before",
        When(actor=ACTOR.client, failed_immediate=True),
        {
            STRATEGY.invite_discussion: 30,
            STRATEGY.disclose_internal_experience: 14,
            STRATEGY.new_relational_experience: 10,
            STRATEGY.link_to_session_pattern: 8,
        },
        "{failed_before} with this client for this kind of rupture, so explore what is "
        "happening between you rather than try another quick fix",
        examples={
            STRATEGY.invite_discussion: (
                "We've tried changing things a couple of times now and it still doesn't "
                "feel right between us. Rather than me suggesting something else, I'd like "
                "to understand what it's like for you when we get to this point."
            ),
        },
    ),
    # --- How far the last attempt got (section 6d) ---------------------------------------
    Rule(
        "stage-attended",
        When(last_stage_in={STAGE.attended}),
        {STRATEGY.invite_discussion: 10, STRATEGY.validate_defensive_posture: 4},
        "the last attempt brought the client back to the moment; next, explore how they "
        "experienced it",
    ),
    Rule(
        "stage-explored-experience",
        When(last_stage_in={STAGE.explored_experience}),
        {STRATEGY.validate_defensive_posture: 8, STRATEGY.disclose_internal_experience: 6},
        "the last attempt explored the client's experience; next, gently explore what makes "
        "it hard to say",
    ),
    Rule(
        "withdrawal-towards-assertion",
        When(kind=KIND.withdrawal, last_stage_in={STAGE.explored_avoidance}),
        {STRATEGY.new_relational_experience: 30, STRATEGY.validate_defensive_posture: 8},
        "the last attempt got to what holds the client back; now help them say what they "
        "need or disagree with, and welcome it when they do",
        examples={
            STRATEGY.new_relational_experience: (
                "You've told me it's hard to disagree with me. I'd really like to hear "
                "where you see it differently, even a little. It won't spoil our work; "
                "it helps it."
            ),
        },
    ),
    Rule(
        "confrontation-towards-vulnerability",
        When(kind=KIND.confrontation, last_stage_in={STAGE.explored_avoidance}),
        {STRATEGY.acknowledge_contribution: 12, STRATEGY.validate_defensive_posture: 10},
        "the last attempt got to what holds the client back; now make room for the hurt or "
        "disappointment under the anger",
        examples={
            STRATEGY.validate_defensive_posture: (
                "I can hear how angry you are, and I wonder whether underneath it there's "
                "disappointment, that this hasn't helped the way you hoped. That would make "
                "sense to me."
            ),
        },
    ),
    Rule(
        "need-voiced",
        When(last_stage_in={STAGE.wish_or_need_voiced}),
        {STRATEGY.new_relational_experience: 16, STRATEGY.change_tasks_goals: 10},
        "the client voiced what they need; respond to it, and let it shape the work",
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


# --- 6a: when each strategy is for -----------------------------------------------------
# Ruptures are logged after the session, so every suggestion is advice for later: what
# to do if the marker shows again in the room, how to open the next session, or pattern
# work across sessions (highlight patterns when the client is not in the middle of it).
TIMING = {
    STRATEGY.clarify_misunderstanding: WHEN.next_session,
    STRATEGY.provide_rationale: WHEN.next_session,
    STRATEGY.change_tasks_goals: WHEN.next_session,
    STRATEGY.validate_defensive_posture: WHEN.in_the_moment,
    STRATEGY.redirect_refocus: WHEN.in_the_moment,
    STRATEGY.invite_discussion: WHEN.next_session,
    STRATEGY.acknowledge_contribution: WHEN.next_session,
    STRATEGY.disclose_internal_experience: WHEN.in_the_moment,
    STRATEGY.link_to_session_pattern: WHEN.over_time,
    STRATEGY.link_to_outside_pattern: WHEN.over_time,
    STRATEGY.new_relational_experience: WHEN.in_the_moment,
}

# --- 6c: holding back -------------------------------------------------------------------
# Talking about what is happening between the two of them.
METACOMMUNICATION = frozenset({
    STRATEGY.invite_discussion,
    STRATEGY.disclose_internal_experience,
    STRATEGY.link_to_session_pattern,
    STRATEGY.link_to_outside_pattern,
})
LINKS = frozenset({STRATEGY.link_to_session_pattern, STRATEGY.link_to_outside_pattern})


@dataclass(frozen=True)
class HoldBack:
    """Strategies that must not be suggested as they stand, and the reason shown for it.

    A held-back strategy leaves the ranked list and is listed apart with its reason, so
    the therapist sees the reasoning. ``drop`` only changes the wording: nothing of it is
    offered at all, not merely later.
    """

    name: str
    when: When
    strategies: frozenset
    # Filled in like a rule's ``because``.
    reason: str


HOLD_BACK = (
    HoldBack(
        "acute-crisis",
        When(risk_in={RISK.acute_crisis}),
        METACOMMUNICATION,
        "the client is in an acute crisis: no talk about the relationship until they are "
        "safe and settled",
    ),
    HoldBack(
        "risk-first",
        When(risk_in={RISK.self_harm, RISK.harm_to_others, RISK.safeguarding}),
        METACOMMUNICATION,
        "there is a risk concern: safety comes first, and talk about the relationship waits "
        "until the risk has been addressed",
    ),
    HoldBack(
        "therapist-caught-up",
        When(any_signal={SIGNAL.irritated, SIGNAL.defensive, SIGNAL.pressured}, min_intensity=4),
        METACOMMUNICATION,
        "you felt {signals} in a strong rupture (intensity {intensity} of 5): step back "
        "first, through mindfulness or supervision, before disclosing or interpreting anything",
    ),
    HoldBack(
        "declined-relational-talk",
        When(declined_relational_talk=True),
        METACOMMUNICATION,
        "the client declined to talk about the relationship: respect that for now",
    ),
    HoldBack(
        "first-sessions",
        When(max_session_number=2),
        METACOMMUNICATION,
        "it is session {session_number} of the therapy: in the first two sessions "
        "immediate strategies fit better than talk about the relationship",
    ),
    HoldBack(
        "identity-or-culture",
        When(source_in={SOURCE.identity_or_culture}),
        LINKS,
        "the rupture is about the client's identity or culture: linking it to their "
        "patterns risks pathologising a fair reaction",
    ),
    HoldBack(
        "withdrawal-past-the-invitation",
        When(kind=KIND.withdrawal, last_stage_in={STAGE.explored_avoidance}),
        frozenset({STRATEGY.invite_discussion}),
        "the last attempt already got to what holds the client back: another invitation "
        "would go backwards",
    ),
)

# --- 6d: where the next attempt starts --------------------------------------------------
NEXT_STEPS = {
    STAGE.attended: (
        "The last attempt brought the client back to the moment. Next: explore how they "
        "experienced it."
    ),
    STAGE.explored_experience: (
        "The last attempt explored the client's experience of the rupture. Next: gently "
        "explore what makes it hard to say (fears, self-doubt)."
    ),
    STAGE.explored_avoidance: {
        KIND.withdrawal: (
            "The last attempt got to what holds the client back. Next: help them assert "
            "the need or disagreement itself, not another invitation to talk."
        ),
        KIND.confrontation: (
            "The last attempt got to what holds the client back. Next: make room for the "
            "vulnerability under the anger (the hurt, the disappointment)."
        ),
    },
    STAGE.wish_or_need_voiced: (
        "The client voiced the underlying wish or need. Next: respond to it and let it "
        "shape the work; check at the next session how that felt."
    ),
}

# --- 6b: safety first -------------------------------------------------------------------
SAFETY_FIRST = (
    "Safety first: follow the clinic's risk protocol ({protocol}) before any repair work. "
    "The suggestions below are for after safety has been addressed."
)


def check_table(rules=RULES, hold_back=HOLD_BACK):
    """Raise ``ValueError`` on a rule that could never work as written."""
    known = {
        "source_in": vocabulary.slugs(vocabulary.SOURCES),
        "any_marker": vocabulary.slugs(vocabulary.MARKERS),
        "any_signal": vocabulary.slugs(vocabulary.INTERNAL_SIGNALS),
        "risk_in": vocabulary.slugs(vocabulary.RISKS),
        "last_stage_in": vocabulary.slugs(vocabulary.STAGES),
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
    for row in hold_back:
        for attr, allowed in known.items():
            unknown = getattr(row.when, attr) - allowed
            if unknown:
                raise ValueError(f"hold-back {row.name!r}: unknown {attr} {sorted(unknown)}")
        if not row.strategies or row.strategies - strategies:
            raise ValueError(f"hold-back {row.name!r}: unknown strategy {sorted(row.strategies - strategies)}")
    if set(TIMING) != strategies or set(TIMING.values()) - vocabulary.slugs(vocabulary.WHENS):
        raise ValueError("TIMING must give every strategy one of the vocabulary's whens")


check_table()
