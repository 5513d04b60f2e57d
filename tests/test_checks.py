"""The post-session alliance check: meanings (§8a), instruments as data, both sides' pages."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, ProgrammingError, transaction

from checks import meaning as m
from checks.instruments import SHIPPED, check_file
from checks.models import AllianceCheck, Instrument
from sessions.models import SessionStatus
from tests.factories import make_check, make_rupture, make_session

# --- §8a at its edges ---------------------------------------------------------------


@pytest.mark.parametrize(("tension", "intensity", "worked_through", "reported"), [
    ("yes", None, None, True),
    ("no", None, None, False),
    ("rather_not_say", None, None, False),
    (None, None, None, False),
    ("no", 3, None, True),
    ("no", 2, None, False),
    ("no", None, 2, True),
    ("no", None, 3, False),
    ("rather_not_say", 5, 5, True),
    (None, 1, 1, True),
])
def test_it_reads_a_client_reported_rupture_at_its_edges(tension, intensity, worked_through, reported):
    assert m.client_reported_rupture(tension=tension, intensity=intensity, worked_through=worked_through) is reported


@pytest.mark.parametrize(("previous", "now", "dropped"), [
    (5, 3, True), (5, 4, False), (3, 1, True), (2, 1, False), (None, 1, False), (5, None, False), (1, 5, False),
])
def test_it_calls_a_drop_at_two_points_below_the_previous_check(previous, now, dropped):
    assert m.dropped(together=now, previous_together=previous) is dropped


def test_it_measures_agreement_on_tension_leaving_out_rather_not_say():
    pairs = [("yes", "yes")] * 20 + [("no", "no")] * 15 + [("yes", "no")] * 10 + [("no", "yes")] * 5
    pairs += [("yes", "rather_not_say"), ("no", None), (None, "yes")]
    result = m.agreement(pairs)
    assert result.n == 50 and result.agreed == 35
    assert result.share == pytest.approx(0.70)
    # Observed .70; expected .6*.5 + .4*.5 = .50; kappa = .2/.5.
    assert result.kappa == pytest.approx(0.40)


def test_it_gives_no_kappa_without_pairs_or_when_chance_explains_everything():
    assert m.agreement([]).kappa is None and m.agreement([]).share is None
    everyone_no = m.agreement([("no", "no")] * 4)
    assert (everyone_no.n, everyone_no.share, everyone_no.kappa) == (4, 1.0, None)
    opposite = m.agreement([("yes", "no"), ("no", "yes")])
    assert opposite.share == 0 and opposite.kappa == pytest.approx(-1.0)


def test_it_maps_any_instruments_items_onto_the_meanings():
    mapping = {"strain": "tension", "how_bad": "intensity", "bond": "together"}
    found = m.meanings_of({"strain": "yes", "how_bad": "4", "bond": 9, "other": 1}, mapping)
    assert found == {"tension": "yes", "intensity": 4, "worked_through": None, "together": None}


# --- Instruments are data -----------------------------------------------------------


def test_it_ships_alliance_check_version_1_for_both_respondents(shipped_instruments):
    therapist, client = Instrument.objects.current("therapist"), Instrument.objects.current("client")
    assert (therapist.slug, therapist.version, client.version) == ("alliance_check", 1, 1)
    assert [i["slug"] for i in therapist.items] == ["tension", "intensity", "worked_through", "together"]
    assert [i["slug"] for i in client.items] == ["tension", "intensity", "worked_through", "together", "say_more"]
    assert [c["slug"] for c in client.item("tension")["choices"]] == ["yes", "no", "rather_not_say"]
    assert client.item("intensity")["asked_if"] == {"item": "tension", "answer": "yes"}
    assert client.item("say_more")["max_length"] == 1000
    assert check_file(json.loads(SHIPPED.read_text())) == []


def test_it_never_changes_a_stored_version(shipped_instruments):
    instrument = Instrument.objects.current("client")
    with pytest.raises(ProgrammingError, match="Cannot update"), transaction.atomic():
        Instrument.objects.filter(pk=instrument.pk).update(title="Reworded")


def _instrument_file(tmp_path, doc):
    path = tmp_path / "instrument.json"
    path.write_text(json.dumps(doc))
    return str(path)


LICENSED = {
    "format": "rupture-log instrument",
    "instruments": [{
        "slug": "clinic_bond", "version": 1, "respondent": "client", "title": "Our bond",
        "items": [
            {"slug": "strain", "type": "choice", "meaning": "tension", "text": "Any strain?",
             "choices": [{"slug": "yes", "label": "Yes"}, {"slug": "no", "label": "No"}]},
            {"slug": "bond", "type": "scale", "meaning": "together", "text": "Bond today?",
             "anchors": {"1": "weak", "5": "strong"}},
        ],
    }],
}


def test_it_loads_a_clinics_own_instrument(shipped_instruments, tmp_path):
    out = StringIO()
    call_command("load_instrument", _instrument_file(tmp_path, LICENSED), stdout=out)
    assert "Loaded clinic_bond v1 (client) with 2 items." in out.getvalue()
    assert Instrument.objects.get(slug="clinic_bond").meaning_map() == {"strain": "tension", "bond": "together"}


def test_it_lists_every_problem_with_its_path_and_loads_nothing(shipped_instruments, tmp_path):
    bad = json.loads(json.dumps(LICENSED))
    items = bad["instruments"][0]["items"]
    items[0]["choices"] = [{"slug": "maybe", "label": "Maybe"}, {"slug": "maybe", "label": "Again"}]
    items[1]["anchors"] = {"1": "weak", "5": "strong", "7": "off the scale"}
    items.append({"slug": "extra", "type": "scale", "meaning": "together", "text": "Again?", "asked_if":
                  {"item": "bond", "answer": "5"}, "anchors": {"1": "a", "5": "b"}})
    items.append({"slug": "note", "type": "text", "text": "Anything?"})
    bad["instruments"].append({"slug": "alliance_check", "version": 1, "respondent": "client", "title": "Again",
                               "items": [{"slug": "x", "type": "choice", "text": "?"}]})
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_instrument", _instrument_file(tmp_path, bad), stderr=err)
    lines = err.getvalue().splitlines()
    assert "instruments[0].items[0].choices[1].slug: 'maybe' appears twice" in lines
    assert any(line.startswith("instruments[0].items[0].meaning: tension is a choice of yes and no") for line in lines)
    assert "instruments[0].items[1].anchors.7: a 1-5 scale has points 1 to 5" in lines
    assert "instruments[0].items[2].asked_if.item: only a choice item can decide whether another is asked" in lines
    assert "instruments[0].items[2].meaning: 'together' is already the meaning of 'bond'" in lines
    assert "instruments[0].items[3].max_length: expected a whole number from 1 to 5000" in lines
    assert any(line.startswith("instruments[1]: alliance_check version 1 for the client is already loaded")
               for line in lines)
    assert "instruments[1].items[0].choices: expected a list of at least two {slug, label}" in lines
    assert not Instrument.objects.filter(slug="clinic_bond").exists()


@pytest.mark.parametrize("content", [b"\xff\xfe", b"{not json", b"[]", b'{"format": "other"}'])
def test_it_refuses_files_that_are_not_instrument_files(shipped_instruments, tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    before = Instrument.objects.count()
    with pytest.raises(CommandError):
        call_command("load_instrument", str(path), stderr=StringIO())
    assert Instrument.objects.count() == before


# --- The therapist's side -----------------------------------------------------------


def test_it_saves_the_therapists_answers_with_their_meanings(as_therapist, held_session, shipped_instruments):
    response = as_therapist.post(f"/sessions/{held_session.pk}/check",
                                 {"tension": "yes", "intensity": "4", "worked_through": "2", "together": "3"})
    assert response.status_code == 302
    check = AllianceCheck.objects.get(session=held_session)
    assert check.answers == {"tension": "yes", "intensity": 4, "worked_through": 2, "together": 3}
    assert (check.respondent, check.tension, check.intensity, check.worked_through, check.together) == (
        "therapist", "yes", 4, 2, 3)
    assert check.client_reported_rupture is False


def test_it_offers_to_log_a_rupture_with_the_intensity_carried_over(as_therapist, held_session, shipped_instruments):
    as_therapist.post(f"/sessions/{held_session.pk}/check", {"tension": "yes", "intensity": "4", "together": "3"})
    page = as_therapist.get(f"/sessions/{held_session.pk}/").content.decode()
    offer = f"/sessions/{held_session.pk}/ruptures/new?intensity=4"
    assert offer in page
    form = as_therapist.get(offer).content.decode()
    assert re.search(r'<input type="radio" name="intensity" value="4"[^>]* checked>', form)


def test_it_drops_follow_up_answers_when_there_was_no_tension(as_therapist, held_session, shipped_instruments):
    as_therapist.post(f"/sessions/{held_session.pk}/check", {"tension": "no", "intensity": "5", "together": "4"})
    check = AllianceCheck.objects.get(session=held_session)
    assert check.answers == {"tension": "no", "together": 4} and check.intensity is None
    held_session.refresh_from_db()
    assert held_session.no_rupture_noted_at is not None  # `no` is the "no rupture" mark


def test_it_refuses_a_bad_answer_and_saves_nothing(as_therapist, held_session, shipped_instruments):
    response = as_therapist.post(f"/sessions/{held_session.pk}/check", {"tension": "perhaps", "together": "9"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Select a valid choice" in page and "Nothing was saved" in page
    assert not AllianceCheck.objects.exists()


def test_the_no_rupture_mark_is_the_therapists_tension_no(as_therapist, held_session, shipped_instruments):
    as_therapist.post(f"/sessions/{held_session.pk}/no-rupture", {"next": "/"})
    check = AllianceCheck.objects.get(session=held_session)
    assert (check.respondent, check.tension, check.answers) == ("therapist", "no", {"tension": "no"})


def test_it_answers_the_check_only_for_a_held_session(as_therapist, client_record, shipped_instruments):
    upcoming = make_session(client_record, days_ago=-2, status=SessionStatus.SCHEDULED)
    response = as_therapist.post(f"/sessions/{upcoming.pk}/check", {"tension": "no", "together": "4"})
    assert response.status_code == 302 and not AllianceCheck.objects.exists()


def test_the_therapist_and_the_supervisor_see_both_sides(as_supervisor, held_session, shipped_instruments):
    make_check(held_session, "therapist", tension="no", together=5)
    make_check(held_session, "client", tension="yes", intensity=4, worked_through=2, together=3,
               say_more="I felt rushed at the end.")
    page = as_supervisor.get(f"/sessions/{held_session.pk}/").content.decode()
    assert "The client's words" in page and "I felt rushed at the end." in page
    assert "client-reported rupture" in page
    assert "<td>No</td><td>Yes</td>" in page
    assert "<td>5 (very well)</td><td>3</td>" in page
    assert "Ask the client" not in page and "Save check" not in page  # reading, not writing


def test_others_see_no_check(client, other_therapist, held_session, shipped_instruments):
    from tests.conftest import login

    make_check(held_session, "client", tension="yes", together=2, say_more="private words")
    login(client, other_therapist)
    assert client.get(f"/sessions/{held_session.pk}/").status_code == 404
    assert not AllianceCheck.objects.visible_to(other_therapist).exists()
    assert AllianceCheck.objects.visible_to(held_session.client.therapist).count() == 1


def test_a_deleted_check_leaves_every_list(held_session, shipped_instruments, therapist):
    check = make_check(held_session, "client", tension="yes", together=2)
    check.soft_delete(by=therapist, reason="wrong session")
    assert not AllianceCheck.objects.exists()
    assert AllianceCheck.all_objects.count() == 1


def test_the_database_holds_the_meanings_to_their_ranges(held_session, shipped_instruments):
    check = make_check(held_session, "therapist", tension="no", together=4)
    with pytest.raises(IntegrityError), transaction.atomic():
        AllianceCheck.objects.filter(pk=check.pk).update(together=6)
    with pytest.raises(IntegrityError), transaction.atomic():
        AllianceCheck.objects.filter(pk=check.pk).update(client_reported_rupture=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_check(held_session, "therapist", tension="yes")  # one live check per respondent


def test_a_rupture_logged_later_makes_a_client_report_logged(held_session, shipped_instruments):
    make_check(held_session, "client", tension="yes", together=3)
    assert AllianceCheck.objects.unlogged().count() == 1
    make_rupture(held_session)
    assert AllianceCheck.objects.unlogged().count() == 0


def test_a_therapist_who_saw_the_tension_is_not_unlogged(held_session, shipped_instruments):
    make_check(held_session, "client", tension="no", intensity=None, worked_through=None, together=4)
    make_check(held_session, "therapist", tension="yes", intensity=2)
    assert AllianceCheck.objects.unlogged().count() == 0


def test_the_client_page_draws_both_sides_over_time_with_its_numbers(as_therapist, client_record,
                                                                     shipped_instruments,
                                                                     django_assert_max_num_queries):
    for days, (t, c, together) in enumerate([("no", "no", 5), ("yes", "rather_not_say", 4), ("no", "yes", 2)]):
        session = make_session(client_record, days_ago=30 - days * 7)
        make_check(session, "therapist", tension=t, together=4)
        make_check(session, "client", tension=c, together=together)
    for _ in range(5):
        make_session(client_record, days_ago=1)
    with django_assert_max_num_queries(14):
        page = as_therapist.get(f"/clients/{client_record.code}/").content.decode()
    assert '<svg class="trend alliance-trend"' in page and 'role="img"' in page
    assert "both sides gave the same tension answer in 1 of 2 sessions" in page
    assert "<td>rather not say</td>" in page and "client-reported rupture" in page
    assert page.count("<title>") >= 9


def test_a_new_version_is_asked_from_then_on_and_old_answers_keep_theirs(as_therapist, client_record,
                                                                        shipped_instruments, tmp_path):
    earlier = make_session(client_record, days_ago=8)
    old = make_check(earlier, "client", tension="no", together=4, say_more="fine")
    # The clinic switches the free-text question off: a new version, without it.
    shipped = json.loads(SHIPPED.read_text())
    client_v2 = next(i for i in shipped["instruments"] if i["respondent"] == "client")
    client_v2 = {**client_v2, "version": 2, "items": [i for i in client_v2["items"] if i["slug"] != "say_more"]}
    call_command("load_instrument", _instrument_file(tmp_path, {"format": shipped["format"],
                                                                 "instruments": [client_v2]}), stdout=StringIO())
    assert Instrument.objects.current("client").version == 2
    old.refresh_from_db()
    assert old.instrument.version == 1 and old.free_text() == [(old.instrument.item("say_more")["text"], "fine")]
    from checks.services import make_client_link

    _, token = make_client_link(session=make_session(client_record, days_ago=1), by=client_record.therapist)
    page = as_therapist.get(f"/c/{token}").content.decode()
    assert 'name="say_more"' not in page and 'name="together"' in page
