"""The sandbox that runs the Python of diagrams: gateway conditions, timer expressions, service
task parameters and scripts.

SpiffWorkflow evaluates them with plain `eval`/`exec` and full builtins, which reaches `os` in one
line. Here they are compiled with RestrictedPython (no imports, no underscore names, no
`getattr`/`type`/`open`) under a stricter policy that also refuses `try` (it defeats step limits),
`while`, and function or class definitions. Compiled code is cached per source text, so an
expression costs a dictionary lookup after its first use.

Deploying a diagram stays a privileged, reviewed act: the sandbox limits what an expression can
reach, not how much CPU or memory it can use.
"""

from __future__ import annotations

import ast
import builtins
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import CodeType
from typing import Any, Literal

from RestrictedPython import RestrictingNodeTransformer, compile_restricted
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector
from SpiffWorkflow.bpmn.script_engine import TaskDataEnvironment

# Names a form field may not take: they would shadow what expressions rely on.
RESERVED_NAMES = frozenset({"sla", "get", "record", "attachments"})

_MAX_RANGE = 10_000


class SandboxError(ValueError):
    """Source that the sandbox refuses to compile."""


def _limited_range(*args: int) -> range:
    result = range(*args)
    if len(result) > _MAX_RANGE:
        raise ValueError(f"range() is limited to {_MAX_RANGE} items in diagrams")
    return result


_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "dict",
        "enumerate",
        "float",
        "int",
        "len",
        "list",
        "max",
        "min",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
    )
}
_BUILTINS["range"] = _limited_range

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "|=": operator.ior,
    "&=": operator.iand,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    try:
        return _INPLACE[op](x, y)
    except KeyError:
        raise SandboxError(f"the operator {op} is not allowed in diagrams") from None


# Set after the task data so that no data key can replace a guard.
_GUARDS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": operator.getitem,
    "_getiter_": iter,
    "_write_": full_write_guard,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_apply_": lambda f, *a, **kw: f(*a, **kw),
    "_print_": PrintCollector,
    "_inplacevar_": _inplacevar,
}


class _Policy(RestrictingNodeTransformer):
    def visit_Import(self, node: ast.Import) -> None:
        self.not_allowed(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.not_allowed(node)

    def visit_Try(self, node: ast.Try) -> None:
        self.not_allowed(node)

    def visit_While(self, node: ast.While) -> None:
        self.not_allowed(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.not_allowed(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.not_allowed(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.not_allowed(node)


@lru_cache(maxsize=8192)
def _compile(source: str, mode: Literal["eval", "exec"]) -> CodeType:
    try:
        code = compile_restricted(source, filename="<diagram>", mode=mode, policy=_Policy)
    except SyntaxError as exc:
        # RestrictedPython reports refusals as one SyntaxError carrying a tuple of messages.
        detail = exc.args[0] if exc.args else "invalid source"
        if isinstance(detail, tuple | list):
            detail = detail[0] if detail else "invalid source"
        raise SandboxError(str(detail)) from None
    return code


def compile_expression(source: str) -> CodeType:
    """Compile a condition, timer or parameter expression, or raise SandboxError."""
    return _compile(source.strip(), "eval")


def compile_script(source: str) -> CodeType:
    return _compile(source, "exec")


def _namespace(context: Mapping[str, Any], external: Mapping[str, Any] | None) -> dict[str, Any]:
    namespace = dict(external or {})
    namespace.update(context)
    namespace["get"] = context.get
    namespace.update(_GUARDS)
    return namespace


class SandboxEnvironment(TaskDataEnvironment):
    """SpiffWorkflow's script environment, with every evaluation going through the sandbox."""

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Any = None
    ) -> Any:
        return eval(compile_expression(expression), _namespace(context, external_context))

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        namespace = _namespace(context, external_context)
        exec(compile_script(script), namespace)
        for key in list(context):
            if key not in namespace:
                del context[key]
        for key, value in namespace.items():
            if not key.startswith("_") and key not in RESERVED_NAMES and not callable(value):
                context[key] = value
        return True
