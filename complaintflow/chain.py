"""The hash chains that make the history tamper-evident.

Each event of an instance carries the SHA-256 of its content and of the hash before it; so does
each entry of the audit log (deploys, users), in one chain of its own. Changing, removing or
reordering a row breaks the chain from there on, which `complaintflow audit verify` finds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _link(prev_hash: str, fields: list[Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(fields)).encode()).hexdigest()


def event_hash(
    prev_hash: str,
    instance_id: int,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    bpmn_id: str | None,
    name: str | None,
    data: dict[str, Any],
) -> str:
    return _link(prev_hash, [instance_id, seq, at.isoformat(), actor, action, bpmn_id, name, data])


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any],
) -> str:
    return _link(prev_hash, [seq, at.isoformat(), actor, action, subject, data])
