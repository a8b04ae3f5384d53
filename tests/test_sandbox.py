"""The sandbox's budget: diagram code works on what forms bring in, so a number typed into a
form must not make a script take the process's memory, nor a loop its CPU."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from complaintflow.sandbox import (
    MAX_FORMAT_WIDTH,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_STEPS,
    SandboxEnvironment,
    SandboxError,
    SandboxLimit,
)

SANDBOX = SandboxEnvironment()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("count * 4", 12),
        ("'ab' * count", "ababab"),
        ("[0] * count", [0, 0, 0]),
        ("name + '先生'", "王先生"),
        ("[1] + [2]", [1, 2]),
        ("2 ** 10", 1024),
        ("2.5 ** 2", 6.25),
        ("(-1) ** (10 ** 9)", 1),
        ("1 << 8", 256),
        ("sum(n * n for n in range(count))", 5),
        ("[(a, b) for a in range(2) for b in range(count)][-1]", (1, 2)),
        ("name.ljust(count, '.')", "王.."),
        ("'a\\tb'.expandtabs(tabsize=count)", "a  b"),
        ("'aXb'.replace('X', '--')", "a--b"),
        ("'-'.join(str(n) for n in range(count))", "0-1-2"),
        ("'%5.1f%%' % 3.14159", "  3.1%"),
        ("'%(n)03d' % {'n': count}", "003"),
        ("f'{count:>4}|{3.14159:.2f}'", "   3|3.14"),
        ("17 % count", 2),
    ],
)
def test_what_diagrams_ordinarily_compute_still_works(expression: str, expected: Any) -> None:
    assert SANDBOX.evaluate(expression, {"count": 3, "name": "王"}) == expected


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("'-' * count", f"* would make a value longer than {MAX_ITEMS} items"),
        ("count * [0]", f"* would make a value longer than {MAX_ITEMS} items"),
        ("('x' * 900000) + ('y' * 900000)", f"+ would make a value longer than {MAX_ITEMS}"),
        ("2 ** count", f"** would make a number wider than {MAX_INT_BITS} bits"),
        ("1 << count", f"<< would make a number wider than {MAX_INT_BITS} bits"),
        ("(10 ** 1000) * (10 ** 1000)", f"* would make a number wider than {MAX_INT_BITS}"),
        ("sum(1 for a in range(10000) for b in range(10000))", f"at most {MAX_STEPS} times"),
        ("len(['x' * 1000000 for n in range(100)])", "at most 10000000 items in all"),
        ("'a'.ljust(count)", f"ljust() would make a value longer than {MAX_ITEMS} items"),
        ("'0'.zfill(count)", "zfill()"),
        ("('a' * 1000).replace('a', 'a' * 10000)", "replace()"),
        ("('x' * 999999).join(['a', 'b', 'c'])", "join()"),
        ("'%*d' % (count, 1)", "write the width of a % format as a number"),
        ("'%.5000f' % 1.5", f"a width in a format may be at most {MAX_FORMAT_WIDTH}"),
    ],
)
def test_what_would_take_the_process_stops_at_once(expression: str, refusal: str) -> None:
    began = time.perf_counter()
    with pytest.raises(SandboxLimit, match=re.escape(refusal)):
        SANDBOX.evaluate(expression, {"count": 10**10})
    assert time.perf_counter() - began < 2


@pytest.mark.parametrize(
    "script",
    [
        "for x in items:\n    items.append(x)\n",  # a list that grows as it is walked
        "for n in range(40):\n    text += text\n",  # doubling
        "for n in range(40):\n    total *= total\n",
        "for n in range(40):\n    text = text.replace('a', 'aa')\n",
    ],
)
def test_scripts_that_run_away_are_stopped(script: str) -> None:
    with pytest.raises(SandboxLimit):
        SANDBOX.execute(script, {"items": [1, 2], "text": "ab", "total": 3})


def test_each_run_has_a_budget_of_its_own() -> None:
    script = f"n = 0\nfor i in range({MAX_STEPS // 20}):\n    for j in range(15):\n        n += 1\n"
    for _ in range(3):  # together far over one budget, each within it
        context: dict[str, Any] = {}
        SANDBOX.execute(script, context)
        assert context["n"] == MAX_STEPS // 20 * 15


def test_in_place_operators_keep_their_meaning_and_the_refused_stay_refused() -> None:
    items = [1]
    context: dict[str, Any] = {"items": items, "n": 2}
    SANDBOX.execute("items += [2]\nn *= 5\nn -= 1\n", context)
    assert items == [1, 2] and context["n"] == 9  # the list grew where it is, as in Python
    with pytest.raises(SandboxError, match=r"\*\*= is not allowed"):
        SANDBOX.execute("n **= 2\n", {"n": 2})


@pytest.mark.parametrize("expression", ["f'{name:>{count}}'", "f'{name:2000}'"])
def test_an_f_string_pads_only_to_a_width_written_out_and_small(expression: str) -> None:
    with pytest.raises(SandboxError, match="width in"):
        SANDBOX.evaluate(expression, {"name": "王", "count": 3})
