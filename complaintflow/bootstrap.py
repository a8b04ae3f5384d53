"""Bringing a database to a working state: schema, built-in roles, bundled diagrams, and the
documented demo users. Used by `complaintflow init` and by the tests' database template."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from .errors import N_, ComplaintflowError
from .migrations import upgrade
from .models import Role, User
from .services import Services

OPERATOR = "cli"


def demo_password(username: str) -> str:
    return f"{username}-demo"


# The system's sign-off of a bundled version: stored so, shown in the reader's language.
BUNDLED = N_("bundled with complaintflow")


def initialise(svc: Services, demo_users: bool = False) -> Iterator[str]:
    """Run every setup step, saying what each did; safe to run again."""
    upgrade(svc.store)
    svc.accounts.ensure_builtin_roles()
    for path in sorted(svc.settings.bpmn_dir.glob("*.bpmn")):
        result = svc.engine.deploy(path, OPERATOR)
        state = "deployed as" if result.created else "unchanged at"
        # A new installation needs its procedures in effect at once; a changed bundle on an
        # installation in use waits, as a draft, for review and approval like any change.
        svc.engine.put_in_effect(result.key, result.version, BUNDLED)
        with svc.store.read() as session:
            in_effect = svc.engine.current_version(session, result.key).version
        note = (
            ""
            if in_effect == result.version
            else (f" (a draft waiting for review and approval; version {in_effect} is in effect)")
        )
        yield f"{result.key}: {state} version {result.version}{note}"
    if demo_users:
        yield from _create_demo_users(svc)


def _create_demo_users(svc: Services) -> Iterator[str]:
    """One user per role, named after it, password `<role>-demo` (see README)."""
    with svc.store.read() as session:
        roles = session.scalars(select(Role.key).order_by(Role.procedure_key, Role.key)).all()
        existing = set(session.scalars(select(User.username)))
    for role in roles:
        if role in existing:
            continue
        try:
            svc.accounts.create_user(role, demo_password(role), [role])
        except ComplaintflowError as exc:
            yield f"demo user {role} not created: {exc.message}"
        else:
            yield f"demo user {role} (password {demo_password(role)})"
