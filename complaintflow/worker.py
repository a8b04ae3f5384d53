"""The scaled mode's workers: Celery tasks that do one item of background work each, with the
same functions `serve` calls in the embedded mode.

The database is the source of truth: a task carries only an id, and its function re-reads and
re-checks everything in its own transaction, doing nothing when the work was done meanwhile.
So a task delivered twice (a worker killed before acknowledging it: `acks_late`) or lost (a
broker outage: the scheduler finds the work again) delays work and never doubles or loses it.
"""

from __future__ import annotations

from functools import cache

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Connection

from . import dispatch
from .config import Settings
from .db import Store
from .heap import set_start_up_aside
from .services import Services

celery = Celery("complaintflow")
celery.conf.update(
    task_acks_late=True,  # acknowledged when done: a killed worker's task goes to another
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # Redis hands an unacknowledged task to another worker after this long.
    broker_transport_options={"visibility_timeout": 300},
)


@cache
def services() -> Services:
    settings = Settings.from_env()
    return Services.build(settings)


def configure(store: Store) -> Celery:
    """The Celery app on the deployment's broker, with a queue there of the deployment's own:
    named after its database, so that deployments sharing one Redis never take each other's
    work, and the processes of one deployment agree whatever address each has the database by."""
    celery.conf.broker_url = store.settings.broker_url
    celery.conf.task_default_queue = f"complaintflow.{store.identity()}"
    return celery


@worker_init.connect
def _set_start_up_aside(**_: object) -> None:
    """Before the pool's processes are forked (as `gc.freeze`'s documentation advises): no
    collection in them walks what was loaded, nor writes to its pages, which they share."""
    set_start_up_aside()


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A forked worker process must not share the parent's database connections."""
    services().store.engine.dispose(close=False)


@celery.task(name="complaintflow.fire_timers")
def fire_timers(instance_id: int) -> None:
    services().engine.fire_timers(instance_id)


@celery.task(name="complaintflow.deliver_due")
def deliver_due() -> None:
    """Deliver what is due, batch after batch, each leased as it is taken so that workers asked
    at the same time take different messages; for up to one scheduler round, and only while no
    other task waits in the queue. A backlog drains at the workers' pace, not one batch per
    nudge, and a timer handed out meanwhile waits for one batch at most."""
    store = services().store
    with celery.pool.acquire(block=True) as broker:
        dispatch.deliver_due(
            store, store.settings.timer_poll_seconds, go_on=lambda: queued(broker) == 0
        )


def queued(broker: Connection) -> int:
    """Tasks waiting in the deployment's queue for a worker."""
    # Declared, not only looked up: before any task the queue may not exist yet.
    queue = celery.conf.task_default_queue
    return int(broker.default_channel.queue_declare(queue=queue).message_count)


@celery.task(name="complaintflow.warn")
def warn(task_id: str) -> None:
    services().engine.warn(task_id)
