"""The sandbox that runs the Python of diagrams: gateway conditions, timer expressions, service
task parameters and scripts.

SpiffWorkflow evaluates them with plain `eval`/`exec` and full builtins, which reaches `os` in one
line. Here they are compiled with RestrictedPython (no imports, no underscore names, no
`getattr`/`type`/`open`) under a stricter policy that also refuses `try` (it defeats step limits),
`while`, and function or class definitions. Compiled code is cached per source text, so an
expression costs a dictionary lookup after its first use.

Each run of diagram code gets a budget, because what it works on comes from forms that staff
and complainants fill in: a loop stops after `MAX_STEPS` iterations in all, and `*`, `+`, `**`
and `<<` refuse to make a string or list longer than `MAX_ITEMS` (or all of them together longer
than `MAX_ITEMS_PER_RUN`) or a number wider than `MAX_INT_BITS` — so a number typed into a form
cannot make `"-" * count` take the process's memory, nor a runaway loop its CPU. The string
methods that make longer strings (`ljust`, `replace`, `join`, …) are counted the same way, and
widths in `%` and f-string formats may not exceed `MAX_FORMAT_WIDTH`. The step then fails like
any failing step: the complaint shows the error, and an admin retries it after correcting the
data or moving it to a corrected version. The budget is for what ordinary code does with what
forms bring in; an author set on it could still exhaust memory (`str()` of a list of long
strings, say), which is why deploying a diagram stays a privileged, reviewed act.
"""

from __future__ import annotations

import ast
import builtins
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
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
MAX_STEPS = 100_000  # loop iterations in one run of diagram code
MAX_ITEMS = 1_000_000  # characters or items of one string or list an operator makes
MAX_ITEMS_PER_RUN = 10_000_000  # ... of all it makes in one run
MAX_INT_BITS = 4096
MAX_FORMAT_WIDTH = 1000  # widths and precisions in `%` and f-string formats


class SandboxError(ValueError):
    """Source that the sandbox refuses to compile."""


class SandboxLimit(RuntimeError):
    """Diagram code that went over its budget while running."""


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
# The operators that can make a value much larger than their operands: `_Policy` routes them
# through `_Budget.operate`.
_GROWING: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Mult: ("*", operator.mul),
    ast.Pow: ("**", operator.pow),
    ast.LShift: ("<<", operator.lshift),
    ast.Mod: ("%", operator.mod),  # not by itself, but `"%*s" % (width, text)` pads to any width
}
_OPERATORS = dict(_GROWING.values())
_LENGTHENING = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join"})
_SEQUENCES = (str, bytes, list, tuple)


def _growth(op: str, x: Any, y: Any) -> tuple[int, int]:
    """What `x op y` would make, worked out before making it: (items of a string or list,
    bits of a number); (0, 0) for what cannot grow much."""
    if isinstance(x, int) and isinstance(y, int):
        if op == "*":
            return 0, x.bit_length() + y.bit_length()
        if op == "**" and abs(x) > 1 and y > 0:
            return 0, abs(x).bit_length() * y
        if op == "<<" and y > 0:
            return 0, x.bit_length() + y
        return 0, 0
    if op == "+" and isinstance(x, _SEQUENCES) and isinstance(y, _SEQUENCES):
        return len(x) + len(y), 0
    if op == "*":
        sequence, times = (x, y) if isinstance(x, _SEQUENCES) else (y, x)
        if isinstance(sequence, _SEQUENCES) and isinstance(times, int):
            return len(sequence) * max(times, 0), 0
    return 0, 0


# The width and precision of each %-conversion; the numbers in an f-string's format.
_PERCENT_WIDTHS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_SPEC_NUMBERS = re.compile(r"\d+")


def _check_widths(template: str | bytes) -> None:
    """Refuse a %-format that pads to a width given at run time, or to a large one."""
    text = template if isinstance(template, str) else template.decode("latin-1")
    for match in _PERCENT_WIDTHS.finditer(text):
        for width in match.groups():
            if width == "*":
                raise SandboxLimit("write the width of a % format as a number, not *")
            if width and int(width) > MAX_FORMAT_WIDTH:
                raise SandboxLimit(f"a width in a format may be at most {MAX_FORMAT_WIDTH}")


