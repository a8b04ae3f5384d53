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
from .accounts import ADMIN_ROLE, PROCESS_OWNER_ROLE, Contact
from .app import create_app, services
from .audit import verify
from .bootstrap import OPERATOR, initialise
from .config import Settings
from .dispatch import deliver_due
from .errors import ComplaintflowError, InvalidData, InvalidDiagram
from .models import Role, User
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
        _process_owner(actor)
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


def _process_owner(name: str) -> str:
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
    """Serve the web app and API; without a broker, also fire due timers and deliver
    notifications, in this one process."""
    from flask import current_app
    from waitress import serve as waitress_serve

    from .background import loops

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    scaled = services().settings.scaled
    running = [] if scaled else loops(services())
    for loop in running:
        loop.start()
    click.echo(
        f"complaintflow serving on http://{host}:{port} (database: "
        f"{services().store.engine.url.render_as_string(hide_password=True)}"
        + ("; background work: `complaintflow scheduler` and workers)" if scaled else ")")
    )
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="complaintflow")
    finally:
        for loop in running:
            loop.stop()


def _scaled() -> Settings:
    settings = services().settings
    if not settings.scaled:
        raise ComplaintflowError(
            "set COMPLAINTFLOW_BROKER_URL (e.g. redis://localhost:6379/0) for the scaled mode;"
            " without it `complaintflow serve` does the background work itself"
        )
    if settings.is_sqlite:
        raise ComplaintflowError(
            "the scaled mode needs PostgreSQL: set COMPLAINTFLOW_DATABASE_URL=postgresql://…"
        )
    return settings


@main.command()
@click.option("--concurrency", default=2, show_default=True, help="Processes in this worker.")
@with_appcontext
def worker(concurrency: int) -> None:
    """Do background work handed out by the scheduler (a Celery worker; scaled mode)."""
    from .worker import configure

    celery = configure(_scaled())
    pool = ["--pool=solo"] if concurrency == 1 else [f"--concurrency={concurrency}"]
    celery.worker_main(["worker", "--loglevel=INFO", "--without-gossip", "--without-mingle", *pool])


@main.command()
@with_appcontext
def scheduler() -> None:
    """Find due timers, messages and warnings and hand them to the workers (scaled mode; run
    one)."""
    from .scheduler import Scheduler

    _scaled()
    click.echo("complaintflow scheduler: handing due work to the workers")
    Scheduler(services()).run()


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
@click.argument("number", type=int)
@click.option("--as", "actor", required=True, help="The reviewer (審核), not the preparer.")
@click.option("--comment", required=True)
@click.option("--reject", is_flag=True, help="Send it back instead of accepting it.")
@with_appcontext
def versions_review(key: str, number: int, actor: str, comment: str, reject: bool) -> None:
    """Review a draft."""
    services().engine.review(key, number, _process_owner(actor), not reject, comment)
    click.echo(f"{key} v{number} {'rejected' if reject else 'reviewed'} by {actor}")


@versions.command("approve")
@click.argument("key")
@click.argument("number", type=int)
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
    services().engine.approve(key, number, _process_owner(actor), not reject, comment, when)
    click.echo(f"{key} v{number} {'rejected' if reject else 'approved'} by {actor}")


@versions.command("withdraw")
@click.argument("key")
@click.argument("number", type=int)
@click.option("--reason", required=True, help="Why (in the audit log).")
@click.option("--as", "actor", default=None, help="Who withdraws it; the operator if not given.")
@with_appcontext
def versions_withdraw(key: str, number: int, reason: str, actor: str | None) -> None:
    """Withdraw an approved version before it takes effect; it then never does."""
    who = _process_owner(actor) if actor is not None else OPERATOR
    services().engine.withdraw(key, number, who, reason)
    click.echo(f"{key} v{number} withdrawn by {who}")


@instances.command("migrate")
@click.option("--procedure", "key", required=True, help="The procedure key.")
@click.option("--to", "to", required=True, type=int, help="The approved version to move to.")
@click.option(
    "--instance", "ids", multiple=True, type=int, help="Only this complaint (its id); repeatable."
)
@click.option("--reason", required=True, help="Why (in each moved complaint's history).")
@click.option("--dry-run", is_flag=True, help="Only say which can move and why others cannot.")
@click.option("--as", "actor", default=None, help="Who moves them; the operator if not given.")
@with_appcontext
def instances_migrate(
    key: str, to: int, ids: tuple[int, ...], reason: str, dry_run: bool, actor: str | None
) -> None:
    """Move running complaints (all on older versions, or those given) to a newer approved
    version, as the web page and the API do; one line per complaint."""
    who = _process_owner(actor) if actor is not None else OPERATOR
    moves = services().engine.migrate(key, to, who, reason, list(ids) or None, dry_run)
    for move in moves:
        name = move.number or f"#{move.instance_id}"
        if move.movable:
            verdict = "can move" if dry_run else "moved"
            click.echo(f"{name}	v{move.from_version} → v{to}	{verdict}")
        else:
            click.echo(f"{name}	v{move.from_version}	refused: {'; '.join(move.reasons)}")
    movable = sum(m.movable for m in moves)
    done = "can move (dry run; nothing moved)" if dry_run else "moved"
    click.echo(f"{movable} of {len(moves)} complaint(s) {done} to version {to}")
