"""Procedures: checking and deploying diagrams, the handlers they may call, and document control
of their versions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..accounts import ADMIN_ROLE, PROCESS_OWNER_ROLE
from ..app import services
from ..bootstrap import OPERATOR
from ..errors import ComplaintflowError
from ..models import User
from . import ROW_NUMBER, main


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--as",
    "actor",
    default=None,
    help="Who prepares it (編制): a process owner or admin; the operator (cli) if not given.",
)
@click.option("--dry-run", is_flag=True, help="Check only; store nothing.")
@with_appcontext
def deploy(paths: tuple[Path, ...], actor: str | None, dry_run: bool) -> None:
    """Check diagrams and store each as a draft of its procedure's next version. The same
    file as a rejected or withdrawn newest version is submitted again as a new draft."""
    if actor is not None and not dry_run:  # a dry run needs no database, nor anyone
        process_owner(actor)
    for path in paths:
        if dry_run:
            diagram = services().engine.check(path).diagram
            click.echo(f"{path}: valid ({diagram.key}); nothing stored (dry run)")
            continue
        result = services().engine.deploy(path, actor or OPERATOR, resubmit=True)
        state = "draft version" if result.created else "unchanged at version"
        again = (
            f"; the same as version {result.resubmits}, submitted again for review"
            if result.resubmits
            else ""
        )
        click.echo(f"{result.key}: {state} {result.version} ({result.status}){again}")


def process_owner(name: str) -> str:
    """Who --as names must be able to do it on the web too: an active process owner or admin
    (a mistyped name would otherwise sign a version in the audit log)."""
    with services().store.read() as session:
        user = session.scalars(select(User).where(User.username == name)).first()
        roles = user.role_keys if user is not None and user.active else frozenset()
    if not roles & {PROCESS_OWNER_ROLE, ADMIN_ROLE}:
        raise ComplaintflowError(
            f"{name} is not an active user holding the role {PROCESS_OWNER_ROLE} (or"
            f" {ADMIN_ROLE}); name one with --as, or add one with `complaintflow users create`"
        )
    return name


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@with_appcontext
def validate(paths: tuple[Path, ...]) -> None:
    """Check diagrams without storing anything."""
    for path in paths:
        diagram = services().engine.check(path).diagram
        click.echo(f"{path}: valid ({diagram.key}, {len(diagram.lanes)} lanes)")


@main.command()
@with_appcontext
def handlers() -> None:
    """List the service-task handlers diagrams may call, with their parameters."""
    for handler in services().engine.handlers.all():
        click.echo(f"{handler.name}\t{handler.summary}")
        for param in handler.params:
            need = "required" if param.required else "optional"
            click.echo(f"    {param.name} ({param.type}, {need}): {param.description}")


@main.group()
def versions() -> None:
    """Versions of a procedure and their document control (prepared, reviewed, approved)."""


# What --effective takes, and how `versions list` prints times: the site's local time.
_TIME_FORMATS = [
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
]


def _site_zone() -> ZoneInfo:
    return ZoneInfo(services().settings.timezone)


@versions.command("list")
@click.argument("key")
@with_appcontext
def versions_list(key: str) -> None:
    """One version per line: number, status, prepared, reviewed, approved, in effect from (in
    the site's time zone, as --effective takes it)."""
    zone = _site_zone()
    with services().store.read() as session:
        rows = services().engine.versions(session, key)
        if not rows:
            raise ComplaintflowError(f"there is no procedure '{key}'")
        for version, running, total in rows:
            effective = (
                version.effective_from.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                if version.effective_from
                else "-"
            )
            click.echo(
                f"v{version.version}\t{version.status}\tprepared by {version.deployed_by}"
                f"\treviewed by {version.reviewed_by or '-'}"
                f"\tapproved by {version.approved_by or '-'}\teffective {effective}"
                f"\t{running} running of {total}"
            )


@versions.command("review")
@click.argument("key")
@click.argument("number", type=ROW_NUMBER)
@click.option("--as", "actor", required=True, help="The reviewer (審核), not the preparer.")
@click.option("--comment", required=True)
@click.option("--reject", is_flag=True, help="Send it back instead of accepting it.")
@with_appcontext
def versions_review(key: str, number: int, actor: str, comment: str, reject: bool) -> None:
    """Review a draft."""
    services().engine.review(key, number, process_owner(actor), not reject, comment)
    click.echo(f"{key} v{number} {'rejected' if reject else 'reviewed'} by {actor}")


@versions.command("approve")
@click.argument("key")
@click.argument("number", type=ROW_NUMBER)
@click.option("--as", "actor", required=True, help="The approver (批准): a third person.")
@click.option("--comment", required=True)
@click.option(
    "--effective",
    type=click.DateTime(_TIME_FORMATS),
    default=None,
    help="When it takes effect, in the site's time zone: YYYY-MM-DD [HH:MM]; now if not given.",
)
@click.option("--reject", is_flag=True, help="Refuse it instead of approving it.")
@with_appcontext
def versions_approve(
    key: str, number: int, actor: str, comment: str, effective: datetime | None, reject: bool
) -> None:
    """Approve a reviewed version; it takes effect at its date."""
    when = effective.replace(tzinfo=_site_zone()) if effective else None
    services().engine.approve(key, number, process_owner(actor), not reject, comment, when)
    click.echo(f"{key} v{number} {'rejected' if reject else 'approved'} by {actor}")


@versions.command("withdraw")
@click.argument("key")
@click.argument("number", type=ROW_NUMBER)
@click.option("--reason", required=True, help="Why (in the audit log).")
@click.option("--as", "actor", default=None, help="Who withdraws it; the operator if not given.")
@with_appcontext
def versions_withdraw(key: str, number: int, reason: str, actor: str | None) -> None:
    """Withdraw an approved version before it takes effect; it then never does."""
    who = process_owner(actor) if actor is not None else OPERATOR
    services().engine.withdraw(key, number, who, reason)
    click.echo(f"{key} v{number} withdrawn by {who}")
