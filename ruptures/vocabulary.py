"""The rupture-repair vocabulary of docs/domain.md, as plain data.

Pure Python on purpose: the strategy engine must not import Django, yet it, the
models, the importer and the exports all have to speak exactly these slugs. The
Django ``TextChoices`` in ``ruptures.models`` are built from these tables.

Each table is a tuple of ``(slug, label)`` pairs; labels may be reworded, slugs never.
"""

KINDS = (
    ("withdrawal", "Withdrawal (moves away)"),
    ("confrontation", "Confrontation (moves against)"),
)

ACTORS = (
    ("client", "Client"),
    ("therapist", "Therapist"),
)

WITHDRAWAL_MARKERS = (
    ("denial", "Denies an evident feeling or problem"),
    ("minimal_response", "Falls silent / minimal responses"),
    ("abstract_communication", "Vague, abstract or intellectualised talk"),
    ("avoidant_storytelling", "Long stories that lead away"),
    ("topic_shift", "Changes the subject"),
    ("deferential_appeasing", "Agrees too readily, appeases"),
    ("content_affect_split", "Words and affect do not match"),
    ("self_criticism_hopelessness", "Self-criticism or hopelessness"),
)

CONFRONTATION_MARKERS = (
    ("complaint_about_therapist", "Complains about the therapist"),
    ("rejects_intervention", "Rejects the intervention"),
    ("complaint_about_activities", "Complains about the tasks of therapy"),
    ("complaint_about_parameters", "Complains about the frame (time, fees, ...)"),
    ("complaint_about_progress", "Complains about progress or goals"),
    ("defends_self", "Defends against the therapist's remarks"),
    ("control_pressure", "Tries to control or pressure"),
)

MARKERS = WITHDRAWAL_MARKERS + CONFRONTATION_MARKERS

# Which kind each marker belongs to; a rupture may carry both (a mixed rupture).
MARKER_KIND = {
    **{slug: "withdrawal" for slug, _ in WITHDRAWAL_MARKERS},
    **{slug: "confrontation" for slug, _ in CONFRONTATION_MARKERS},
}

INTERNAL_SIGNALS = (
    ("disengaged", "Disengaged"),
    ("bored", "Bored"),
    ("irritated", "Irritated"),
    ("anxious", "Anxious"),
    ("defensive", "Defensive"),
    ("pressured", "Pressured"),
    ("confused", "Confused"),
    ("shut_out", "Shut out"),
    ("guilty", "Guilty"),
    ("other", "Other"),
)

SOURCES = (
    ("misunderstanding", "A misunderstanding"),
    ("frame_concern", "The frame (confidentiality, fees, scheduling, boundaries)"),
    ("task_disagreement", "Disagreement about a task"),
    ("goal_disagreement", "Disagreement about a goal"),
    ("therapist_intervention", "Something I said or did"),
    ("identity_or_culture", "Their identity, culture or background felt misunderstood or slighted"),
    ("pattern", "A pattern: how the client relates"),
    ("unknown", "Not sure yet"),
)

REPAIR_STATUSES = (
    ("unaddressed", "Unaddressed"),
    ("attempted", "Attempted"),
    ("partially_resolved", "Partially resolved"),
    ("resolved", "Resolved"),
    ("unresolved", "Unresolved"),
)

# A rupture is open while nothing has settled it: these statuses still need work.
OPEN_STATUSES = frozenset({"unaddressed", "attempted", "unresolved"})
# A rupture counts as repaired (the dashboards' repair rate) with one of these.
REPAIRED_STATUSES = ("resolved", "partially_resolved")

# domain.md section 6: a rupture is recurring when one of its markers was logged in at
# least RECURRENCE_MIN_SESSIONS of the client's previous RECURRENCE_WINDOW held sessions.
# Older history does not make a pattern, and two ruptures in one session are one session.
RECURRENCE_WINDOW = 5
RECURRENCE_MIN_SESSIONS = 2

# How long a session may last, in minutes; a rupture's minute lies within it.
SESSION_MIN_MINUTES = 5
SESSION_MAX_MINUTES = 480

# Case codes appear in URLs and exports, so they are short, plain and never a name.
CASE_CODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"

# Section 6b: a risk concern comes before the relationship.
RISKS = (
    ("none", "No risk concern"),
    ("self_harm", "Self-harm, suicidal talk or hopelessness with risk"),
    ("harm_to_others", "Risk of harm to others"),
    ("acute_crisis", "Acute crisis (intoxication, dissociation, ...)"),
    ("safeguarding", "Safeguarding: a child or vulnerable adult at risk"),
)
NO_RISK = "none"

# The marker and intensities at which the rupture form asks about risk (section 6b).
RISK_PROMPT_MARKER = "self_criticism_hopelessness"
RISK_PROMPT_MIN_INTENSITY = 4

# Section 6a: when a suggestion is for.
WHENS = (
    ("in_the_moment", "If it happens again in the room"),
    ("next_session", "At the next session"),
    ("over_time", "Over the coming sessions"),
)

# Section 6d: how far a repair attempt got, in the order the stages come.
STAGES = (
    ("attended", "Attended to the marker and invited the client back to it"),
    ("explored_experience", "Explored the client's experience of the rupture"),
    ("explored_avoidance", "Explored what held the client back from saying it"),
    ("wish_or_need_voiced", "The underlying wish or need was voiced"),
)

# How a therapy ended, asked at discharge.
ENDINGS = (
    ("planned", "Planned ending"),
    ("dropout", "The client dropped out"),
    ("transfer", "Transferred to another service or therapist"),
    ("other", "Other"),
)

FAMILIES = (
    ("immediate", "Immediate"),
    ("expressive", "Expressive"),
)

APPROACHES = (
    ("direct", "Direct"),
    ("indirect", "Indirect"),
)

# (slug, label, family, approach): section 5 of docs/domain.md.
STRATEGY_TABLE = (
    ("clarify_misunderstanding", "Clarify the misunderstanding", "immediate", "direct"),
    ("provide_rationale", "Provide a rationale", "immediate", "direct"),
    ("change_tasks_goals", "Change tasks or goals together", "immediate", "indirect"),
    ("validate_defensive_posture", "Validate the defensive posture", "immediate", "indirect"),
    ("redirect_refocus", "Redirect to the agreed focus", "immediate", "indirect"),
    ("invite_discussion", "Invite discussion of the relationship", "expressive", "direct"),
    ("acknowledge_contribution", "Acknowledge my contribution", "expressive", "direct"),
    ("disclose_internal_experience", "Disclose my internal experience", "expressive", "direct"),
    ("link_to_session_pattern", "Link to a pattern between us", "expressive", "direct"),
    ("link_to_outside_pattern", "Link to patterns outside therapy", "expressive", "direct"),
    ("new_relational_experience", "Offer a new relational experience", "expressive", "indirect"),
)

STRATEGIES = tuple((slug, label) for slug, label, _, _ in STRATEGY_TABLE)
STRATEGY_FAMILY = {slug: family for slug, _, family, _ in STRATEGY_TABLE}
STRATEGY_APPROACH = {slug: approach for slug, _, _, approach in STRATEGY_TABLE}


def slugs(table):
    """The slugs of a ``(slug, label, ...)`` table, as a frozenset for membership tests."""
    return frozenset(row[0] for row in table)
