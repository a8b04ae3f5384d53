"""Absolute links for people outside: status pages and QR codes."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from .. import status_links
from ..app import services


def status_token(instance_id: int) -> str:
    return status_links.status_token(services().settings.secret_key, instance_id)


def token_matches(instance_id: int, token: str) -> bool:
    return status_links.token_matches(services().settings.secret_key, instance_id, token)


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for people outside (status links, QR codes)."""
    base = services().settings.public_url or request.host_url.rstrip("/")
    return base + url_for(endpoint, **values)


def status_url(instance_id: int) -> str:
    return public_url("public.status", instance_id=instance_id, token=status_token(instance_id))
