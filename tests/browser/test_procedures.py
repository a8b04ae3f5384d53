"""Each procedure from intake to closure through the pages alone: the complaint is filed on the
public page or recorded by staff, then every step is opened from the inbox of the role it waits
for, filled and saved by a browser signed in as that role, until the complaint page says Closed.
Between them the paths sign in as every role of the three procedures."""

from __future__ import annotations

from playwright.sync_api import expect

from .pages import Filed, Site, Values, complaint_status, do_task, file_complaint, record_complaint

# (role, task as the inbox names it, what that person enters)
Steps = list[tuple[str, str, Values]]

FACILITY_URGENT: Steps = [
    (
        "technician",
        "立即與用戶聯系並到現場確認",
        {
            "site_findings": "Lift B stuck between 7/F and 8/F, brake worn; resident shaken.",
            "assessment": "urgent",
        },
    ),
    (
        "engineering_supervisor",
        "組織人員現場察看，確定處理或搶修方案",
        {"plan": "emergency_repair", "plan_details": "Replace the brake pads tonight."},
    ),
    ("technician", "立即采取措施處理", {"measures_taken": "Brake pads replaced, lift tested."}),
    (
        "technician",
        "做好回訪工作，跟蹤驗證處理結果",
        {"complainant_feedback": "satisfied", "verification": "verified"},
    ),
    (
        "technician",
        "在《用戶投訴記錄》上記錄處理結果",
        {"result_summary": "Lift B repaired the same day.", "satisfaction": "satisfied"},
    ),
    (
        "office_director",
        "檢查投訴處理效果",
        {"check_outcome": "effective", "check_notes": "Ran the lift five times."},
    ),
]

BAR_MANAGER: Steps = [
    (
        "bar_staff",
        "耐心聽取並接受投訴，找出原因",
        {"cause": "The glass was not rinsed.", "serious": True, "within_authority": False},
    ),
    (
        "bar_manager",
        "了解投訴原因及要求，擬定解決方案",
        {
            "understood_request": "Guest wants the drink replaced and an apology.",
            "planned_solution": "New cocktail on the house, and a dessert.",
        },
    ),
    (
        "bar_manager",
        "再次接觸客人，覆述問題並提供解決方案",
        {"problem_confirmed": True, "manager_solution": "New cocktail and a dessert."},
    ),
    (
        "bar_manager",
        "詢問客人是否滿意並致謝",
        {"guest_satisfied": True, "thanked": True, "next_step": "close"},
    ),
]

HOTEL_AFTER_HANDLING: Steps = [
    (
        "lobby_manager",
        "及時將處理結果通告客人並再次道歉",
        {"guest_satisfaction": "satisfied", "guest_opinion": "Thanks for the quick fix."},
    ),
    ("lobby_manager", "詳細記錄投訴並寫明處理結果", {"result_summary": "Room cleaned again."}),
    (
        "general_manager",
        "總經理批示",
        {"instruction": "Remind housekeeping of the checklist.", "decision": "archive"},
    ),
]

