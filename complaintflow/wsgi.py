"""The WSGI entry for gunicorn and other WSGI servers: `gunicorn complaintflow.wsgi:app`."""

from .app import create_app
from .heap import set_start_up_aside

app = create_app()
# Each gunicorn process imports this once (or the master does, before forking, with --preload).
set_start_up_aside()