def _made_by_method(text: Any, name: str, args: tuple[Any, ...]) -> int:
    """How long the string `text.name(*args)` would be, for the methods that can make one much
    longer than `text`; 0 for the rest."""
    if name in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int):
        return max(len(text), args[0])
    if name == "expandtabs":
        tabsize = args[0] if args and isinstance(args[0], int) else 8
        return len(text) + text.count("\t" if isinstance(text, str) else b"\t") * max(tabsize, 0)
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str | bytes) and isinstance(new, str | bytes):
            times = text.count(old) if old else len(text) + 1
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                times = min(times, args[2])
            return len(text) + times * max(len(new) - len(old), 0)
    if name == "join" and args:  # `args[0]` already a list: `_Budget.getattr` made it one
        parts = [len(part) for part in args[0] if isinstance(part, str | bytes)]
        return sum(parts) + len(text) * max(len(parts) - 1, 0)
    return 0


_GUARDS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getitem_": operator.getitem,
    "_write_": full_write_guard,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_apply_": lambda f, *a, **kw: f(*a, **kw),
    "_print_": PrintCollector,
}


class _Budget:
    """What one run of diagram code may still do: loop steps and the items it makes."""

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.items = MAX_ITEMS_PER_RUN

    def getattr(self, obj: Any, name: str) -> Any:
        value = safer_getattr(obj, name)
        if not isinstance(obj, str | bytes) or name not in _LENGTHENING:
            return value

        def call(*args: Any, **keywords: Any) -> Any:
            if name == "join":  # its parts, counted before they are joined
                args = (list(self.iterate(args[0])), *args[1:]) if args else args
            self._take(_made_by_method(obj, name, (*args, *keywords.values())), f"{name}()")
            return value(*args, **keywords)

        return call

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.steps -= 1
            if self.steps < 0:
                raise SandboxLimit(f"diagram code may loop at most {MAX_STEPS} times in all")
            yield item

    def operate(self, op: str, x: Any, y: Any) -> Any:
        self._charge(op, x, y)
        return _OPERATORS[op](x, y)

    def inplace(self, op: str, x: Any, y: Any) -> Any:
        if op not in _INPLACE:
            raise SandboxError(f"the operator {op} is not allowed in diagrams")
        if op[:-1] in _OPERATORS:
            self._charge(op[:-1], x, y)
        return _INPLACE[op](x, y)

    def _charge(self, op: str, x: Any, y: Any) -> None:
        if op == "%" and isinstance(x, str | bytes):
            _check_widths(x)
        items, bits = _growth(op, x, y)
        if bits > MAX_INT_BITS:
            raise SandboxLimit(f"{op} would make a number wider than {MAX_INT_BITS} bits")
        self._take(items, op)

    def _take(self, items: int, what: str) -> None:
        if items > MAX_ITEMS:
            raise SandboxLimit(f"{what} would make a value longer than {MAX_ITEMS} items")
        self.items -= items
        if self.items < 0:
            raise SandboxLimit(f"diagram code may make at most {MAX_ITEMS_PER_RUN} items in all")

    def guards(self) -> dict[str, Any]:
        """The names compiled diagram code calls, bound to this budget."""
        return {
            **_GUARDS,
            "_getattr_": self.getattr,
            "_getiter_": self.iterate,
            "_operate_": self.operate,
            "_inplacevar_": self.inplace,
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

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        """An f-string's format may not pad to a width computed at run time, nor a large one."""
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr):
            for part in spec.values:
                if not isinstance(part, ast.Constant):
                    self.error(node, "write the width in an f-string's format as a number")
                elif any(int(n) > MAX_FORMAT_WIDTH for n in _SPEC_NUMBERS.findall(str(part.value))):
                    self.error(node, f"a width in a format may be at most {MAX_FORMAT_WIDTH}")
        return self.node_contents_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        """`a * b` becomes `_operate_("*", a, b)` for the operators that can grow a value."""
        self.node_contents_visit(node)  # the operands, transformed in place
        growing = _GROWING.get(type(node.op))
        if growing is None:
            return node
        call = ast.Call(
            func=ast.Name("_operate_", ast.Load()),
            args=[ast.Constant(growing[0]), node.left, node.right],
            keywords=[],
        )
        return ast.fix_missing_locations(ast.copy_location(call, node))


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
    # After the task data, so that no data key can replace a guard; a fresh budget each run.
    namespace.update(_Budget().guards())
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
