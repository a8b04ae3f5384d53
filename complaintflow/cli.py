"""The `complaintflow` command: set up, deploy, manage users, serve, and operate instances.

Commands run with the same application (and so the same settings) as the web server. Errors a
user can cause print one line per problem and exit with status 1, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from . import outbox
from .accounts import Contact
from .app import create_app, services
from .audit import verify
from .bootstrap import OPERATOR, initialise
from .dispatch import deliver_due
from .errors import ComplaintflowError, InvalidData, InvalidDiagram
from .models import Role
from .naming import LANGUAGES

Command = TypeVar("Command", bound=Callable[..., None])


class _Group(FlaskGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidDiagram as exc:
            for finding in exc.findings:
                click.echo(f"error: {exc.message.split(':', 1)[0]}: {finding}", err=True)
            sys.exit(1)
        except InvalidData as exc:
            problems = "; ".join(f"{name}: {' '.join(m)}" for name, m in exc.fields.items())
            click.echo(f"error: {problems}", err=True)
            sys.exit(1)
        except ComplaintflowError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            click.echo(f"error: the database does not answer: {reason}", err=True)
            sys.exit(1)


def _create_app(*_: Any) -> Flask:
    return create_app()


@click.group(
    cls=_Group, create_app=_create_app, add_default_commands=False, add_version_option=False
)
def main() -> None:
    """complaintflow: complaint procedures as BPMN, worked on the web."""


@main.command()
@click.option("--demo-users", is_flag=True, help="Create one user per role (see README).")
@with_appcontext
def init(demo_users: bool) -> None:
    """Create or upgrade the database and deploy the bundled diagrams."""
    for line in initialise(services(), demo_users=demo_users):
        click.echo(line)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--as", "actor", default=OPERATOR, help="Who prepares it (編制; in the history).")
@click.option("--dry-run", is_flag=True, help="Check only; store nothing.")
@with_appcontext
def deploy(paths: tuple[Path, ...], actor: str, dry_run: bool) -> None:
    """Check diagrams and store each as a draft of its procedure's next version."""
    for path in paths:
        if dry_run:
            diagram = services().engine.check(path).diagram
            click.echo(f"{path}: valid ({diagram.key}); nothing stored (dry run)")
            continue
        result = services().engine.deploy(path, actor)
        state = "draft version" if result.created else "unchanged at version"
        click.echo(f"{result.key}: {state} {result.version} ({result.status})")


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
def roles() -> None:
    """List the roles: the key first, then its description."""
    with services().store.read() as session:
        for role in session.scalars(select(Role).order_by(Role.procedure_key.is_(None), Role.key)):
            where = f" [{role.procedure_key}]" if role.procedure_key else ""
            detail = f" — {role.description}" if role.description else ""
            click.echo(f"{role.key}\t{role.name}{detail}{where}")


@main.command()
@with_appcontext
def handlers() -> None:
    """List the service-task handlers diagrams may call, with their parameters."""
    for handler in services().engine.handlers.all():
        click.echo(f"{handler.name}\t{handler.summary}")
        for param in handler.params:
            need = "required" if param.required else "optional"
            click.echo(f"    {param.name} ({param.type}, {need}): {param.description}")


def contact_options(locale_default: str | None) -> Callable[[Command], Command]:
    """--email, --phone and --locale; for a change, an option left out keeps what was set."""

    def decorate(command: Command) -> Command:
        command = click.option(
            "--locale",
            type=click.Choice(LANGUAGES),
            default=locale_default,
            show_default=locale_default is not None,
            help="The language of the notifications.",
        )(command)
        command = click.option("--phone", help="Where urgent notifications go by SMS.")(command)
        return click.option("--email", help="Where notifications are emailed.")(command)

    return decorate


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--password", required=True)
@click.option("--role", "roles_", multiple=True, required=True, help="A role key; repeatable.")
@click.option("--display-name", default="")
@contact_options(locale_default="en")
@with_appcontext
def users_create(
    username: str,
    password: str,
    roles_: tuple[str, ...],
    display_name: str,
    email: str | None,
    phone: str | None,
    locale: str,
) -> None:
    """Create a user with one or more roles."""
    contact = Contact(email, phone, locale)
    person = services().accounts.create_user(
        username, password, list(roles_), display_name, contact=contact
    )
    click.echo(f"created {person.username} with roles {', '.join(sorted(person.roles))}")


