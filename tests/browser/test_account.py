"""A person's own account page: changing their password, in their language."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from complaintflow.bootstrap import demo_password

from .pages import Site, flash, sign_in

# The labels, each with the mark of a required field after it.
CURRENT, NEW, AGAIN = (
    re.compile(f"^{label}") for label in ("現在的密碼", "新密碼", "再輸入新密碼")
)


def test_a_clerk_changes_their_password_and_signs_in_with_the_new_one(site: Site) -> None:
    clerk = site.context(locale="zh-HK").new_page()
    sign_in(clerk, "clerk")
    clerk.goto("/account")
    clerk.get_by_label(CURRENT).fill(demo_password("clerk"))
    clerk.get_by_label(NEW).fill("a-new-pass")
    clerk.get_by_label(AGAIN).fill("a-new-pas")
    clerk.get_by_role("button", name="更改密碼").click()
    expect(clerk.locator("#err-repeat_password")).to_have_text("與新密碼不相同。")
    expect(clerk.get_by_label(NEW)).to_have_value("")  # never sent back
    clerk.get_by_label(CURRENT).fill(demo_password("clerk"))
    clerk.get_by_label(NEW).fill("a-new-pass")
    clerk.get_by_label(AGAIN).fill("a-new-pass")
    clerk.get_by_role("button", name="更改密碼").click()
    assert "你的密碼已更改。" in flash(clerk)

    again = site.context().new_page()
    sign_in(again, "clerk", "a-new-pass")  # lands on the inbox
