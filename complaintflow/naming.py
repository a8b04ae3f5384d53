"""Names of procedures and roles in a reader's language (en, zh_Hans, zh_Hant).

Diagrams carry the seeds' Traditional Chinese names; English comes from the process property
`name.en` and from the first part of a lane's description; Simplified Chinese is derived from the
Traditional text with OpenCC. The web pages and the messages sent out both name things here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from opencc import OpenCC

LANGUAGES = ("en", "zh_Hans", "zh_Hant")
_TO_SIMPLIFIED = OpenCC("t2s")


@lru_cache(maxsize=4096)
def simplified(text: str) -> str:
    return str(_TO_SIMPLIFIED.convert(text))


def chinese(text: str, language: str) -> str:
    """A Traditional Chinese text as a reader of `language` reads it."""
    return simplified(text) if language == "zh_Hans" else text


def procedure_title(diagram: Any, language: str) -> str:
    if language == "en" and diagram.names.get("en"):
        return str(diagram.names["en"])
    return chinese(diagram.name, language)


def role_title(lane: Any, language: str) -> str:
    """A lane's role: its Chinese name, or the English before the colon of its description."""
    if language == "en" and lane.description:
        return str(lane.description.split(":")[0].strip())
    return chinese(lane.name, language)
