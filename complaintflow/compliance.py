"""Did we follow our written procedure? Each clause a diagram carries has checks in
`bpmn/clauses.json`; this module judges one complaint against them from its history alone.

Verdicts: observed, missed, pending (still open, deadline not yet passed), not applicable (the
complaint never came to that part of the procedure). Each comes with its evidence: the step, who
did it, when, and the deadline it was held to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from .naming import chinese
from .sla import duration
from .validation import timer_name

OBSERVED, MISSED, PENDING, NOT_APPLICABLE = "observed", "missed", "pending", "not_applicable"
_WORSE = [NOT_APPLICABLE, OBSERVED, PENDING, MISSED]  # a clause is as bad as its worst check
_DONE = {
    "task.completed",
    "service.called",
    "gateway.passed",
    "element.completed",
    "end.reached",
    "instance.started",
}
_REACHED = _DONE | {"task.ready", "service.failed", "timer.fired"}


@dataclass(frozen=True)
class Check:
    kind: str
    en: str
    elements: tuple[str, ...] = ()
    element: str = ""
    timer: str = ""
    first: str = ""
    then: str = ""
    when: tuple[str, ...] = ()
    zh_hant: str = ""  # what `en` says, in the seed's language (a file from before: English only)

    def text(self, language: str) -> str:
        """What the check looks for, as a reader of `language` reads it."""
        return chinese(self.zh_hant, language) if self.zh_hant and language != "en" else self.en


@dataclass
class Verdict:
    clause: str
    status: str
    checks: list[tuple[Check, str, dict[str, Any]]] = field(default_factory=list)


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> dict[str, dict[str, tuple[Check, ...]]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        key: {
            clause: tuple(_check(check) for check in checks) for clause, checks in clauses.items()
        }
        for key, clauses in raw.items()
        if not key.startswith("_")
    }


def _check(raw: dict[str, Any]) -> Check:
    fields: dict[str, Any] = {
        k.lower().replace("-", "_"): tuple(v) if isinstance(v, list) else v for k, v in raw.items()
    }
    return Check(**fields)


def clauses_for(bpmn_dir: Path, procedure: str) -> dict[str, tuple[Check, ...]]:
    path = bpmn_dir / "clauses.json"
    if not path.exists():
        return {}
    return _load(path, path.stat().st_mtime).get(procedure, {})


class _History:
    """The facts of one complaint's history the checks ask about."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.reached = {e["bpmn_id"] for e in events if e["action"] in _REACHED}

    def first(
        self, element: str, actions: set[str], after: datetime | None = None
    ) -> dict[str, Any] | None:
        return next(
            (
                e
                for e in self.events
                if e["bpmn_id"] == element
                and e["action"] in actions
                and (after is None or e["at"] >= after)
            ),
            None,
        )

    def fired(self, timer: str, after: datetime) -> dict[str, Any] | None:
        return next(
            (
                e
                for e in self.events
                if e["action"] == "timer.fired"
                and e["at"] >= after
                and timer_name(e["data"].get("expression", "")) == timer
            ),
            None,
        )


def _evidence(event: dict[str, Any] | None) -> dict[str, Any]:
    return (
        {}
        if event is None
        else {
            "step": event["bpmn_id"],
            "name": event["name"],
            "actor": event["actor"],
            "at": event["at"],
        }
    )


def _judge(
    check: Check, history: _History, sla: dict[str, str], finished: bool, now: datetime
) -> tuple[str, dict[str, Any]]:
    if check.when and not (set(check.when) & history.reached):
        return NOT_APPLICABLE, {}
    open_status = MISSED if finished else PENDING
    if check.kind in ("done", "instructed", "done_any"):
        elements = check.elements or (check.element,)
        done = [history.first(e, _DONE) for e in elements]
        ok = any(done) if check.kind == "done_any" else all(done)
        last = next((d for d in reversed(done) if d), None)
        return (OBSERVED if ok else open_status), _evidence(last)
    if check.kind == "before":
        first, then = history.first(check.first, _DONE), history.first(check.then, _DONE)
        if first and then:
            return (OBSERVED if first["at"] <= then["at"] else MISSED), {
                **_evidence(first),
                "then": _evidence(then),
            }
        if then and not first:
            return MISSED, {"then": _evidence(then)}
        return (open_status if first or not finished else NOT_APPLICABLE), _evidence(first)
    if check.kind == "within":
        ready = history.first(check.element, {"task.ready"})
        if ready is None or check.timer not in sla:
            return NOT_APPLICABLE, {}
        due = ready["at"] + duration(sla[check.timer])
        completed = history.first(check.element, _DONE, after=ready["at"])
        facts = {
            **_evidence(completed),
            "ready_at": ready["at"],
            "due_at": due,
            "fired": bool(history.fired(check.timer, ready["at"])),
        }
        if completed is not None:
            facts["took"] = completed["at"] - ready["at"]
            return (OBSERVED if completed["at"] <= due else MISSED), facts
        return (MISSED if now > due or facts["fired"] else open_status), facts
    raise ValueError(f"unknown check kind {check.kind!r}")


def judge(
    clauses: dict[str, tuple[Check, ...]],
    events: list[dict[str, Any]],
    sla: dict[str, str],
    finished: bool,
    now: datetime,
) -> list[Verdict]:
    """Verdicts for one complaint, in clause order, from its events (with datetimes in `at`)."""
    history = _History(events)
    verdicts = []
    for clause, checks in clauses.items():
        verdict = Verdict(clause, NOT_APPLICABLE)
        for check in checks:
            status, evidence = _judge(check, history, sla, finished, now)
            verdict.checks.append((check, status, evidence))
            if _WORSE.index(status) > _WORSE.index(verdict.status):
                verdict.status = status
        verdicts.append(verdict)
    return verdicts
