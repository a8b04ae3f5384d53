"""Search and report figures on generated complaints, checked against figures the test keeps
itself; and the same data through the API."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import update

from complaintflow import reports
from complaintflow.app import services
from complaintflow.engine import queries
from complaintflow.models import Instance
from complaintflow.services import Services
from complaintflow.web.searching import parse_search

from .complaints import Complaint
from .conftest import BUNDLED, Api
from .test_pages import Page

ZONE = ZoneInfo("Asia/Hong_Kong")


@pytest.fixture(scope="module")
def rng() -> random.Random:
    return random.Random(20261127)


def generate(svc: Services, rng: random.Random) -> list[dict[str, Any]]:
    """Complaints of every procedure on several paths; returns what the test knows of each."""
    made = []
    for n in range(18):
        key = ("facility", "bar", "hotel")[n % 3]
        c = Complaint(
            svc,
            key,
            **{
                {"facility": "complainant_name", "bar": "guest_name", "hotel": "guest_name"}[
                    key
                ]: f"顧客{n}"
            },
        )
        fact = {
            "id": c.id,
            "key": key,
            "name": f"顧客{n}",
            "number": c.record.number,
            "category": c.record.category,
            "urgent": False,
        }
        if key == "facility" and n % 2 == 0:
            fact["urgent"] = True
            c.do("contact_complainant", assessment="urgent").do("inspect_site")
            c.do("take_measures").do("follow_up_visit").do("record_result").do("check_effect")
        elif key == "bar" and n % 2 == 1:
            c.do("listen", serious=False, within_authority=True).do("staff_resolve")
            c.do("staff_ask_satisfaction", guest_satisfied=rng.random() < 0.5)
        elif key == "hotel" and n % 4 == 2:
            svc.engine.cancel(c.id, "admin", "duplicate")
        fact["status"] = c.status
        made.append(fact)
    # Spread the receipts over the last weeks, as real complaints would be.
    with svc.store.write() as session:
        for i, fact in enumerate(made):
            fact["started_at"] = datetime.now(UTC) - timedelta(days=2 * i, hours=1)
            session.execute(
                update(Instance)
                .where(Instance.id == fact["id"])
                .values(started_at=fact["started_at"])
            )
    return made


@pytest.fixture
def world(make_app: Callable[..., Flask], rng: random.Random) -> tuple[Flask, list[dict[str, Any]]]:
    app = make_app(sla_overrides={"facility": {"technician_contact": "PT0S"}})
    return app, generate(services(app), rng)


def found(svc: Services, **args: str) -> list[int]:
    with svc.store.read() as session:
        rows, total = queries.search(session, parse_search(args, ZONE))
        assert total >= len(rows)
        return [row.id for row in rows]


def newest_first(facts: list[dict[str, Any]]) -> list[int]:
    return [f["id"] for f in sorted(facts, key=lambda f: f["started_at"], reverse=True)]


def test_search_by_each_term_matches_the_generated_facts(
    world: tuple[Flask, list[dict[str, Any]]],
) -> None:
    app, facts = world
    svc = services(app)
    everything = {"per_page": "100"}
    assert found(svc, **everything) == newest_first(facts)
    assert found(svc, procedure="bar", **everything) == newest_first(
        [f for f in facts if f["key"] == "bar"]
    )
    assert found(svc, status="completed", **everything) == newest_first(
        [f for f in facts if f["status"] == "completed"]
    )
    assert found(svc, status="cancelled", **everything) == newest_first(
        [f for f in facts if f["status"] == "cancelled"]
    )
    assert found(svc, number=facts[4]["number"].lower()) == [facts[4]["id"]]
    assert found(svc, complainant="顧客1", **everything) == newest_first(
        [f for f in facts if "顧客1" in f["name"]]
    )
    assert found(svc, role="engineering_supervisor", **everything) == newest_first(
        [f for f in facts if f["urgent"]]
    )
    assert found(svc, missed="yes", **everything) == newest_first(
        [f for f in facts if f["key"] == "facility"]
    )
    cutoff = (datetime.now(ZONE) - timedelta(days=10)).date()
    assert found(svc, **{"from": cutoff.isoformat()}, **everything) == newest_first(
        [f for f in facts if f["started_at"].astimezone(ZONE).date() >= cutoff]
    )
    assert found(svc, per_page="5", page="2") == newest_first(facts)[5:10]


def _nearest_rank(values: list[timedelta], q: float) -> timedelta:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def test_report_figures_match_an_independent_count(
    world: tuple[Flask, list[dict[str, Any]]],
) -> None:
    app, facts = world
    svc = services(app)
    now = datetime.now(UTC)
    with svc.store.read() as session:
        report = reports.build(session, BUNDLED, "facility", now - timedelta(days=60), now, now)
        histories = {f["id"]: queries.history(session, f["id"]) for f in facts}
        instances = {f["id"]: queries.get_instance(session, f["id"]) for f in facts}
    mine = [f for f in facts if f["key"] == "facility"]
    assert report.total == len(mine)
    assert report.by_status == Counter(f["status"] for f in mine)
    assert report.by_category == Counter(f["category"] for f in mine)
    contacts, closures = [], []
    for f in mine:
        done = [e for e in histories[f["id"]] if e["action"] == "task.completed"]
        if done:
            contacts.append(datetime.fromisoformat(done[0]["at"]) - instances[f["id"]].started_at)
        if f["status"] == "completed":
            closures.append(instances[f["id"]].completed_at - instances[f["id"]].started_at)
    assert report.first_contact.count == len(contacts)
    assert report.first_contact.median == _nearest_rank(contacts, 0.5)
    assert report.first_contact.p90 == _nearest_rank(contacts, 0.9)
    assert report.closure.median == _nearest_rank(closures, 0.5)
    # The contact deadline was zero minutes: every complaint that reached it missed it.
    assert report.deadlines["technician_contact"] == Counter(missed=len(mine))
    assert report.share("A-4.1") == 1.0 and report.share("A-4.3") == 0.0
    csv_text = reports.to_csv(report)
    assert f"complaints,total,{len(mine)}" in csv_text
    assert "deadline missed,technician_contact," + str(len(mine)) in csv_text


def test_the_api_searches_and_reports_for_auditors(
    world: tuple[Flask, list[dict[str, Any]]],
) -> None:
    app, facts = world
    api = Api(app.test_client())
    body = api.get("/instances?procedure=hotel&per_page=100", "auditor").get_json()
    assert body["total"] == len([f for f in facts if f["key"] == "hotel"])
    assert body["total_exact"] is True
    assert {i["complainant"] for i in body["instances"]} == {
        f["name"] for f in facts if f["key"] == "hotel"
    }
    assert api.get("/instances?status=sleeping", "auditor").status_code == 400
    staff = api.get("/instances?per_page=100", "bar_staff").get_json()
    assert {i["procedure"] for i in staff["instances"]} == {"bar"}
    assert api.get("/instances?procedure=hotel", "bar_staff").status_code == 403
    since = (datetime.now(ZONE) - timedelta(days=60)).date().isoformat()
    report = api.get(f"/reports/facility?from={since}", "auditor").get_json()
    assert report["total"] == len([f for f in facts if f["key"] == "facility"])
    assert report["clauses"]["A-4.1"]["share_observed"] == 1.0
    assert api.get("/reports/facility", "technician").status_code == 403
    assert api.get("/reports/nothing", "auditor").status_code == 404
    csv_response = api.get("/reports/bar?format=csv", "auditor")
    assert csv_response.mimetype == "text/csv"
    exported = api.get(f"/instances/{facts[0]['id']}/export", "auditor").get_json()
    assert exported["record"]["number"] == facts[0]["number"]
    assert exported["path"]["done"] and exported["diagram"]["bpmn"].startswith("<?xml")


def test_broad_searches_count_up_to_the_cap_and_say_more(
    world: tuple[Flask, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting every match over a million complaints costs more than the page: past the cap
    the API and the pages say "more than", and the page itself is still complete."""
    app, facts = world
    monkeypatch.setattr(queries, "COUNT_CAP", 5)
    api = Api(app.test_client())
    body = api.get("/instances?per_page=100", "auditor").get_json()
    assert (body["total"], body["total_exact"]) == (5, False)
    assert [i["id"] for i in body["instances"]] == newest_first(facts)
    one = api.get(f"/instances?number={facts[0]['number']}", "auditor").get_json()
    assert (one["total"], one["total_exact"]) == (1, True)
    page = Page(app).sign_in("auditor").get("/audit/complaints", **{"Accept-Language": "en"})
    assert "More than 5 complaints found" in page.html


def test_a_name_search_takes_wildcards_and_quotes_as_they_are(svc: Services) -> None:
    names = ["100% Wong", "100 Wong", "O'Brien_Lee", "OXBrienXLee", "Chan\\Tai Man"]
    made = {name: Complaint(svc, "bar", guest_name=name).id for name in names}
    assert found(svc, complainant="100%") == [made["100% Wong"]]
    assert found(svc, complainant="o'brien_") == [made["O'Brien_Lee"]]  # any case
    assert found(svc, complainant="\\") == [made["Chan\\Tai Man"]]
    assert found(svc, complainant="%") == [made["100% Wong"]]