@users.command("contact")
@click.argument("username")
@contact_options(locale_default=None)
@with_appcontext
def users_contact(username: str, email: str | None, phone: str | None, locale: str | None) -> None:
    """Set where a user's notifications go (email, SMS) and in which language; an empty
    value ('') removes an address."""
    accounts = services().accounts
    now = accounts.contact_of(username)
    contact = Contact(
        now.email if email is None else email,
        now.phone if phone is None else phone,
        locale or now.locale,
    )
    accounts.set_contact(username, contact, "cli")
    click.echo(
        f"{username}: email {contact.email or '-'}, phone {contact.phone or '-'},"
        f" language {contact.locale}"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, envvar="PORT", type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@with_appcontext
def serve(host: str, port: int, threads: int) -> None:
    """Serve the web app and API, fire due timers and deliver notifications, in this one
    process."""
    from flask import current_app
    from waitress import serve as waitress_serve

    from .background import loops

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    running = loops(services())
    for loop in running:
        loop.start()
    click.echo(
        f"complaintflow serving on http://{host}:{port} (database: "
        f"{services().store.engine.url.render_as_string(hide_password=True)})"
    )
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="complaintflow")
    finally:
        for loop in running:
            loop.stop()


@main.group()
def timers() -> None:
    """Operate timers."""


@timers.command("run")
@with_appcontext
def timers_run() -> None:
    """Fire the timers that are due now, once."""
    click.echo(f"{services().engine.fire_due_timers()} instance(s) moved")


@main.group("outbox")
def outbox_group() -> None:
    """Emails, SMS and webhook calls waiting to go, gone, or given up on."""


@outbox_group.command("list")
@click.option(
    "--status", type=click.Choice(["pending", "sent", "dead", "discarded"]), help="Only these."
)
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def outbox_list(status: str | None, limit: int) -> None:
    """The newest messages: id, status, attempts, channel, event, recipient, last error."""
    with services().store.read() as session:
        for m in outbox.listing(session, status, limit=limit):
            error = f"\t{m.last_error}" if m.last_error else ""
            click.echo(
                f"{m.id}\t{m.status}\t{m.attempts}\t{m.channel}\t{m.event}\t{m.recipient}{error}"
            )


