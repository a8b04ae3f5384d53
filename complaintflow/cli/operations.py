"""Operating complaints and what runs behind them: instances, tasks, timers, the outbox, the
audit log."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from .. import outbox
from ..app import services
from ..audit import verify
from ..bootstrap import OPERATOR
from ..dispatch import deliver_due
from ..errors import ComplaintflowError
from . import ROW_NUMBER, main
from .procedures import process_owner


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
@click.argument("message_id", type=ROW_NUMBER)
@click.option("--reason", required=True)
@with_appcontext
def outbox_retry(message_id: int, reason: str) -> None:
    """Try a dead or discarded message again, from its first attempt."""
    outbox.retry(services().store, message_id, OPERATOR, reason)
    click.echo(f"message {message_id} is pending again")


@outbox_group.command("discard")
@click.argument("message_id", type=ROW_NUMBER)
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
@click.argument("instance_id", type=ROW_NUMBER)
@click.option("--reason", required=True)
@with_appcontext
def instances_cancel(instance_id: int, reason: str) -> None:
    """Cancel a running complaint (the reason goes into its history)."""
    services().engine.cancel(instance_id, OPERATOR, reason)
    click.echo(f"instance {instance_id} cancelled")


@instances.command("retry")
@click.argument("instance_id", type=ROW_NUMBER)
@click.option("--reason", required=True)
@with_appcontext
def instances_retry(instance_id: int, reason: str) -> None:
    """Run the failed step of a complaint in status error again."""
    services().engine.retry(instance_id, OPERATOR, reason)
    click.echo(f"instance {instance_id} retried")


@instances.command("correct")
@click.argument("instance_id", type=ROW_NUMBER)
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


@instances.command("migrate")
@click.option("--procedure", "key", required=True, help="The procedure key.")
@click.option("--to", "to", required=True, type=ROW_NUMBER, help="The approved version to move to.")
@click.option(
    "--instance",
    "ids",
    multiple=True,
    type=ROW_NUMBER,
    help="Only this complaint (its id); repeatable.",
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
    who = process_owner(actor) if actor is not None else OPERATOR
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
