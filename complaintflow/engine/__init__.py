"""How SpiffWorkflow runs the procedures: deploy, start, complete, timers, and the read side."""

from .core import Delivery, Engine
from .versions import Deployed

__all__ = ["Delivery", "Deployed", "Engine"]
