"""The private link a complainant follows to see where their complaint stands.

The token is an HMAC of the instance id under the site's secret: unguessable without the secret,
nothing to store, and the same wherever it is made (a page, an email, a webhook's answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def status_token(secret_key: str, instance_id: int) -> str:
    digest = hmac.new(secret_key.encode(), f"status:{instance_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()[:32]


def token_matches(secret_key: str, instance_id: int, token: str) -> bool:
    # As bytes: compare_digest refuses str with characters past ASCII, which a link can carry.
    return hmac.compare_digest(status_token(secret_key, instance_id).encode(), token.encode())


def status_path(secret_key: str, instance_id: int) -> str:
    return f"/s/{instance_id}/{status_token(secret_key, instance_id)}"
