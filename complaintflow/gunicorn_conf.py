"""How gunicorn runs complaintflow's web processes — in the image, in the scaled-out tests and in
the HTTP benchmark alike, so that what is tested and measured is what runs:

    gunicorn --config python:complaintflow.gunicorn_conf complaintflow.wsgi:app

The number of processes comes from WEB_CONCURRENCY (gunicorn's own default); options given on
the command line (--bind, --workers) override these.
"""

from pathlib import Path

# Four threads a process: a completion spends much of its time waiting on the database, and a
# thread serves another request meanwhile (the app is thread-safe: `complaintflow serve` runs it
# on eight). gunicorn picks its threaded worker (gthread) for threads > 1.
threads = 4
# Each request line to stdout: the container's log.
accesslog = "-"
# The heartbeat file each worker touches on every request, on tmpfs: on a disk-backed /tmp that
# touch can stall a worker behind the disk (gunicorn's own advice for containers).
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None


def on_starting(server: object) -> None:
    """Before any web process starts, refuse in one line (exit 1) a database whose schema is not
    this version's, as `complaintflow serve` does: served, it would fail every request. One
    that does not answer yet is served as before: requests get 503 until it does."""
    # Imported here: gunicorn reads every name this module holds as a setting.
    import sys

    from sqlalchemy.exc import OperationalError

    from complaintflow.config import Settings
    from complaintflow.db import Store
    from complaintflow.errors import ComplaintflowError
    from complaintflow.migrations import require_current

    try:
        store = Store(Settings.from_env())
        try:
            require_current(store)
        finally:
            store.dispose()
    except ComplaintflowError as exc:  # a setting refused, or the schema
        sys.exit(f"error: {exc.message}")
    except OperationalError:
        pass  # a database starting up, or restarting: the processes wait for it as they serve
