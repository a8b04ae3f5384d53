"""Verdicts against the written procedure, for crafted histories: a contact on day 2 keeps
A-4.5's three days, one on day 4 does not; and the other kinds of check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from complaintflow import compliance
from complaintflow.compliance import MISSED, NOT_APPLICABLE, OBSERVED, PENDING

from .conftest import BUNDLED

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SLA = {"technician_contact": "PT30M", "urgent_inspection": "PT1H", "other_party_contact": "P3D"}


def event(
    action: str, element: str | None, at: timedelta, actor: str = "technician", **data: Any
) -> dict[str, Any]:
    return {
        "action": action,
        "bpmn_id": element,
        "name": element,
        "at": T0 + at,
        "actor": actor,
        "data": data,
    }


def received() -> list[dict[str, Any]]:
    return [
        event("instance.started", "complaint_received", timedelta(0), "clerk"),
        event("service.called", "create_record", timedelta(seconds=1), "clerk"),
        event("service.called", "notify_technician", timedelta(seconds=1), "clerk"),
        event("task.ready", "contact_complainant", timedelta(seconds=1), "clerk"),
    ]


def other_party(contacted_after: timedelta | None) -> list[dict[str, Any]]:
    """Contact within 20 minutes; another organisation involved; the explanation after…"""
    events = [
        *received(),
        event("task.completed", "contact_complainant", timedelta(minutes=20)),
        event("task.ready", "explain_to_complainant", timedelta(minutes=20)),
    ]
    if contacted_after is not None:
        events.append(
            event(
                "task.completed", "explain_to_complainant", timedelta(minutes=20) + contacted_after
            )
        )
    return events


def verdicts(
    events: list[dict[str, Any]], now: timedelta, finished: bool = False, key: str = "facility"
) -> dict[str, compliance.Verdict]:
    clauses = compliance.clauses_for(BUNDLED, key)
    judged = compliance.judge(clauses, events, SLA, finished, T0 + now)
    return {v.clause: v for v in judged}


def test_a_contact_on_day_2_observes_the_three_days() -> None:
    judged = verdicts(other_party(timedelta(days=2)), now=timedelta(days=2, hours=1))
    check, status, evidence = judged["A-4.5"].checks[0]
    assert (check.timer, status) == ("other_party_contact", OBSERVED)
    assert evidence["took"] == timedelta(days=2)
    assert evidence["due_at"] == T0 + timedelta(minutes=20, days=3)
    assert evidence["actor"] == "technician"


def test_a_contact_on_day_4_misses_the_three_days() -> None:
    judged = verdicts(other_party(timedelta(days=4)), now=timedelta(days=5))
    assert judged["A-4.5"].checks[0][1] == MISSED
    assert judged["A-4.5"].status == MISSED


def test_no_contact_yet_is_pending_until_the_deadline_then_missed() -> None:
    assert verdicts(other_party(None), now=timedelta(days=1)).get("A-4.5").checks[0][1] == PENDING
    assert verdicts(other_party(None), now=timedelta(days=3, hours=1))["A-4.5"].status == MISSED


def test_a_clause_the_complaint_never_reached_does_not_apply() -> None:
    judged = verdicts(other_party(timedelta(days=1)), now=timedelta(days=2))
    assert judged["A-4.4"].status == NOT_APPLICABLE  # no urgent inspection on this path


def test_immediately_means_within_the_configured_minutes() -> None:
    quick = [*received(), event("task.completed", "contact_complainant", timedelta(minutes=10))]
    slow = [*received(), event("task.completed", "contact_complainant", timedelta(minutes=45))]
    assert verdicts(quick, timedelta(hours=1))["A-4.3"].checks[0][1] == OBSERVED
    assert verdicts(slow, timedelta(hours=1))["A-4.3"].checks[0][1] == MISSED


def test_notified_before_the_contact_and_recorded_first() -> None:
    judged = verdicts(
        [*received(), event("task.completed", "contact_complainant", timedelta(minutes=5))],
        timedelta(hours=1),
    )
    assert judged["A-4.2"].status == OBSERVED and judged["A-4.1"].status == OBSERVED


def test_archiving_without_the_gms_instruction_misses_C_5_2() -> None:
    start = [event("instance.started", "guest_complains", timedelta(0), "lobby_manager")]
    instructed = [
        *start,
        event("task.completed", "gm_instruct", timedelta(hours=2), "gm"),
        event("service.called", "archive_record", timedelta(hours=2)),
    ]
    skipped = [*start, event("service.called", "archive_record", timedelta(hours=2))]
    assert verdicts(instructed, timedelta(days=1), True, "hotel")["C-5.2"].status == OBSERVED
    assert verdicts(skipped, timedelta(days=1), True, "hotel")["C-5.2"].status == MISSED


@pytest.mark.parametrize(
    ("handled_by", "expected"), [("gm_handle", OBSERVED), ("duty_handle", OBSERVED), (None, MISSED)]
)
def test_a_major_complaint_is_handled_by_the_gm_or_the_duty_manager(
    handled_by: str | None, expected: str
) -> None:
    events = [
        event("instance.started", "guest_complains", timedelta(0), "lobby_manager"),
        event("service.called", "notify_general_manager", timedelta(minutes=5)),
    ]
    if handled_by:
        events.append(event("task.completed", handled_by, timedelta(minutes=10)))
    check = verdicts(events, timedelta(days=1), True, "hotel")["C-4.4"].checks[1]
    assert check[1] == expected


def test_conduct_notes_count_as_shown_when_their_step_was_done() -> None:
    events = [
        event("instance.started", "guest_complains", timedelta(0), "bar_staff"),
        event("task.ready", "listen", timedelta(0)),
        event("task.completed", "listen", timedelta(minutes=3), "bar_staff"),
    ]
    judged = verdicts(events, timedelta(minutes=5), key="bar")
    assert {judged[c].status for c in ("B-2.1", "B-2.2", "B-3.7", "B-3.9")} == {OBSERVED}
    assert judged["B-3.6"].status == NOT_APPLICABLE  # the manager never recontacted


def test_every_check_names_elements_of_its_diagram() -> None:
    from complaintflow.diagrams import NS, parse_xml

    for key in ("facility", "bar", "hotel"):
        tree = parse_xml((BUNDLED / f"{key}.bpmn").read_bytes(), key)
        ids = {e.get("id") for e in tree.iter() if isinstance(e.tag, str) and e.get("id")}
        timers = {
            t.text.split('"')[1]
            for t in tree.getroot().iterfind(".//bpmn:timeDuration", NS)
            if t.text
        }
        for clause, checks in compliance.clauses_for(BUNDLED, key).items():
            for check in checks:
                named = {*check.elements, *check.when, check.element, check.first, check.then}
                assert named - {""} <= ids, (clause, named - ids)
                assert not check.timer or check.timer in timers, (clause, check.timer)
                # Auditors read what a check looks for in English and in Chinese.
                assert check.en.isascii() and not check.zh_hant.isascii(), (clause, check)
