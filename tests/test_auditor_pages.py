"""The auditor's pages over HTTP: search, the trace with the path marked on the diagram and the
verdicts beside it, the printable record, the report with its CSV, the heatmap."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask

from complaintflow.app import services

from .complaints import Complaint
from .test_pages import Page


@pytest.fixture
def traced(make_app: Callable[..., Flask]) -> tuple[Flask, Complaint]:
    app = make_app(sla_overrides={"facility": {"technician_contact": "PT0S"}})
    c = Complaint(services(app), "facility", complainant_name="審計測試")
    c.do("contact_complainant", assessment="urgent").do("inspect_site")
    return app, c


def marked(html: str, css: str) -> set[str]:
    """The elements of the drawn diagram that carry a mark."""
    return set(re.findall(rf'<g class="el [^"]*\b{css}\b[^"]*" data-element="([^"]+)"', html))


def test_only_auditors_and_admins_see_the_audit_pages(traced: tuple[Flask, Complaint]) -> None:
    app, c = traced
    assert Page(app).sign_in("technician").get("/audit/complaints").status == 403
    assert Page(app).sign_in("admin").get("/audit/complaints").status == 200
    anonymous = Page(app).get(f"/audit/complaints/{c.id}")
    assert 'name="password"' in anonymous.html and "審計測試" not in anonymous.html


def test_the_trace_marks_the_path_the_current_task_and_the_escalation(
    traced: tuple[Flask, Complaint],
) -> None:
    app, c = traced
    page = Page(app).sign_in("auditor").get(f"/audit/complaints/{c.id}")
    assert page.status == 200
    assert {
        "complaint_received",
        "create_record",
        "notify_technician",
        "contact_complainant",
        "gw_assessment",
        "notify_supervisor",
        "inspect_site",
    } <= marked(page.html, "done")
    assert marked(page.html, "current") == {"take_measures"}
    assert "timer_technician_contact" in marked(page.html, "escalated")
    taken = marked(page.html, "taken")
    # Out of the decision, only the way it went: urgent, not solvable, other party, unsolvable.
    assert "flow_urgent" in taken
    assert not {"flow_solvable", "flow_other_party", "flow_unsolvable"} & taken
    assert 'class="legend"' in page.html
    assert "A-4.3" in page.html and "Missed" in page.html  # contact deadline of zero minutes
    assert "The technician contacted the user immediately" in page.html
    assert "審計測試" in page.html  # the intake data, under its step
    # The checks in the reader's language: Traditional as written, Simplified derived.
    for browser, check in [("zh-TW", "機電人員即時聯絡用戶"), ("zh-CN", "机电人员即时联络用户")]:
        read = (
            Page(app)
            .sign_in("auditor")
            .get(f"/audit/complaints/{c.id}", **{"Accept-Language": browser})
        )
        assert check in read.html and "The technician contacted" not in read.html, browser


def test_search_finds_by_complainant_and_links_to_the_trace(
    traced: tuple[Flask, Complaint],
) -> None:
    app, c = traced
    page = Page(app).sign_in("auditor").get("/audit/complaints?complainant=審計")
    assert f'href="/audit/complaints/{c.id}"' in page.html
    assert "1 complaints found" in page.html
    bad = Page(app).sign_in("auditor").get("/audit/complaints?status=asleep")
    assert bad.status == 400 and "status must be one of" in bad.html
    bad = (
        Page(app).sign_in("auditor").get("/audit/complaints?page=0", **{"Accept-Language": "zh-CN"})
    )
    assert bad.status == 400 and "“page”必须是 1 至 2147483647 的整数" in bad.html


def test_print_export_report_and_heatmap(traced: tuple[Flask, Complaint]) -> None:
    app, c = traced
    auditor = Page(app).sign_in("auditor")
    printable = auditor.get(f"/audit/complaints/{c.id}/print")
    assert "User Complaint Record" in printable.html and c.record.number in printable.html
    exported = auditor.client.get(f"/audit/complaints/{c.id}/export.json")
    assert exported.get_json()["record"]["complainant"] == "審計測試"
    assert "attachment" in exported.headers["Content-Disposition"]
    report = auditor.get("/audit/reports?procedure=facility")
    assert "Complaints received" in report.html and "A-4.3" in report.html
    csv = auditor.client.get("/audit/reports?procedure=facility&format=csv")
    assert csv.mimetype == "text/csv" and "complaints,total,1" in csv.get_data(as_text=True)
    heat = auditor.get("/audit/heatmap?procedure=facility")
    assert heat.status == 200 and marked(heat.html, "heat-5")
    for page in ("reports", "heatmap"):  # no procedure named: the first; an unknown one: 404
        assert auditor.get(f"/audit/{page}").status == 200
        assert auditor.client.get(f"/audit/{page}?procedure=nothing").status_code == 404
