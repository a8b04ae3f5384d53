"""What any request may carry, checked once for every route, so that what no database column
holds gets a readable 4xx instead of a database error: whole numbers the integer columns hold (a
larger one in the path is no row: 404), and no NUL character (no PostgreSQL text column stores
one). In JSON from outside (`parse_json`) a NUL becomes U+FFFD, as in form data from any source
(`forms.storable`): other systems send what their own stores hold, and their complaint is kept.
In the path, the query or the fields of a web form, where people and links put text, it is
refused (400)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypeGuard

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from ..errors import N_, UnreadableValue
from ..forms import storable
from ..models import MAX_INTEGER


def whole_number(raw: str, name: str) -> int:
    """`raw` as an id, version or page number the database holds, or a readable error naming
    the field."""
    raw = raw.strip()
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses; and no more of them
    # than the largest number has, as int() refuses thousands.
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_INTEGER)):
        number = int(raw)
        if 1 <= number <= MAX_INTEGER:
            return number
    raise UnreadableValue(
        N_("%(name)s must be a whole number from 1 to %(max)s"), name=name, max=MAX_INTEGER
    )


# Days a query may name: midnight of either, in any zone, and the day after the last, are still
# datetimes (date.max + 1 day, or 0001-01-01 moved to UTC, would overflow).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def day(raw: str, name: str) -> date:
    """`raw` as a date, YYYY-MM-DD, or a readable error naming the field."""
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        raise UnreadableValue(
            N_("%(name)s must be a date such as %(example)s"), name=name, example="2026-11-27"
        ) from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise UnreadableValue(
            N_("%(name)s must be a date from %(first)s to %(last)s"),
            name=name,
            first=str(FIRST_DAY),
            last=str(LAST_DAY),
        )
    return value


def is_row_number(value: object) -> TypeGuard[int]:
    """Whether a value from a JSON body is an id or version number a row can have."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INTEGER


class _RowNumber(IntegerConverter):
    """`<int:…>` in a route: a number no row can have does not match, so it is a 404."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_INTEGER)
        super().__init__(*args, **kwargs)


def _refuse(where: str) -> BadRequest:
    return BadRequest(f"the request carries a NUL character ({where}); send text without it")


def parse_json(text: str | bytes) -> Any:
    """JSON from outside, made storable. Nesting too deep for the parser (or for `storable`)
    is a ValueError, as any other malformed JSON is, not a RecursionError."""
    try:
        return storable(json.loads(text))
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


class _JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with request bodies read by `parse_json`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_nul() -> None:
    if "\x00" in request.path:
        raise _refuse("in the path")
    # Parsed only where there is something to parse: this runs before every API call.
    sources = [request.args] if request.query_string else []
    if request.mimetype in _FORMS:
        sources.append(request.form)
    for source in sources:
        for name, value in source.items(multi=True):
            if "\x00" in name or "\x00" in value:
                raise _refuse(f"in {name.replace(chr(0), '')}")


def install(app: Flask) -> None:
    """Before any blueprint registers its routes: the converter is looked up as they do."""
    app.url_map.converters["int"] = _RowNumber
    app.json = _JSONProvider(app)
    app.before_request(_refuse_nul)
