"""complaintflow: complaint-handling procedures as BPMN, run by SpiffWorkflow, worked on the web."""

from .app import create_app

__all__ = ["create_app"]
