"""How SpiffWorkflow runs the procedures: deploy, start, complete, timers, and the read side."""

from .core import Engine
from .versions import Deployed

__all__ = ["Deployed", "Engine"]
