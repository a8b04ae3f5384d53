"""The process owner's modeler in Chromium: open version 1 of the facility procedure in bpmn-js,
rename a task and change a handler's parameter in the side panel, save it as a draft (version 2,
checked like an upload); then break a user task's form and see the findings, with nothing stored.

bpmn-js comes from npm (`npm ci`, run by `make test`); without it these tests fail and say why."""

from __future__ import annotations

import re

import pytest
from lxml import etree
from playwright.sync_api import Page, expect

from complaintflow.config import REPO_ROOT
from complaintflow.diagrams import read_forms
from complaintflow.handlers import load_handlers
from complaintflow.owner.modeler import modeler_ready
from complaintflow.sla import SlaTable
from complaintflow.validation import check_bundle

from .pages import PHONE, Site, screenshot


@pytest.fixture(autouse=True)
def _bpmn_js_installed() -> None:
    if not modeler_ready():
        pytest.fail(
            "bpmn-js is not installed: run `make test` (or `npm ci` at the repository root)"
        )


NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
RENAMED = "立即與用戶聯系並到現場確認（修訂）"
MISSING_FORM = "forms/facility/missing.schema.json"


def open_modeler(page: Page, number: int = 1) -> None:
    page.goto(f"/procedures/facility/v{number}/edit")
    expect(page.locator("#modeler")).to_have_attribute("data-ready", "true")


def choose(page: Page, element_id: str) -> None:
    """Select an element through the panel's list (the keyboard way to pick it)."""
    page.locator("#element-picker").select_option(element_id)
    expect(page.locator("#el-kind")).to_contain_text(element_id)
    expect(page.locator(f'.djs-element.selected[data-element-id="{element_id}"]')).to_have_count(1)


def versions(page: Page) -> list[str]:
    """The versions page's rows, as "v<n> <status>", read in a second tab (the modeler's tab
    keeps its unsaved work)."""
    other = page.context.new_page()
    other.goto("/procedures/facility")
    rows = [
        " ".join(text.split())
        for text in other.locator("table.versions tbody tr td:nth-child(-n+2)").all_inner_texts()
    ]
    other.close()
    return [f"{rows[i]} {rows[i + 1]}" for i in range(0, len(rows), 2)]


