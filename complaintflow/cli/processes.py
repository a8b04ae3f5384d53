"""Setting up and running the product: `init`, `serve`, and the scaled mode's `worker` and
`scheduler`."""

from __future__ import annotations

import logging
import time

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError

from ..app import services
from ..bootstrap import initialise
from ..config import Settings
from ..errors import ComplaintflowError
from ..heap import set_start_up_aside
from ..migrations import require_current
from ..outages import first_line
from . import main


@main.command()
@click.option("--demo-users", is_flag=True, help="Create one user per role (see README).")
@with_appcontext
def init(demo_users: bool) -> None:
    """Create or upgrade the database and deploy the bundled diagrams."""
    for line in initialise(services(), demo_users=demo_users):
        click.echo(line)


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

    from ..background import loops

    require_current(services().store)
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
    set_start_up_aside()
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
    from .. import worker as jobs

    _scaled()
    said = ""
    while True:  # its queue is named after the database: wait for it, as Celery waits for Redis
        try:
            # The tasks' own services: each process of the pool opens connections of its own.
            celery = jobs.configure(jobs.services().store)
            break
        except OperationalError as exc:
            reason = first_line(exc.orig)  # a wrong password, a missing database
            if reason != said:  # said once, not every round
                click.echo(
                    f"complaintflow worker: waiting for the database to answer ({reason})", err=True
                )
                said = reason
            time.sleep(2)
    require_current(jobs.services().store)
    pool = ["--pool=solo"] if concurrency == 1 else [f"--concurrency={concurrency}"]
    celery.worker_main(["worker", "--loglevel=INFO", "--without-gossip", "--without-mingle", *pool])


@main.command()
@with_appcontext
def scheduler() -> None:
    """Find due timers, messages and warnings and hand them to the workers (scaled mode; one
    leads, another started beside it stands by)."""
    from ..scheduler import Scheduler

    _scaled()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("complaintflow").setLevel(logging.INFO)  # whether it leads, outages
    scheduler = Scheduler(services())
    set_start_up_aside()
    scheduler.run()
