"""Reading search terms from a query string (the staff's and the auditor's complaint lists, and
`GET /api/v1/instances`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext

from ..engine.queries import Search
from ..errors import N_, UnreadableValue
from .inputs import day, whole_number

STATUSES = ("running", "completed", "cancelled", "error")
MAX_PER_PAGE = 100


def _day(
    args: Mapping[str, str], name: str, zone: ZoneInfo, next_day: bool = False
) -> datetime | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    return datetime.combine(day(raw, name) + timedelta(days=1 if next_day else 0), time(), zone)


def _int(args: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = (args.get(name) or "").strip()
    return whole_number(raw, name) if raw else default


def search_of_page(args: Mapping[str, str], zone: ZoneInfo) -> tuple[Search, str | None]:
    """For a page: the terms, or, when one cannot be read (a hand-made address), no terms and
    why in the reader's language, so that the page lists without them and says so
    (`_search_error.html`)."""
    try:
        return parse_search(args, zone), None
    except UnreadableValue as exc:
        template, values = exc.problem
        return parse_search({}, zone), gettext(template) % values


def parse_search(args: Mapping[str, str], zone: ZoneInfo) -> Search:
    """Terms from `procedure, version, status, from, to (dates, inclusive), number, complainant,
    role, missed (yes/no), page, per_page`; a bad term raises with one readable line."""
    status = (args.get("status") or "").strip() or None
    if status and status not in STATUSES:
        raise UnreadableValue(N_("status must be one of %(choices)s"), choices=", ".join(STATUSES))
    missed = (args.get("missed") or "").strip().lower()
    if missed not in ("", "yes", "no", "true", "false"):
        raise UnreadableValue(N_("missed must be yes or no"))
    return Search(
        procedure=(args.get("procedure") or "").strip() or None,
        version=_int(args, "version", None),
        status=status,
        started_from=_day(args, "from", zone),
        started_before=_day(args, "to", zone, next_day=True),
        number=(args.get("number") or "").strip() or None,
        complainant=(args.get("complainant") or "").strip() or None,
        role=(args.get("role") or "").strip() or None,
        missed_deadline=None if not missed else missed in ("yes", "true"),
        page=_int(args, "page", 1) or 1,
        per_page=min(MAX_PER_PAGE, _int(args, "per_page", 50) or 50),
    )