def test_a_process_owner_edits_a_version_into_a_draft(site: Site) -> None:
    page = site.staff("process_owner")
    page.goto("/procedures/facility")
    page.get_by_role("row", name=re.compile(r"^v1 ")).get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(r"/procedures/facility/v1/edit$"))
    expect(page.locator("#modeler")).to_have_attribute("data-ready", "true")
    expect(page.locator(".djs-container > svg")).to_be_visible()

    # Rename a user task; the panel shows its lane and its form.
    choose(page, "contact_complainant")
    expect(page.locator("#el-kind")).to_have_text("User task · contact_complainant")
    expect(page.locator("#el-lane")).to_have_text("機電人員 (technician)")
    expect(page.locator("#el-form")).to_have_value("forms/facility/contact.schema.json")
    expect(page.locator("#el-form-choice")).to_have_value("forms/facility/contact.schema.json")
    page.locator("#el-name").fill(RENAMED)
    page.locator("#el-name").press("Tab")
    expect(page.locator("#element-picker option:checked")).to_contain_text(RENAMED)

    # Change a service task's handler parameter: one input per declared parameter.
    choose(page, "notify_technician")
    expect(page.locator("#el-handler")).to_have_value("notify.role")
    expect(page.locator("#el-params input")).to_have_count(2)
    expect(page.locator("label[for=param-role]")).to_contain_text("required")
    expect(page.locator("#param-role")).to_have_value("'technician'")
    page.locator("#param-event").fill("'complaint.urgent'")
    page.locator("#param-event").press("Tab")
    expect(page.locator("#save-status")).to_have_text("Unsaved changes.")

    page.get_by_role("button", name="Save as draft").click()
    success = page.locator("#save-result .flash.success")
    expect(success).to_contain_text("Stored as draft version 2: it needs a review and an approval.")
    expect(success.get_by_role("link")).to_have_attribute("href", "/procedures/facility/v2")
    expect(page.locator("#findings")).to_be_hidden()
    screenshot(page, "modeler-saved")
    assert versions(page)[:2] == ["v2 Draft", "v1 Approved · in effect"]

    # The draft has the new name and parameter, keeps the extension elements the engine reads,
    # and passes the same checks again.
    answer = page.request.get("/procedures/facility/v2.bpmn")
    assert answer.ok
    xml = answer.body()
    process = etree.fromstring(xml).find("bpmn:process", NS)
    assert process is not None
    task = process.find("bpmn:userTask[@id='contact_complainant']", NS)
    assert task is not None and task.get("name") == RENAMED
    form = task.find(".//spiffworkflow:property[@name='formJsonSchemaFilename']", NS)
    assert form is not None and form.get("value") == "forms/facility/contact.schema.json"
    notify = process.find("bpmn:serviceTask[@id='notify_technician']", NS)
    assert notify is not None
    operator = notify.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
    assert operator is not None and operator.get("id") == "notify.role"
    params = {
        p.get("id"): (p.get("type"), p.get("value"))
        for p in operator.findall("spiffworkflow:parameters/spiffworkflow:parameter", NS)
    }
    assert params == {"role": ("str", "'technician'"), "event": ("str", "'complaint.urgent'")}
    bundled = REPO_ROOT / "bpmn"
    checked = check_bundle(
        xml,
        "v2",
        load_handlers(),
        SlaTable(bundled / "sla.json", {}),
        lambda found: read_forms(bundled / "facility.bpmn", found),
    )
    assert checked.diagram.key == "facility"

    # Break it: a user task's form that the version does not have. The findings show; nothing
    # is stored.
    choose(page, "contact_complainant")
    page.locator("#el-form").fill(MISSING_FORM)
    page.locator("#el-form").press("Tab")
    expect(page.locator("#el-form-choice")).to_have_value("*")  # "another file"
    page.get_by_role("button", name="Save as draft").click()
    findings = page.locator("#findings")
    expect(findings).to_be_visible()
    expect(findings.locator("h3")).to_have_text("What to fix")
    expect(findings.locator("li").first).to_contain_text(f"form '{MISSING_FORM}'")
    expect(page.locator("#save-result .flash")).to_have_count(0)
    expect(page.locator("#save-status")).to_have_text("Unsaved changes.")
    screenshot(page, "modeler-findings")
    assert page.request.get("/procedures/facility/v3.bpmn").status == 404
    assert [row.split()[0] for row in versions(page)] == ["v2", "v1"]


def test_the_lane_changes_by_moving_the_task_and_the_keyboard_reaches_the_panel(
    site: Site,
) -> None:
    page = site.staff("process_owner")
    open_modeler(page)
    choose(page, "notify_technician")
    expect(page.locator("#el-lane")).to_have_text("管理處人員 (clerk)")
    # Keyboard only: from the lane list to the Move button.
    page.locator("#el-lane-target").select_option("technician")
    page.locator("#el-lane-target").press("Tab")
    expect(page.locator("#el-lane-move")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#el-lane")).to_have_text("機電人員 (technician)")
    # Ctrl+Z on the canvas undoes the move, and the panel follows.
    page.locator(".djs-container > svg").first.focus()
    page.keyboard.press("Control+z")
    expect(page.locator("#el-lane")).to_have_text("管理處人員 (clerk)")


def test_small_screens_are_told_the_modeler_is_for_desktops(site: Site) -> None:
    note = "The modeler needs a desktop-size screen."
    desktop = site.staff("process_owner")
    open_modeler(desktop)
    expect(desktop.get_by_text(note)).to_be_hidden()
    phone = site.staff("process_owner", window="phone", viewport=PHONE)
    open_modeler(phone)
    expect(phone.get_by_text(note)).to_be_visible()
