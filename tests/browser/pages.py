"""The pages as a person uses them: sign in, file or record a complaint, open a task from the
inbox, fill its form by field name, save. Each helper waits for the page it leads to, so a test
reads as the steps a person takes."""

from __future__ import annotations

import re
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from complaintflow.bootstrap import demo_password

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

# Values as a form takes them: text for text fields, a choice's value, True/False for yes/no.
Values = dict[str, str | bool]


@dataclass
class Filed:
    """A complaint just filed or recorded: its number and where staff and complainant see it."""

    number: str
    instance_id: int | None = None
    status_path: str | None = None  # the complainant's private link (public filing only)


class Site:
    """One served complaintflow and the browsers people use on it: a context per person, so
    two people (or one person in two windows) never share a session."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self._staff: dict[tuple[str, str], Page] = {}
        self._contexts: list[BrowserContext] = []

    def context(
        self, locale: str = "en-US", viewport: dict[str, int] | None = None
    ) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base_url,
            locale=locale,
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            timezone_id="Asia/Hong_Kong",
        )
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        return context

    def visitor(self, locale: str = "en-US", viewport: dict[str, int] | None = None) -> Page:
        """A complainant's browser: nobody signed in."""
        return self.context(locale, viewport).new_page()

    def staff(
        self,
        user: str,
        window: str = "",
        locale: str = "en-US",
        viewport: dict[str, int] | None = None,
    ) -> Page:
        """A browser signed in as `user` (the demo user of that role); the same one each time it
        is asked for, unless another `window` is named."""
        key = (user, window)
        if key not in self._staff:
            page = self.context(locale, viewport).new_page()
            sign_in(page, user)
            self._staff[key] = page
        return self._staff[key]

    def close(self) -> None:
        for context in self._contexts:
            context.close()


# ---------------------------------------------------------------- signing in, messages


def sign_in(page: Page, user: str, password: str | None = None) -> None:
    page.goto("/signin")
    page.fill("#username", user)
    page.fill("#password", password or demo_password(user))
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/inbox"))


def flash(page: Page) -> str:
    """The messages at the top of the page, as one text."""
    return " ".join(page.locator(".flashes .flash").all_inner_texts())


# ---------------------------------------------------------------- forms


def fill_form(page: Page, values: Values, scope: str = "main form.stack") -> None:
    """Fill fields by their name: radio buttons get the choice's value (yes/no for True/False),
    selects the option's value, text fields and text areas the text. Fields not named keep
    what the page put there (a date-time field starts at now)."""
    form = page.locator(scope)
    for name, value in values.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        control = form.locator(f'[name="{name}"]').first
        kind = control.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
        if kind == "input:radio":
            form.locator(f'input[name="{name}"][value="{value}"]').check()
        elif kind.startswith("select"):
            control.select_option(value)
        else:
            control.fill(value)


def attach(page: Page, *files: Path, scope: str = "main form.stack") -> None:
    page.locator(scope).locator('input[name="attachments"]').set_input_files(list(files))


def field(page: Page, name: str) -> Locator:
    """A field's box: its label, control, help and errors."""
    return page.locator(f"#field-{name}")


def field_error(page: Page, name: str) -> Locator:
    return field(page, name).locator(".error")


def submit(page: Page) -> None:
    """Press the form's main button (Save and continue, Send, Record) and wait for the answer."""
    with page.expect_navigation():
        page.locator("main form.stack .buttons button[type=submit]").click()


# ---------------------------------------------------------------- complaints in and out


def file_complaint(page: Page, key: str, values: Values, files: list[Path] | None = None) -> Filed:
    """A complainant fills the public form of procedure `key` and gets the receipt."""
    page.goto(f"/complain/{key}")
    fill_form(page, values)
    if files:
        attach(page, *files)
    submit(page)
    expect(page.locator(".receipt .number")).to_be_visible()
    match = re.search(r"/s/(\d+)/[^/?#]+", page.url)
    assert match, page.url
    return Filed(
        number=page.locator(".receipt .number").inner_text().strip(),
        instance_id=int(match.group(1)),
        status_path=match.group(0),
    )


def record_complaint(
    page: Page, key: str, values: Values, files: list[Path] | None = None
) -> Filed:
    """Staff record a complaint made in person (Record a complaint → the procedure)."""
    page.goto(f"/start/{key}")
    fill_form(page, values)
    if files:
        attach(page, *files)
    submit(page)
    expect(page.locator(".flash.success")).to_be_visible()
    message = flash(page)
    match = re.search(r"[A-Z]-\d{4}-\d{6}", message)
    assert match, f"no complaint number in the message: {message!r}"
    return Filed(number=match.group(0))


def inbox_row(page: Page, task: str, number: str) -> Locator:
    """The inbox row of `task` (its Chinese name, as the inbox shows it) of complaint `number`."""
    return (
        page.locator("table.inbox tbody tr")
        .filter(has=page.locator("td", has_text=number))
        .filter(has=page.get_by_role("link", name=task, exact=True))
    )


def press_in_row(page: Page, task: str, number: str, button: str) -> None:
    """Press a row's button in the inbox: "Take" or "Give back"."""
    with page.expect_navigation():
        inbox_row(page, task, number).get_by_role("button", name=button).click()


def open_task(page: Page, task: str, number: str) -> int:
    """From the inbox, open `task` of complaint `number`; returns the complaint's id."""
    page.goto("/inbox")
    row = inbox_row(page, task, number)
    expect(row).to_have_count(1)
    href = row.locator("td").first.locator("a").get_attribute("href") or ""
    row.get_by_role("link", name="Open").click()
    expect(page.locator("#task-title")).to_have_text(task)
    return int(href.rstrip("/").rsplit("/", 1)[1])


def do_task(page: Page, task: str, number: str, values: Values) -> int:
    """Open the task from the inbox, fill it, Save and continue; the inbox says it was saved."""
    instance_id = open_task(page, task, number)
    fill_form(page, values)
    submit(page)
    expect(page).to_have_url(re.compile(r"/inbox"))
    expect(page.locator(".flash.success")).to_contain_text(f"Complaint {number}")
    return instance_id


def wait_for_inbox(page: Page, selector: str, count: int = 1, seconds: float = 10) -> None:
    """Reload the inbox until `count` elements match `selector` (a deadline is due to pass)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto("/inbox")
        if page.locator(selector).count() == count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the inbox did not show {count} × {selector} in {seconds} s")
        time.sleep(0.3)


def complaint_status(page: Page, instance_id: int) -> str:
    """The Status line of the complaint page."""
    page.goto(f"/complaints/{instance_id}")
    return page.locator(".facts dt:text-is('Status') + dd").inner_text().strip()


# ---------------------------------------------------------------- files


def png_bytes(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def write_file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def screenshot(page: Page, name: str, folder: Path = ARTIFACTS, **options: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path
