"""The private link a complainant follows to see where their complaint stands.

The token is an HMAC of the instance id under the site's secret: unguessable without the secret,
nothing to store, and staff can show it again (to give it to someone who complained in person).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from flask import request, url_for

from ..app import services


def status_token(instance_id: int) -> str:
    secret = services().settings.secret_key.encode()
    digest = hmac.new(secret, f"status:{instance_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def token_matches(instance_id: int, token: str) -> bool:
    return hmac.compare_digest(status_token(instance_id), token)


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for people outside (status links, QR codes)."""
    base = services().settings.public_url or request.host_url.rstrip("/")
    return base + url_for(endpoint, **values)


def status_url(instance_id: int) -> str:
    return public_url("public.status", instance_id=instance_id, token=status_token(instance_id))
