"""The registry of service-task handlers.

A diagram's service task names a handler (`<spiffworkflow:serviceTaskOperator id="record.create">`)
and passes it parameters. Handlers live in `workers/` and register themselves here with the
parameters they declare, so that a diagram can be checked against them when it is deployed and
the engine can call them without knowing what they do.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .config import Settings
from .diagrams import CompiledDiagram
from .models import Instance
from .notices import Occasion

PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "dict": dict,
    "bool": bool,
    "int": int,
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str
    required: bool = True


@dataclass
class HandlerContext:
    """What a handler may use: the open transaction, the settings, the instance and the diagram
    it runs on, who acted and when.

    Handlers run inside the engine's transaction, so their writes commit or roll back with the
    workflow step that called them.
    """

    session: Session
    settings: Settings
    instance: Instance
    diagram: CompiledDiagram
    actor: str
    now: datetime
    bpmn_id: str
    data: dict[str, Any]
    # History events the handler adds besides the call itself (action, data).
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def log(self, action: str, **data: Any) -> None:
        self.events.append((action, data))

    @property
    def occasion(self) -> Occasion:
        """This step, for the notices a handler sends."""
        return Occasion(self.session, self.settings, self.diagram, self.instance, self.now)


HandlerFunc = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Handler:
    name: str
    func: HandlerFunc
    params: tuple[Param, ...]
    summary: str

    def check_params(self, given: dict[str, Any]) -> list[str]:
        """Problems with a call's parameters, as sentences; empty when the call is right."""
        problems = []
        declared = {p.name: p for p in self.params}
        for name in given:
            if name not in declared:
                allowed = ", ".join(declared) or "none"
                problems.append(f"{self.name} has no parameter '{name}' (it takes: {allowed})")
        for param in self.params:
            if param.required and param.name not in given:
                problems.append(f"{self.name} needs the parameter '{param.name}'")
        return problems


class HandlerError(Exception):
    """A handler could not do its work; the instance goes to status `error` until retried."""


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, *params: Param) -> Callable[[HandlerFunc], HandlerFunc]:
        def decorate(func: HandlerFunc) -> HandlerFunc:
            summary = (func.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            self._handlers[name] = Handler(name, func, params, summary)
            return func

        return decorate

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def all(self) -> list[Handler]:
        return sorted(self._handlers.values(), key=lambda h: h.name)

    def call(self, name: str, context: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(name)
        if handler is None:
            raise HandlerError(f"no handler is registered under '{name}'")
        problems = handler.check_params(params)
        for param in handler.params:
            value = params.get(param.name)
            if value is not None and not isinstance(value, PARAM_TYPES[param.type]):
                problems.append(f"{name}: '{param.name}' must be {param.type}, got {value!r}")
        if problems:
            raise HandlerError("; ".join(problems))
        return handler.func(context, **params)


registry = HandlerRegistry()


def load_handlers(modules: tuple[str, ...] = ("workers",)) -> HandlerRegistry:
    """Import the modules whose handlers register themselves on `registry`."""
    for module in modules:
        importlib.import_module(module)
    return registry
