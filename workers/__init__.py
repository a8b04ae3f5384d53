"""Service-task handlers: the code that touches the world when a diagram says so.

Importing this package registers every handler on `complaintflow.handlers.registry`; the engine
finds them there by the name a diagram gives. See README.md for what each does.
"""

from . import notify, records

__all__ = ["notify", "records"]
