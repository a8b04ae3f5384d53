"""Languages of the pages: English, 简体中文, 繁體中文.

The interface's own words come from the gettext catalogs in `complaintflow/translations`. The
procedures' words come from the diagrams and forms, written in Traditional Chinese (the seeds'
script) with English beside them (`x-i18n.en`, `name.en`, lane documentation); Simplified
Chinese is derived from the Traditional text with OpenCC unless a form gives its own.
"""

from __future__ import annotations

from typing import Any

from flask import request, session
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import naming

LANGUAGES = {"en": "English", "zh_Hans": "简体中文", "zh_Hant": "繁體中文"}
DEFAULT = "en"
# Browser language tags and the catalog each reads best in.
_TAGS = {
    "en": "en",
    "zh": "zh_Hans",
    "zh-cn": "zh_Hans",
    "zh-sg": "zh_Hans",
    "zh-hans": "zh_Hans",
    "zh-tw": "zh_Hant",
    "zh-hk": "zh_Hant",
    "zh-mo": "zh_Hant",
    "zh-hant": "zh_Hant",
}


def select_locale() -> str:
    """The language chosen with the switch, else the browser's best match, else English."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    for tag, _quality in request.accept_languages:
        tag = tag.lower()
        if tag in _TAGS:
            return _TAGS[tag]
        if tag.split("-")[0] in _TAGS:
            return _TAGS[tag.split("-")[0]]
    return DEFAULT


def locale() -> str:
    return str(get_locale() or DEFAULT)


def html_lang() -> str:
    return {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant"}.get(locale(), "en")


def chinese(text: str) -> str:
    """A Traditional Chinese text as the current reader reads it."""
    return naming.chinese(text, locale())


def schema_text(node: dict[str, Any], key: str = "title") -> str:
    """A form's title or description (or a field's) in the reader's language."""
    translations = node.get("x-i18n", {})
    current = locale()
    if current == "en":
        return str(translations.get("en", {}).get(key) or node.get(key) or "")
    if current == "zh_Hans" and translations.get("zh-Hans", {}).get(key):
        return str(translations["zh-Hans"][key])
    return chinese(str(node.get(key) or ""))


def choice_label(field: dict[str, Any], value: Any) -> str:
    """The label of one value of a choice field."""
    if locale() == "en":
        titles = field.get("x-i18n", {}).get("en", {}).get("enum-titles", {})
        return str(titles.get(value, value))
    return chinese(str(field.get("x-enum-titles", {}).get(value, value)))


def instructions(form: dict[str, Any]) -> list[tuple[str, str]]:
    """The seed's conduct notes for a step: (clause, text) in the reader's language."""
    language = "en" if locale() == "en" else "zh-Hant"
    return [
        (note["clause"], chinese(note[language]) if language != "en" else note["en"])
        for note in form.get("x-instructions", [])
    ]


def status_name(status: str) -> str:
    """An instance's, a record's, a verdict's or a procedure version's status in words."""
    from flask_babel import pgettext

    # A version's status shares its English with the document-control headings ("Reviewed",
    # "Approved": 審核, 批准, who signed); as a status it reads 已審核, 已批准: hence a context.
    names = {
        "draft": pgettext("version status", "Draft"),
        "reviewed": pgettext("version status", "Reviewed"),
        "approved": pgettext("version status", "Approved"),
        "rejected": pgettext("version status", "Rejected"),
        "withdrawn": pgettext("version status", "Withdrawn"),
        "running": _("Being handled"),
        "completed": _("Closed"),
        "cancelled": _("Cancelled"),
        "error": _("Stopped by an error"),
        "open": _("Open"),
        "resolved": _("Resolved"),
        "archived": _("Archived"),
        "observed": _("Observed"),
        "missed": _("Missed"),
        "pending": _("Pending"),
        "not_applicable": _("Not applicable"),
    }
    return names.get(status, status)


def event_name(event: str) -> str:
    """A notification's or a webhook's event in words (the code itself when unknown)."""
    names = {
        # Notices to people (complaintflow/notices.py, workers/notify.py).
        "complaint.new": _("New complaint"),
        "complaint.urgent": _("Urgent complaint"),
        "complaint.major": _("Major complaint"),
        "deadline.missed": _("A deadline passed"),
        "deadline.approaching": _("A deadline is near"),
        "complaint.in_progress": _("Complainant told: being handled"),
        "complaint.result": _("Complainant told: handled"),
        # Events other systems subscribe to (notices.WEBHOOK_EVENT_TYPES).
        "complaint.created": _("Complaint received"),
        "task.ready": _("A step is waiting"),
        "complaint.escalated": _("Complaint escalated"),
        "complaint.closed": _("Complaint closed"),
        "complaint.cancelled": _("Complaint cancelled"),
        "complaint.stopped": _("Complaint stopped by an error"),
    }
    return names.get(event, event)


def code_name(diagram: Any, value: str | None) -> str:
    """A stored choice (a category, a channel, a satisfaction) as the forms name it."""
    if not value:
        return "—"
    for form in (diagram.intake_form, *diagram.forms.values()):
        for spec in form.get("properties", {}).values():
            if value in spec.get("enum", []):
                return choice_label(spec, value)
    return value


def procedure_name(diagram: Any) -> str:
    return naming.procedure_title(diagram, locale())


def role_name(lane: Any) -> str:
    return naming.role_title(lane, locale())
