"""What an alliance check's answers mean: the one home of these rules.

Any instrument that maps its items onto the meanings below (`tension`, `intensity`,
`worked_through`, `together`) is read by the same rules, whatever its wording. Pure
Python: the models fill their meaning columns with these functions, and the SQL of the
sweep and the dashboards reads those columns and the thresholds named here. One rule
reads more than a check's own answers: *unlogged* asks what else was recorded of the
session, so it is stated where the session's records are, checks.models.unlogged_at.
"""

from dataclasses import dataclass

MEANINGS = ("tension", "intensity", "worked_through", "together")
SCALE_MEANINGS = ("intensity", "worked_through", "together")
TENSION_ANSWERS = ("yes", "no", "rather_not_say")
SCALE_MIN, SCALE_MAX = 1, 5

# A client reports a rupture when bothered this much, or when it was sorted out this little.
REPORTED_INTENSITY = 3
REPORTED_WORKED_THROUGH = 2
# A drop: the client's `together` this many points below their previous check.
DROP_POINTS = 2
# A flag raised from a client's check goes to the supervisor at this intensity.
ESCALATING_INTENSITY = 4


def meanings_of(answers: dict, mapping: dict) -> dict:
    """The meaning columns of a set of answers, given an instrument's {item slug: meaning}."""
    found = dict.fromkeys(MEANINGS)
    for item, meaning in mapping.items():
        if meaning in found and item in answers:
            found[meaning] = answers[item]
    if found["tension"] not in TENSION_ANSWERS:
        found["tension"] = None
    for meaning in SCALE_MEANINGS:
        value = found[meaning]
        found[meaning] = int(value) if _is_scale(value) else None
    return found


def _is_scale(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return isinstance(value, int) and SCALE_MIN <= value <= SCALE_MAX


def client_reported_rupture(*, tension, intensity, worked_through) -> bool:
    """§8a: tension `yes`, or intensity >= 3, or worked-through <= 2."""
    return (
        tension == "yes"
        or (intensity is not None and intensity >= REPORTED_INTENSITY)
        or (worked_through is not None and worked_through <= REPORTED_WORKED_THROUGH)
    )


def dropped(*, together, previous_together) -> bool:
    """The client's `together` 2 or more points below their previous check."""
    if together is None or previous_together is None:
        return False
    return previous_together - together >= DROP_POINTS


@dataclass(frozen=True)
class Agreement:
    n: int  # sessions where both answered `tension` yes or no
    agreed: int
    share: float | None
    kappa: float | None  # Cohen's kappa; None when n is 0 or chance agreement is total


def agreement(pairs) -> Agreement:
    """Therapist and client on `tension`, over (therapist, client) answer pairs.

    Pairs where either said `rather_not_say` or nothing are left out.
    """
    kept = [(t, c) for t, c in pairs if t in ("yes", "no") and c in ("yes", "no")]
    return agreement_from_counts(
        yes_yes=sum(1 for t, c in kept if t == c == "yes"),
        no_no=sum(1 for t, c in kept if t == c == "no"),
        yes_no=sum(1 for t, c in kept if t == "yes" and c == "no"),
        no_yes=sum(1 for t, c in kept if t == "no" and c == "yes"),
    )


def agreement_from_counts(*, yes_yes: int, no_no: int, yes_no: int, no_yes: int) -> Agreement:
    """The same from the 2x2 table (therapist answer first), as SQL can count it."""
    n = yes_yes + no_no + yes_no + no_yes
    if n == 0:
        return Agreement(n=0, agreed=0, share=None, kappa=None)
    agreed = yes_yes + no_no
    observed = agreed / n
    therapist_yes, client_yes = (yes_yes + yes_no) / n, (yes_yes + no_yes) / n
    expected = therapist_yes * client_yes + (1 - therapist_yes) * (1 - client_yes)
    kappa = None if expected == 1 else (observed - expected) / (1 - expected)
    return Agreement(n=n, agreed=agreed, share=observed, kappa=kappa)
