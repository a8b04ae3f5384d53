"""Deadline durations: the seed's "immediately" and "within three days", made configurable.

Defaults live beside the diagrams in `bpmn/sla.json`; a deployment overrides them with
`COMPLAINTFLOW_SLA_OVERRIDES`. Timer expressions in the diagrams read `sla["<name>"]` from the
instance data, where the engine puts the procedure's durations when an instance starts — so a
running complaint keeps the deadlines it was received under.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .errors import ConfigError


@dataclass(frozen=True)
class Deadline:
    name: str
    duration: str
    clause: str
    description: str


def duration(value: str) -> timedelta:
    """An ISO 8601 duration as SpiffWorkflow reads it; ValueError when it cannot."""
    if not value.startswith("P"):
        raise ValueError(value)
    span: timedelta = TimerEventDefinition.get_timedelta_from_start(
        TimerEventDefinition.parse_iso_duration(value)
    )
    return span


def parse_duration(value: str) -> None:
    """Raise ValueError unless `value` is an ISO 8601 duration SpiffWorkflow understands."""
    duration(value)


class SlaTable:
    """Durations per procedure and timer name: bundled defaults, then overrides."""

    def __init__(self, defaults_path: Path, overrides: dict[str, dict[str, str]]) -> None:
        try:
            raw = json.loads(defaults_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the deadline defaults {defaults_path}: {exc}") from None
        self._table: dict[str, dict[str, Deadline]] = {
            key: {
                name: Deadline(name, d["duration"], d.get("clause", ""), d.get("description", ""))
                for name, d in timers.items()
            }
            for key, timers in raw.items()
        }
        for key, timers in overrides.items():
            for name, duration in timers.items():
                known = self._table.get(key, {})
                if name not in known:
                    names = ", ".join(f"{k}.{n}" for k, ts in self._table.items() for n in ts)
                    raise ConfigError(
                        f"COMPLAINTFLOW_SLA_OVERRIDES names {key}.{name}, which has no default;"
                        f" known timers: {names}"
                    )
                try:
                    parse_duration(duration)
                except (ValueError, TypeError):
                    raise ConfigError(
                        f"COMPLAINTFLOW_SLA_OVERRIDES: {key}.{name} = {duration!r} is not an"
                        " ISO 8601 duration such as PT30M or P3D"
                    ) from None
                d = known[name]
                known[name] = Deadline(name, duration, d.clause, d.description)

    def deadlines(self, procedure_key: str) -> dict[str, Deadline]:
        return self._table.get(procedure_key, {})

    def durations(self, procedure_key: str) -> dict[str, str]:
        """What an instance of the procedure carries as `sla` in its data."""
        return {name: d.duration for name, d in self.deadlines(procedure_key).items()}
