"""Each domain constant and meaning lives once: copies drift apart, so none may appear."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["accounts", "audit", "sessions", "ruptures", "strategies", "reminders", "checks", "supervision", "reports",
        "exchange", "config"]

# (what, text that spells the rule, the one file allowed to spell it)
RULES = [
    ("the case-code pattern", "[A-Za-z0-9][A-Za-z0-9._-]", "ruptures/vocabulary.py"),
    ("the session-length bound", "480", "ruptures/vocabulary.py"),
    ("the recurrence window", "RECURRENCE_WINDOW = 5", "ruptures/vocabulary.py"),
    ("the open statuses", '"unaddressed", "attempted", "unresolved"', "ruptures/vocabulary.py"),
    ("the repaired statuses", '("resolved", "partially_resolved")', "ruptures/vocabulary.py"),
    ("the repaired statuses, as a list", '["resolved", "partially_resolved"]', None),
    ("who must use a second factor", "in settings.MFA_REQUIRED_ROLES", "accounts/mfa.py"),
]


def sources():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path.read_text()


@pytest.mark.parametrize(("what", "text", "home"), RULES, ids=[rule[0] for rule in RULES])
def test_a_rule_is_spelled_out_in_one_place(what, text, home):
    assert [name for name, source in sources() if text in source] == ([home] if home else [])