@outbox_group.command("retry")
@click.argument("message_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def outbox_retry(message_id: int, reason: str) -> None:
    """Try a dead or discarded message again, from its first attempt."""
    outbox.retry(services().store, message_id, OPERATOR, reason)
    click.echo(f"message {message_id} is pending again")


@outbox_group.command("discard")
@click.argument("message_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def outbox_discard(message_id: int, reason: str) -> None:
    """Give up on a message."""
    outbox.discard(services().store, message_id, OPERATOR, reason)
    click.echo(f"message {message_id} is discarded")


@outbox_group.command("deliver")
@with_appcontext
def outbox_deliver() -> None:
    """Deliver what is due now, once (`serve` does this all the time)."""
    click.echo(f"{deliver_due(services().store)} message(s) tried")


@main.group()
def instances() -> None:
    """Operate complaint instances."""


@instances.command("cancel")
@click.argument("instance_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def instances_cancel(instance_id: int, reason: str) -> None:
    """Cancel a running complaint (the reason goes into its history)."""
    services().engine.cancel(instance_id, OPERATOR, reason)
    click.echo(f"instance {instance_id} cancelled")


@instances.command("retry")
@click.argument("instance_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def instances_retry(instance_id: int, reason: str) -> None:
    """Run the failed step of a complaint in status error again."""
    services().engine.retry(instance_id, OPERATOR, reason)
    click.echo(f"instance {instance_id} retried")


@instances.command("correct")
@click.argument("instance_id", type=int)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    required=True,
    metavar="FIELD=VALUE",
    help="A field and its corrected value (text); repeatable.",
)
@click.option("--reason", required=True)
@with_appcontext
def instances_correct(instance_id: int, assignments: tuple[str, ...], reason: str) -> None:
    """Correct data entered wrongly (the history keeps what it was)."""
    changes = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise ComplaintflowError(f"--set takes FIELD=VALUE, not {assignment!r}")
        changes[name.strip()] = value
    services().engine.correct(instance_id, changes, OPERATOR, reason)
    click.echo(f"instance {instance_id} corrected: {', '.join(changes)}")


@main.group()
def tasks() -> None:
    """Operate tasks."""


@tasks.command("reassign")
@click.argument("task_id")
@click.option("--to", "to", required=True, help="The username to hand the task to.")
@click.option("--reason", required=True)
@with_appcontext
def tasks_reassign(task_id: str, to: str, reason: str) -> None:
    """Hand a ready task to someone else who holds its role."""
    services().engine.reassign(task_id, to, OPERATOR, reason)
    click.echo(f"task {task_id} handed to {to}")


@main.group()
def audit() -> None:
    """Check the history."""


@audit.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check every hash chain; exit 1 naming the first broken row."""
    verdict = verify(services().store)
    if not verdict.intact:
        click.echo(f"error: history broken: {verdict.problem}", err=True)
        sys.exit(1)
    click.echo(
        f"intact: {verdict.events} events of {verdict.instances} complaints,"
        f" {verdict.entries} audit log entries"
    )


@main.group()
def versions() -> None:
    """Versions of a procedure and their document control (prepared, reviewed, approved)."""


@versions.command("list")
@click.argument("key")
@with_appcontext
def versions_list(key: str) -> None:
    """One version per line: number, status, prepared, reviewed, approved, in effect from."""
    with services().store.read() as session:
        for version, running, total in services().engine.versions(session, key):
            effective = version.effective_from.isoformat() if version.effective_from else "-"
            click.echo(
                f"v{version.version}\t{version.status}\tprepared by {version.deployed_by}"
                f"\treviewed by {version.reviewed_by or '-'}"
                f"\tapproved by {version.approved_by or '-'}\teffective {effective}"
                f"\t{running} running of {total}"
            )


@versions.command("review")
@click.argument("key")
@click.argument("number", type=int)
@click.option("--as", "actor", required=True, help="The reviewer (審核), not the preparer.")
@click.option("--comment", required=True)
@click.option("--reject", is_flag=True, help="Send it back instead of accepting it.")
@with_appcontext
def versions_review(key: str, number: int, actor: str, comment: str, reject: bool) -> None:
    """Review a draft."""
    services().engine.review(key, number, actor, not reject, comment)
    click.echo(f"{key} v{number} {'rejected' if reject else 'reviewed'} by {actor}")


@versions.command("approve")
@click.argument("key")
@click.argument("number", type=int)
@click.option("--as", "actor", required=True, help="The approver (批准): a third person.")
@click.option("--comment", required=True)
@click.option(
    "--effective",
    type=click.DateTime(),
    default=None,
    help="When it takes effect (local time of the site); now if not given.",
)
@click.option("--reject", is_flag=True, help="Refuse it instead of approving it.")
@with_appcontext
def versions_approve(
    key: str, number: int, actor: str, comment: str, effective: datetime | None, reject: bool
) -> None:
    """Approve a reviewed version; it takes effect at its date."""
    zone = ZoneInfo(services().settings.timezone)
    when = effective.replace(tzinfo=zone) if effective else None
    services().engine.approve(key, number, actor, not reject, comment, when)
    click.echo(f"{key} v{number} {'rejected' if reject else 'approved'} by {actor}")
