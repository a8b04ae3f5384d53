"""The complainant's private status page: where the complaint stands, in plain words, from the
receipt to closure; never what staff wrote, who they are or which role has it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .pages import Site, complaint_status, do_task, file_complaint, record_complaint

SECRET = "INTERNAL-NOTE-xyz"
STAFF_WORDS = [
    SECRET,
    "technician",
    "clerk",
    "supervisor",
    "director",
    "office_director",
    "engineering_supervisor",
    "admin",
    "機電人員",
    "管理處主任",
]


def assert_plain_and_private(page: Page, number: str, stage: str) -> None:
    """The number and the current stage show; nothing internal does, in the text or the HTML."""
    expect(page.locator("main")).to_contain_text(number)
    expect(page.locator(".stages [aria-current=step]")).to_have_count(1)
    expect(page.locator(".stages [aria-current=step] .label")).to_have_text(stage)
    expect(page.locator("p.plain")).not_to_be_empty()
    seen = (page.inner_text("body") + page.content()).lower()
    for word in STAFF_WORDS:
        assert word.lower() not in seen, f"{word!r} shows on the status page"


def test_the_status_page_shows_progress_and_nothing_internal(site: Site) -> None:
    complainant = site.visitor()
    filed = file_complaint(
        complainant,
        "facility",
        {
            "complainant_name": "Chan Tai Man",
            "complainant_phone": "9123 4567",
            "address": "Block 3, Flat 8B",
            "facility": "lighting",
            "description": "The corridor light on 8/F has been off for a week.",
        },
    )
    # The receipt: thanks, the number, where it stands.
    expect(complainant.locator(".receipt")).to_contain_text("We have received your complaint")
    assert_plain_and_private(complainant, filed.number, "Received")
    assert filed.status_path

    technician = site.staff("technician")
    do_task(
        technician,
        "立即與用戶聯系並到現場確認",
        filed.number,
        {"site_findings": f"{SECRET}: tenant in 8C rewired it", "assessment": "solvable"},
    )
    do_task(technician, "立即采取措施處理", filed.number, {"measures_taken": f"{SECRET} fixed"})
    complainant.goto(filed.status_path)
    expect(complainant.locator(".receipt")).to_have_count(0)
    assert_plain_and_private(complainant, filed.number, "Being handled")
    expect(complainant.locator("p.plain")).to_contain_text("being handled")

    do_task(
        technician,
        "做好回訪工作，跟蹤驗證處理結果",
        filed.number,
        {"complainant_feedback": "satisfied", "verification": "verified"},
    )
    do_task(
        technician,
        "在《用戶投訴記錄》上記錄處理結果",
        filed.number,
        {"result_summary": f"{SECRET}: new ballast", "satisfaction": "satisfied"},
    )
    complainant.goto(filed.status_path)
    assert_plain_and_private(complainant, filed.number, "Resolved")

    instance_id = do_task(
        site.staff("office_director"),
        "檢查投訴處理效果",
        filed.number,
        {"check_outcome": "effective", "check_notes": SECRET},
    )
    assert complaint_status(site.staff("office_director"), instance_id) == "Closed"
    complainant.goto(filed.status_path)
    assert_plain_and_private(complainant, filed.number, "Closed")
    expect(complainant.locator("p.plain")).to_contain_text("handled and closed")

    # The same in Traditional Chinese.
    reader = site.visitor(locale="zh-TW")
    reader.goto(filed.status_path)
    expect(reader.locator("html")).to_have_attribute("lang", "zh-Hant")
    assert_plain_and_private(reader, filed.number, "已結案")
    expect(reader.locator("p.plain")).not_to_contain_text("closed")

    # A wrong token looks like nothing at all.
    answer = reader.goto(re.sub(r"/[^/]+$", "/not-the-token", filed.status_path))
    assert answer is not None and answer.status == 404


def test_staff_give_the_link_to_someone_who_complained_in_person(site: Site) -> None:
    """The clerk records a complaint made at the counter and hands the complainant the link.
    The clerk holds no step of it (the technician does), so the page after recording must lead
    to the complaint: either it is the complaint page, or it links there by the number."""
    clerk = site.staff("clerk")
    filed = record_complaint(
        clerk,
        "facility",
        {
            "complainant_name": "Mrs Ho",
            "complainant_phone": "2345 6789",
            "address": "Block 1, Flat 2A",
            "channel": "verbal",
            "facility": "water",
            "description": "No hot water since this morning.",
        },
    )
    if not re.search(r"/complaints/\d+$", clerk.url):
        to_complaint = clerk.locator("main").get_by_role("link", name=filed.number)
        assert to_complaint.count() > 0, (
            f"after recording, the clerk's page ({clerk.url}) neither is nor links to"
            f" complaint {filed.number}: no way to give the complainant their link"
        )
        to_complaint.first.click()
    expect(clerk).to_have_url(re.compile(r"/complaints/\d+$"))
    instance_id = int(clerk.url.rsplit("/", 1)[1])
    status_link = clerk.get_by_label("Link for the complainant").input_value()
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/s/{instance_id}/[\w-]+", status_link)

    complainant = site.visitor()
    complainant.goto(status_link)
    assert_plain_and_private(complainant, filed.number, "Received")
