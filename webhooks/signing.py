"""Signing and checking webhook calls, the same way both ways:
`X-Complaintflow-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the
timestamp (Unix seconds) in `X-Complaintflow-Timestamp`; a call older or newer than five
minutes is refused, so a captured call cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import time

WINDOW_SECONDS = 300
SIGNATURE = "X-Complaintflow-Signature"
TIMESTAMP = "X-Complaintflow-Timestamp"
SOURCE = "X-Complaintflow-Source"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP: timestamp, SIGNATURE: signature(secret, timestamp, body)}


def fresh(timestamp: str, now: float | None = None) -> bool:
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs((now if now is not None else time.time()) - sent) <= WINDOW_SECONDS


def valid(secrets: list[str], timestamp: str, body: bytes, given: str) -> bool:
    """Whether `given` was made with one of the secrets (two are valid during a rotation)."""
    # As bytes: compare_digest refuses str with characters past ASCII, which a header can carry.
    return any(
        hmac.compare_digest(signature(s, timestamp, body).encode(), given.encode()) for s in secrets
    )
