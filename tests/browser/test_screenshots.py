"""The inbox, a task form and the status page on a phone (390×844) and a desktop (1366×900), in
English and Traditional Chinese, saved under tests/artifacts/ to look at; each page must fit
the phone's width without scrolling sideways."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from .pages import (
    ARTIFACTS,
    DESKTOP,
    PHONE,
    Site,
    file_complaint,
    open_task,
    png_bytes,
    screenshot,
    write_file,
)

CONTACT = "立即與用戶聯系並到現場確認"
# What each page says in each language, to be sure the language really changed.
WORDS = {
    "en": {"inbox": "Inbox", "task": "How to handle this step", "status": "Received"},
    "zh_Hant": {"inbox": "待辦", "task": "接到投訴後", "status": "已收到"},
}


def fits_the_width(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_screenshots_of_inbox_task_and_status_in_two_languages_and_widths(
    site: Site, tmp_path: Path
) -> None:
    photo = write_file(tmp_path, "light.png", png_bytes(120, 90, (240, 200, 40)))
    filed = file_complaint(
        site.visitor(),
        "facility",
        {
            "complainant_name": "陳大文",
            "complainant_phone": "9123 4567",
            "address": "Block 3, Flat 8B",
            "facility": "lighting",
            "description": "8/F corridor light has been off for a week. 走廊燈壞了一星期。",
            "place": "Block 3, 8/F corridor",
        },
        files=[photo],
    )
    assert filed.status_path
    staff = site.staff("technician")
    open_task(staff, CONTACT, filed.number)
    task_url = staff.url

    saved: list[Path] = []
    for lang in ("en", "zh_Hant"):
        if lang == "zh_Hant":
            staff.get_by_role("link", name="繁體中文").click()  # the language switch
            expect(staff.locator("html")).to_have_attribute("lang", "zh-Hant")
        complainant = site.visitor(locale="zh-TW" if lang == "zh_Hant" else "en-US")
        pages = {
            "inbox": (staff, "/inbox"),
            "task": (staff, task_url),
            "status": (complainant, filed.status_path),
        }
        for width, size in (("phone", PHONE), ("desktop", DESKTOP)):
            for name, (page, url) in pages.items():
                page.set_viewport_size(size)  # type: ignore[arg-type]
                page.goto(url)
                expect(page.locator("html")).to_have_attribute(
                    "lang", "zh-Hant" if lang == "zh_Hant" else "en"
                )
                expect(page.locator("main")).to_contain_text(WORDS[lang][name])
                expect(page.locator("main")).to_contain_text(filed.number)
                if width == "phone":
                    fits_the_width(page)
                saved.append(screenshot(page, f"{name}-{lang}-{width}", full_page=True))

    assert len(saved) == 12
    for path in saved:
        assert path.parent == ARTIFACTS and path.stat().st_size > 5_000, path
