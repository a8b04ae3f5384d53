"""What notifications say, per event, in English and Chinese.

Texts are written in English and Traditional Chinese (the seeds' script); Simplified Chinese is
derived from the Traditional text. Placeholders: {number} the complaint number, {procedure} its
procedure, {task} a step, {role} a role, {due} a deadline, {link} the complainant's status link
or the staff page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .naming import chinese

# event -> language -> (subject, body)
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "complaint.new": {
        "en": ("New complaint {number}", "Complaint {number} ({procedure}) needs {role}.\n{link}"),
        "zh_Hant": ("新投訴 {number}", "投訴 {number}（{procedure}）需要{role}處理。\n{link}"),
    },
    "complaint.urgent": {
        "en": (
            "Urgent: complaint {number}",
            "Complaint {number} ({procedure}) is urgent and needs {role} now.\n{link}",
        ),
        "zh_Hant": (
            "緊急：投訴 {number}",
            "投訴 {number}（{procedure}）緊急，請{role}立即處理。\n{link}",
        ),
    },
    "complaint.major": {
        "en": (
            "Major complaint {number}",
            "A major complaint {number} ({procedure}) is reported to {role} at once.\n{link}",
        ),
        "zh_Hant": (
            "重大投訴 {number}",
            "重大投訴 {number}（{procedure}）立即上報{role}。\n{link}",
        ),
    },
    "deadline.missed": {
        "en": (
            "Deadline passed: complaint {number}",
            "A deadline of complaint {number} ({procedure}) passed; it is escalated to {role}."
            "\n{link}",
        ),
        "zh_Hant": (
            "已逾期：投訴 {number}",
            "投訴 {number}（{procedure}）已逾期，現上報{role}。\n{link}",
        ),
    },
    "deadline.approaching": {
        "en": (
            "Due soon: complaint {number}",
            "The step “{task}” of complaint {number} is due at {due}.\n{link}",
        ),
        "zh_Hant": (
            "即將到期：投訴 {number}",
            "投訴 {number} 的「{task}」將於 {due} 到期。\n{link}",
        ),
    },
    "complaint.in_progress": {
        "en": (
            "Your complaint {number} is being handled",
            "Thank you. Your complaint {number} is being handled and has not been forgotten."
            "\nFollow it here: {link}",
        ),
        "zh_Hant": (
            "您的投訴 {number} 正在處理",
            "謝謝您的意見。您的投訴 {number} 正在處理中，我們沒有遺忘。\n查看進度：{link}",
        ),
    },
    "complaint.result": {
        "en": (
            "Your complaint {number} has been handled",
            "Your complaint {number} has been handled. We apologise again for the trouble."
            "\nSee it here: {link}",
        ),
        "zh_Hant": (
            "您的投訴 {number} 已處理",
            "您的投訴 {number} 已處理完畢，再次向您致歉。\n查看：{link}",
        ),
    },
}


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def compose(event: str, language: str, **values: Any) -> Message:
    """The message for an event in a language (en, zh_Hans, zh_Hant), placeholders filled."""
    texts = TEXTS.get(event) or {"en": (event, event + " {number}\n{link}")}
    subject, body = texts["en"] if language == "en" else texts.get("zh_Hant", texts["en"])
    filled = _Blank({k: "" if v is None else v for k, v in values.items()})
    return Message(
        chinese(subject.format_map(filled), language), chinese(body.format_map(filled), language)
    )


class _Blank(dict[str, Any]):
    """Placeholders a caller has no value for read as nothing, not as an error."""

    def __missing__(self, key: str) -> str:
        return ""
