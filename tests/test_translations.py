"""The interface in Chinese: every message of the sources translated in both catalogs, with the
same placeholders, compiled, and shown by the pages in the reader's language."""

from __future__ import annotations

import re
from functools import cache
from html import unescape
from io import BytesIO
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask

from complaintflow.app import services

from .complaints import Complaint
from .test_pages import Page

ROOT = Path(__file__).parent.parent
TRANSLATIONS = ROOT / "complaintflow" / "translations"
LOCALES = ["zh_Hans", "zh_Hant"]
PLACEHOLDER = re.compile(r"%\(\w+\)\w")
HOW = "see complaintflow/translations/README.md"


@cache
def extracted_with_context() -> frozenset[tuple[str, str | None]]:
    """(msgid, msgctxt) of the messages in the sources now, found as `pybabel extract -F babel.cfg
    -k N_` finds them: `pgettext("version status", "Draft")` is not the same message as "Draft"."""
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords)
    return frozenset(
        (m if isinstance(m, str) else m[0], context) for _file, _line, m, _notes, context in found
    )


def extracted() -> frozenset[str]:
    return frozenset(msgid for msgid, _context in extracted_with_context())


def catalog(locale: str) -> Catalog:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=locale)


def test_the_sources_have_messages() -> None:
    assert {"Sign in", "Must be a number.", "Escalated to %(role)s"} <= extracted()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    messages = catalog(locale)
    untranslated = sorted(
        (msgid, context)
        for msgid, context in extracted_with_context()
        if not ((found := messages.get(msgid, context=context)) and found.string)
    )
    fuzzy = sorted(m.id for m in messages if m.id and m.fuzzy)
    assert not untranslated, f"{locale}: extract, update and translate ({HOW})"
    assert not fuzzy, f"{locale}: check and unmark the fuzzy entries"


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_are_kept(locale: str) -> None:
    for message in catalog(locale):
        if message.id and message.string:
            expected, got = PLACEHOLDER.findall(message.id), PLACEHOLDER.findall(message.string)
            assert sorted(got) == sorted(expected), (message.id, message.string)
            # Every translation is %-formatted: a stray % would break the page.
            assert "%" not in PLACEHOLDER.sub("", message.string), message.string


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_is_current(locale: str) -> None:
    fresh = BytesIO()
    write_mo(fresh, catalog(locale))
    committed = (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == fresh.getvalue(), "run `pybabel compile -d complaintflow/translations`"


def test_pages_speak_the_readers_language(app: Flask) -> None:
    client = app.test_client()
    browsers = [("zh-TW", "登入"), ("zh-HK", "登入"), ("zh-CN", "登录"), ("en", "Sign in")]
    for browser, word in browsers:
        page = client.get("/signin", headers={"Accept-Language": browser}).get_data(as_text=True)
        assert word in page, browser
    # The language switch wins over the browser's language, for the rest of the session.
    for code, lang, word in [
        ("zh_Hant", "zh-Hant", "提出投訴"),
        ("zh_Hans", "zh-Hans", "提交投诉"),
        ("en", "en", "Make a complaint"),
    ]:
        client.get(f"/lang/{code}")
        page = client.get("/", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
        assert f'<html lang="{lang}">' in page and word in page, code


# Two or more English words of three letters or more in a row: a sentence, not a code or a name.
_ENGLISH = re.compile(r"[A-Za-z][\w'’,.:;()-]*(?: [A-Za-z][\w'’,.:;()-]*)+")
_SEEN_TEXT = re.compile(r'<[^>]+?\b(?:title|placeholder|aria-label|alt)="([^"]*)"[^>]*>')
_NOT_PAGES = re.compile(
    r"/(lang|signout|static)/|\.(csv|json|bpmn|svg|png|js|css)$|/export|/files/"
)


def english_on(html: str) -> set[str]:
    """The English sentences a reader sees on a page: its text, and its tooltips, placeholders
    and labels for screen readers."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = unescape(re.sub(r"<[^>]+>", "\n", _SEEN_TEXT.sub(r" \1 ", html)))
    return {
        run
        for run in (found.strip(" ,.:;") for found in _ENGLISH.findall(text))
        if len(re.findall(r"[a-z]{3,}", run)) >= 2
    }


@pytest.mark.parametrize(("locale", "user"), [("zh_Hant", "admin"), ("zh_Hans", "anonymous")])
def test_chinese_pages_show_no_english_sentences(app: Flask, locale: str, user: str) -> None:
    """Every page reachable by links, read in Chinese: the catalogs being complete does not
    cover texts that come from elsewhere (the clause checks, names from the diagrams)."""
    Complaint(services(app), "facility").do("contact_complainant", assessment="urgent")
    page = Page(app) if user == "anonymous" else Page(app).sign_in(user)
    page.client.get(f"/lang/{locale}")
    todo = ["/", "/complain/facility", "/complain/bar", "/complain/hotel"]
    seen: set[str] = set()
    english: dict[str, set[str]] = {}
    while todo and len(seen) < 200:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = page.client.get(path)
        if answer.status_code != 200 or answer.mimetype != "text/html":
            continue
        html = answer.get_data(as_text=True)
        for href in re.findall(r'href="([^"#]+)"', html):
            link = urlparse(urljoin("http://localhost" + path, unescape(href)))
            if link.netloc == "localhost" and not _NOT_PAGES.search(link.path):
                todo.append(link.path)
        if found := english_on(html):
            english[path] = found
    assert len(seen) >= (30 if user == "admin" else 5), sorted(seen)  # it did get around
    assert not english, english
