"""The users page as an admin uses it in Chromium, in Traditional Chinese: adding a technician
(a refusal first, shown beside its field), who then signs in; then deactivating them."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .pages import Site, flash, screenshot, sign_in


def label(text: str) -> re.Pattern[str]:
    return re.compile(f"^{text}")  # followed by the mark of a required field


def test_an_admin_adds_a_technician_who_signs_in_and_later_is_deactivated(site: Site) -> None:
    admin = site.staff("admin", locale="zh-HK")
    admin.get_by_role("link", name="用戶", exact=True).click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("用戶")
    admin.get_by_label(label("用戶名稱")).fill("chan_tai_man")
    admin.get_by_label(label("密碼"), exact=False).first.fill("long-enough-1")
    admin.get_by_label(label("再輸入密碼")).fill("long-enough-1")
    admin.get_by_role("button", name="新增此用戶").click()
    expect(admin.locator("#err-roles")).to_have_text("請至少選擇一個角色。")
    expect(admin.get_by_label(label("用戶名稱"))).to_have_value("chan_tai_man")  # kept
    expect(admin.get_by_label(label("再輸入密碼"))).to_have_value("")  # never sent back

    admin.get_by_label(label("密碼"), exact=False).first.fill("long-enough-1")
    admin.get_by_label(label("再輸入密碼")).fill("long-enough-1")
    admin.get_by_role("checkbox", name=re.compile("technician")).check()
    admin.get_by_role("button", name="新增此用戶").click()
    assert "chan_tai_man 現在可以登入。" in flash(admin)
    screenshot(admin, "admin-user", full_page=True)

    technician = site.context().new_page()
    sign_in(technician, "chan_tai_man", "long-enough-1")

    admin.get_by_label(label("原因")).fill("離職")
    admin.get_by_role("button", name="停用").click()
    assert "chan_tai_man 已不能登入" in flash(admin)
    expect(admin.locator("#user-state")).to_contain_text("已停用")
    technician.reload()
    expect(technician).to_have_url(re.compile(r"/signin"))
