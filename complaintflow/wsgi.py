"""The WSGI entry for gunicorn and other WSGI servers: `gunicorn complaintflow.wsgi:app`."""

from .app import create_app

app = create_app()
