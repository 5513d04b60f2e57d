import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

REPO = Path(__file__).resolve().parents[1]
VIGNETTES_DIR = REPO / "strategies" / "vignettes"
VIGNETTES_FILE = VIGNETTES_DIR / "public.json"
DEPTH_FILE = VIGNETTES_DIR / "depth.json"


def run(path):
    out = StringIO()
    call_command("suggest_strategies", str(path), stdout=out)
    return json.loads(out.getvalue())


def write_vignettes(tmp_path, vignettes):
    path = tmp_path / "vignettes.json"
    path.write_text(json.dumps({"vignettes": vignettes}), encoding="utf-8")
    return path


def vignette(id_, **rupture_changes):
    rupture = {
        "kind": "withdrawal",
        "actor": "client",
        "markers": ["minimal_response"],
        "intensity": 3,
        "source": "unknown",
        "internal_signals": [],
        **rupture_changes,
    }
    return {"id": id_, "rupture": rupture, "history": []}


def test_it_prints_ranked_suggestions_for_every_public_vignette():
    expected = json.loads(VIGNETTES_FILE.read_text(encoding="utf-8"))["vignettes"]
    results = run(VIGNETTES_FILE)

    assert [r["id"] for r in results] == [v["id"] for v in expected]
    for result in results:
        assert result["suggestions"]
        for suggestion in result["suggestions"]:
            assert set(suggestion) == {"strategy", "family", "approach", "when", "rationale", "example"}
        assert result["safety_first"] is False
        assert result["held_back"] == []
    eye_contact = next(r for r in results if r["id"] == "seed-eye-contact")
    assert eye_contact["suggestions"][0]["strategy"] == "change_tasks_goals"
    assert "disagreement about the task" in eye_contact["suggestions"][0]["rationale"]


@pytest.mark.parametrize("path", [VIGNETTES_FILE, DEPTH_FILE], ids=["public", "depth"])
def test_its_output_meets_what_each_vignette_expects(path):
    expected = {v["id"]: v["expect"] for v in json.loads(path.read_text(encoding="utf-8"))["vignettes"]}
    for result in run(path):
        expect, best = expected[result["id"]], result["suggestions"][0]
        assert result["safety_first"] is expect.get("safety_first", False)
        assert best["strategy"] in expect.get("top_any_of", [best["strategy"]])
        assert best["strategy"] not in expect.get("not_top", [])
        assert best["family"] == expect.get("family", best["family"])
        assert best["approach"] == expect.get("approach", best["approach"])
        assert best["when"] == expect.get("top_when", best["when"])
        top3 = [s["strategy"] for s in result["suggestions"][:3]]
        assert set(expect.get("in_top3", [])) <= set(top3)
        held = {h["strategy"] for h in result["held_back"]}
        assert not held & {s["strategy"] for s in result["suggestions"]}


def test_it_reads_risk_attempts_and_stages_and_says_what_it_held_back(tmp_path):
    crisis = vignette(
        "crisis", risk="acute_crisis", declined_relational_talk=False, session_number=7,
        attempts=[{"strategy": "invite_discussion", "outcome": "attempted", "stage_reached": "attended"}],
    )
    crisis["history"] = [{
        "sessions_ago": 1, "kind": "withdrawal", "markers": ["denial"],
        "attempts": [{"strategy": "change_tasks_goals", "outcome": "unresolved"}],
    }]
    [result] = run(write_vignettes(tmp_path, [crisis]))
    assert result["safety_first"] is True
    assert {h["strategy"] for h in result["held_back"]} >= {"invite_discussion", "disclose_internal_experience"}
    assert all("acute crisis" in h["reason"] for h in result["held_back"])
    assert {s["when"] for s in result["suggestions"]} <= {"in_the_moment", "next_session", "over_time"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"risk": "doom"}, 'rupture.risk: unknown risk "doom"'),
        ({"declined_relational_talk": "yes"}, "rupture.declined_relational_talk: must be true or false"),
        ({"session_number": 0}, "rupture.session_number: must be a positive whole number"),
        (
            {"attempts": [{"strategy": "hug", "outcome": "resolved"}]},
            'rupture.attempts[0].strategy: unknown strategy "hug"',
        ),
        ({"attempts": [{"strategy": "invite_discussion"}]}, "rupture.attempts[0].outcome: is required"),
        (
            {"attempts": [{"strategy": "invite_discussion", "outcome": "resolved", "stage_reached": "done"}]},
            'rupture.attempts[0].stage_reached: unknown stage "done"',
        ),
    ],
)
def test_it_names_the_field_of_a_bad_new_fact(tmp_path, change, message):
    with pytest.raises(CommandError, match=re.escape(f'vignette "v": {message}')):
        run(write_vignettes(tmp_path, [vignette("v", **change)]))


def test_it_prints_indented_json():
    out = StringIO()
    call_command("suggest_strategies", str(VIGNETTES_FILE), stdout=out)
    assert out.getvalue().startswith('[\n  {\n    "id": ')


def test_it_reads_history_to_spot_a_pattern(tmp_path):
    recurring = vignette("v1", markers=["topic_shift"])
    recurring["history"] = [
        {"sessions_ago": 1, "kind": "withdrawal", "markers": ["topic_shift"]},
        {"sessions_ago": 4, "kind": "withdrawal", "markers": ["topic_shift"]},
    ]
    [result] = run(write_vignettes(tmp_path, [recurring]))
    assert result["suggestions"][0]["family"] == "expressive"


def test_it_rejects_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"vignettes": [', encoding="utf-8")
    with pytest.raises(CommandError, match="not valid JSON"):
        run(path)


def test_it_rejects_a_file_without_vignettes(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"ruptures": []}', encoding="utf-8")
    with pytest.raises(CommandError, match='"vignettes" list'):
        run(path)


def test_it_rejects_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(tmp_path / "nowhere.json")


def test_it_names_the_vignette_and_field_of_an_unknown_slug(tmp_path):
    path = write_vignettes(tmp_path, [vignette("v1"), vignette("v7", markers=["sulking"])])
    with pytest.raises(CommandError) as error:
        run(path)
    assert str(error.value) == 'vignette "v7": rupture.markers[0]: unknown marker "sulking"'


def test_it_names_the_vignette_and_field_of_a_bad_history(tmp_path):
    bad = vignette("v2")
    bad["history"] = [{"sessions_ago": 0, "kind": "withdrawal", "markers": []}]
    with pytest.raises(CommandError) as error:
        run(write_vignettes(tmp_path, [bad]))
    assert str(error.value) == (
        'vignette "v2": history[0].sessions_ago: must be a positive whole number'
    )


def test_it_names_a_vignette_without_an_id_by_its_position(tmp_path):
    nameless = vignette("x", source="fate")
    del nameless["id"]
    with pytest.raises(CommandError, match=r'vignette #0: rupture.source: unknown source "fate"'):
        run(write_vignettes(tmp_path, [nameless]))


def test_it_exits_non_zero_on_a_bad_file(tmp_path):
    path = write_vignettes(tmp_path, [vignette("v7", markers=["sulking"])])
    result = subprocess.run(
        [sys.executable, "manage.py", "suggest_strategies", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert 'vignette "v7": rupture.markers[0]: unknown marker "sulking"' in result.stderr