HOTEL_PATHS: dict[str, Steps] = {
    # A VIP's (or major) complaint with the general manager present (C-4.4, C-5.2).
    "gm_present": [
        (
            "lobby_manager",
            "聆聽投訴，表示理解並致歉",
            {"severity": "difficult", "own_department": False, "gm_available": True},
        ),
        ("general_manager", "總經理處理重大投訴", {"major_handling": "Upgraded to a suite."}),
        *HOTEL_AFTER_HANDLING,
    ],
    # The general manager is away: the duty manager handles it (C-4.4).
    "gm_absent": [
        (
            "lobby_manager",
            "聆聽投訴，表示理解並致歉",
            {"severity": "major", "own_department": False, "gm_available": False},
        ),
        ("duty_manager", "總值班經理及時處理，不得延誤", {"major_handling": "Refunded one night."}),
        *HOTEL_AFTER_HANDLING,
    ],
    # A simple complaint in the lobby manager's own department (C-3.1).
    "own_simple": [
        (
            "lobby_manager",
            "聆聽投訴，表示理解並致歉",
            {"severity": "simple", "own_department": True, "gm_available": True},
        ),
        (
            "department_supervisor",
            "部門主管及時解決並徵求客人意見",
            {"resolution": "Towels replaced.", "guest_view": "Fine now."},
        ),
        *HOTEL_AFTER_HANDLING,
    ],
    # A difficult one: apology and record, then the department manager (C-3.4, C-4.2).
    "department": [
        (
            "lobby_manager",
            "聆聽投訴，表示理解並致歉",
            {"severity": "difficult", "own_department": False, "gm_available": True},
        ),
        (
            "lobby_manager",
            "向客人道歉致謝，記錄並落實清楚",
            {"apologised": True, "handover_notes": "Guest waits in the lobby for an answer."},
        ),
        (
            "department_manager",
            "由被投訴部門主管向客人解釋並處理",
            {"explanation": "A new trainee cleaned the room.", "department_action": "Re-cleaned."},
        ),
        *HOTEL_AFTER_HANDLING,
    ],
}


def work_through(site: Site, filed: Filed, steps: Steps) -> int:
    """Each step by the role whose inbox shows it; the complaint's id."""
    instance_id = filed.instance_id
    for role, task, values in steps:
        instance_id = do_task(site.staff(role), task, filed.number, values)
    assert instance_id is not None
    return instance_id


def assert_closed(site: Site, user: str, instance_id: int) -> None:
    page = site.staff(user)
    assert complaint_status(page, instance_id) == "Closed"
    expect(page.locator(".timeline li.done")).to_contain_text("Complaint closed")
    expect(page.locator("section", has_text="Waiting now")).to_have_count(0)


def test_facility_recorded_by_the_clerk_urgent_repair_to_closure(site: Site) -> None:
    filed = record_complaint(
        site.staff("clerk"),
        "facility",
        {
            "complainant_name": "陳大文",
            "complainant_phone": "9123 4567",
            "address": "Block 3, Flat 8B",
            "channel": "phone",
            "facility": "lift",
            "description": "Lift B stopped between floors with me inside.",
            "place": "Lift B, Block 3",
        },
    )
    assert filed.number.startswith("A-")
    instance_id = work_through(site, filed, FACILITY_URGENT)
    assert_closed(site, "office_director", instance_id)
    # The clerk, who recorded it, sees it closed too.
    assert complaint_status(site.staff("clerk"), instance_id) == "Closed"


def test_bar_filed_by_the_guest_handled_by_the_manager_to_closure(site: Site) -> None:
    filed = file_complaint(
        site.visitor(),
        "bar",
        {
            "guest_name": "Mr Wong",
            "table_or_place": "Table 7",
            "category": "product",
            "description": "My cocktail tastes of soap.",
            "guest_request": "A new drink.",
            "guest_contact": "6123 0000",
        },
    )
    assert filed.number.startswith("B-")
    instance_id = work_through(site, filed, BAR_MANAGER)
    assert instance_id == filed.instance_id
    assert_closed(site, "bar_manager", instance_id)


def test_hotel_each_way_to_closure(site: Site) -> None:
    """Four guests, four ways through the procedure, worked side by side by the same staff."""
    guest: Values = {
        "guest_name": "Ms Lee",
        "room_number": "1208",
        "department": "housekeeping",
        "staff_named": "Room attendant on 12/F",
        "matter": "The room was not cleaned and the towels were dirty.",
        "guest_contact": "Room 1208",
    }
    for path, steps in HOTEL_PATHS.items():
        if path == "gm_present":
            # An important guest complains to the lobby manager in person.
            filed = record_complaint(site.staff("lobby_manager"), "hotel", {**guest, "vip": True})
        else:
            filed = file_complaint(site.visitor(), "hotel", guest)
        assert filed.number.startswith("C-"), path
        instance_id = work_through(site, filed, steps)
        assert_closed(site, "general_manager", instance_id)
