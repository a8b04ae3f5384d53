"""How SpiffWorkflow runs the procedures: deploy, start, complete, timers, and the read side."""

from .core import Deployed, Engine

__all__ = ["Deployed", "Engine"]
