"""A BPMN diagram drawn from its DI as inline SVG, for pages without JavaScript and for print.

The look follows bpmn.io, simplified: pool and lanes with vertical names in their header band,
rounded tasks with a small type glyph, thin start / thick end / double-ring intermediate and
boundary events (dashed when non-interrupting, a clock for timers), diamonds for gateways, and
sequence flows through their waypoints with an arrowhead (a slash at the start of a gateway's
default flow). Every element is one `<g class="el <type>" data-element="<bpmn id>">`; `render`
adds each element's `Mark` (a css class from `static/diagram.css`, a badge, a tooltip).

Parsing and text layout are cached per diagram (by a hash of its bytes): a repeated render only
applies the marks.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree
from markupsafe import Markup, escape

from ..diagrams import NS, parse_xml

__all__ = ["MARK_NAMES", "Mark", "legend", "render"]

DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
SVG_NS = "http://www.w3.org/2000/svg"

FONT_FAMILY = (
    "system-ui, -apple-system, 'Segoe UI', 'PingFang TC', 'PingFang SC', 'Microsoft JhengHei',"
    " 'Microsoft YaHei', 'Noto Sans CJK TC', 'WenQuanYi Micro Hei', sans-serif"
)
TASK_FONT = 12.0
LABEL_FONT = 11.0
LINE_HEIGHT = 1.2
MARGIN = 20.0
HEADER = 30.0  # the band of a pool or lane that holds its name
ARROW = 10.0  # length of an arrowhead
INK = "#1d2430"
STROKE = "#22242a"

# English names of the mark kinds, for `legend` (callers translate them).
MARK_NAMES: dict[str, str] = {
    "done": "Completed",
    "taken": "Path taken",
    "current": "Current step",
    "escalated": "Escalated or timer fired",
    "heat-0": "Fewest",
    "heat-1": "Level 1",
    "heat-2": "Level 2",
    "heat-3": "Level 3",
    "heat-4": "Level 4",
    "heat-5": "Most",
}


@dataclass(frozen=True)
class Mark:
    """How one element is highlighted."""

    css: str  # a class of diagram.css: done, taken, current, escalated, heat-0 … heat-5
    badge: str = ""  # small text at the element's top-right, e.g. "12 · 3h"
    title: str = ""  # tooltip, e.g. "completed by technician at 10:02"


# ---------------------------------------------------------------------------------------------
# Text layout: no font metrics on the server, so widths are estimated per character.


def _char_width(ch: str, size: float) -> float:
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return size
    if unicodedata.combining(ch):
        return 0.0
    if ch in " il.,:;'|!()[]":
        return 0.3 * size
    if ch in "mwMW@%":
        return 0.85 * size
    if ch.isupper():
        return 0.68 * size
    return 0.56 * size


def _width(text: str, size: float) -> float:
    return sum(_char_width(ch, size) for ch in text)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


# A line never starts with closing punctuation nor ends with opening punctuation.
_CLOSING = set("，。、；：？！）》」』】〉,.;:?!)]}…")
_OPENING = set("（《「『【〈([{")


def _atoms(text: str) -> list[str]:
    """Breakable units: each wide (CJK) character, each word, and single spaces between."""
    atoms: list[str] = []
    word = ""
    for ch in " ".join(text.split()):
        if ch == " " or _is_wide(ch):
            if word:
                atoms.append(word)
                word = ""
            atoms.append(ch)
        else:
            word += ch
    if word:
        atoms.append(word)
    return atoms


def _greedy(atoms: list[str], width: float, size: float, hang: float) -> list[str]:
    lines: list[list[str]] = [[]]
    used = 0.0
    for atom in atoms:
        w = _width(atom, size)
        line = lines[-1]
        if atom == " ":
            if line:
                line.append(atom)
                used += w
            continue
        if w > width and not _is_wide(atom[0]):
            # A word longer than a line: broken where it must be, on lines of its own.
            rest = atom
            if line:
                lines.append([])
            while _width(rest, size) > width and len(rest) > 1:
                cut = len(rest) - 1
                while cut > 1 and _width(rest[:cut], size) > width:
                    cut -= 1
                lines[-1].append(rest[:cut])
                lines.append([])
                rest = rest[cut:]
            lines[-1].append(rest)
            used = _width(rest, size)
            continue
        if used + w <= width or not line or (atom in _CLOSING and used + w <= width + hang):
            line.append(atom)
            used += w
            continue
        while line and line[-1] == " ":
            line.pop()
        carried: list[str] = []
        if len(line) > 1 and line[-1] in _OPENING:
            carried.append(line.pop())
        lines.append([*carried, atom])
        used = sum(_width(a, size) for a in lines[-1])
    texts = ["".join(line).strip() for line in lines]
    return [t for t in texts if t] or [""]


_PAUSES = set("，。、；：？！,.;:?!")
_BRACKETS = {"《": "》", "「": "」", "『": "』", "（": "）", "【": "】", "〈": "〉"}


def _break_costs(atoms: list[str]) -> list[float | None]:
    """The cost of ending a line before atoms[i]: None where a line must not break."""
    costs: list[float | None] = [0.0] * (len(atoms) + 1)
    depth = 0
    for i, atom in enumerate(atoms):
        if i == 0 or atom in _CLOSING or atoms[i - 1] in _OPENING:
            costs[i] = None
        elif atom == " " or atoms[i - 1] == " " or atoms[i - 1] in _PAUSES:
            costs[i] = 0.0
        elif atoms[i - 1] in _BRACKETS.values() or atom in _BRACKETS:
            costs[i] = 300.0  # at the edge of a bracketed title
        elif depth:
            costs[i] = 5000.0  # inside 《…》: only when nothing else fits
        else:
            costs[i] = 2000.0  # between two characters of a phrase
        if atom in _BRACKETS:
            depth += 1
        elif atom in _BRACKETS.values():
            depth = max(0, depth - 1)
    return costs


def _line_width(atoms: list[str], size: float, hang: float) -> float:
    """The width a line takes, closing punctuation at its end hanging out by up to `hang`."""
    text = "".join(atoms).strip()
    width = _width(text, size)
    if text and text[-1] in _CLOSING:
        width -= min(hang, _char_width(text[-1], size))
    return width


def _best_breaks(
    atoms: list[str], width: float, size: float, count: int, hang: float
) -> list[str] | None:
    """The even layout in `count` lines, preferring breaks after punctuation and at spaces."""
    costs = _break_costs(atoms)
    n = len(atoms)
    best: tuple[float, list[str]] | None = None

    def search(start: int, widths: list[float], lines: list[str], penalty: float) -> None:
        nonlocal best
        last = len(lines) + 1 == count
        for end in range(start + 1, n + 1):
            if end < n and (last or costs[end] is None):
                continue
            w = _line_width(atoms[start:end], size, hang)
            if w > width:
                if _width("".join(atoms[start:end]).strip(), size) > width + size:
                    break
                continue
            text = "".join(atoms[start:end]).strip()
            if not text:
                continue
            if end == n:
                all_widths = [*widths, w]
                widest = max(all_widths)
                score = penalty + sum((widest - x) ** 2 for x in all_widths[:-1])
                score += 0.25 * (widest - all_widths[-1]) ** 2
                if best is None or score < best[0]:
                    best = (score, [*lines, text])
            elif not last:
                search(end, [*widths, w], [*lines, text], penalty + (costs[end] or 0.0))

    search(0, [], [], 0.0)
    return best[1] if best else None


def _wrap(
    text: str, width: float, size: float, max_lines: int = 4, hang: float | None = None
) -> tuple[list[str], bool]:
    """Lines of `text` fitting `width`, even and broken at pauses where that can be; (lines,
    whether the text had to be cut). Closing punctuation may hang `hang` past the width."""
    hang = size if hang is None else hang
    atoms = _atoms(text)
    if not atoms:
        return [], False
    lines = _greedy(atoms, width, size, hang)
    if len(lines) > max_lines:
        kept = lines[:max_lines]
        last = kept[-1]
        while last and _width(last + "…", size) > width:
            last = last[:-1].rstrip()
        kept[-1] = last + "…"
        return kept, True
    # Words longer than a line are broken by the greedy pass; search only the rest.
    if len(lines) > 1 and all(_width(a, size) <= width for a in atoms):
        lines = _best_breaks(atoms, width, size, len(lines), hang) or lines
    return lines, False


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class _Extent:
    """The bounds of everything drawn, for the viewBox."""

    x0: float = math.inf
    y0: float = math.inf
    x1: float = -math.inf
    y1: float = -math.inf

    def add(self, x: float, y: float, w: float = 0.0, h: float = 0.0) -> None:
        self.x0, self.y0 = min(self.x0, x), min(self.y0, y)
        self.x1, self.y1 = max(self.x1, x + w), max(self.y1, y + h)


def _text(
    lines: list[str],
    x: float,
    top: float,
    size: float,
    anchor: str,
    css: str,
    extent: _Extent | None = None,
    transform: str = "",
) -> str:
    """A <text> of lines whose block starts at `top`, anchored at `x` (start, middle or end)."""
    if not lines:
        return ""
    lh = size * LINE_HEIGHT
    tspans = "".join(
        f'<tspan x="{_num(x)}" y="{_num(top + i * lh + lh / 2 + size * 0.35)}">{escape(line)}'
        "</tspan>"
        for i, line in enumerate(lines)
    )
    if extent is not None:
        w = max(_width(line, size) for line in lines)
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        extent.add(left, top, w, lh * len(lines))
    attrs = f' transform="{transform}"' if transform else ""
    return (
        f'<text class="{css}" font-size="{_num(size)}" text-anchor="{anchor}" fill="{INK}"'
        f"{attrs}>{tspans}</text>"
    )


# ---------------------------------------------------------------------------------------------
# Geometry read from the DI, and each element's static drawing.

_TYPES: dict[str, str] = {
    "participant": "pool",
    "lane": "lane",
    "task": "task",
    "userTask": "task user-task",
    "serviceTask": "task service-task",
    "scriptTask": "task script-task",
    "manualTask": "task manual-task",
    "sendTask": "task send-task",
    "receiveTask": "task receive-task",
    "businessRuleTask": "task business-rule-task",
    "callActivity": "task call-activity",
    "subProcess": "task sub-process",
    "startEvent": "event start-event",
    "endEvent": "event end-event",
    "boundaryEvent": "event boundary-event",
    "intermediateCatchEvent": "event intermediate-event",
    "intermediateThrowEvent": "event intermediate-event",
    "exclusiveGateway": "gateway exclusive-gateway",
    "parallelGateway": "gateway parallel-gateway",
    "inclusiveGateway": "gateway inclusive-gateway",
    "eventBasedGateway": "gateway event-based-gateway",
    "complexGateway": "gateway complex-gateway",
    "sequenceFlow": "flow",
    "messageFlow": "flow message-flow",
    "association": "flow association",
    "textAnnotation": "annotation",
}
_EVENT_DEFINITIONS = {
    "timerEventDefinition": "timer",
    "messageEventDefinition": "message",
    "terminateEventDefinition": "terminate",
    "errorEventDefinition": "error",
    "signalEventDefinition": "signal",
    "escalationEventDefinition": "escalation",
    "conditionalEventDefinition": "conditional",
    "compensateEventDefinition": "compensate",
    "linkEventDefinition": "link",
}
# Layers, bottom to top: flows under shapes so arrowheads meet the shapes' borders, labels of
# events and gateways above the flows, boundary events above the tasks they sit on.
_LAYER = {"pool": 0, "lane": 1, "flow": 2, "annotation": 3, "boundary-event": 5}


@dataclass
class _Item:
    id: str
    classes: str
    name: str
    truncated: bool
    body: str  # static drawing: shapes, glyphs, text
    badge_at: tuple[str, float, float]  # a badge's alignment (left, right, middle), x, top
    layer: int
    points: tuple[tuple[float, float], ...] = ()  # flows only
    slash: bool = False  # a default flow
    arrow: bool = True


@dataclass
class _Geometry:
    items: list[_Item] = field(default_factory=list)
    view: _Box = field(default_factory=lambda: _Box(0, 0, 100, 100))
    title: str = ""
    skipped: list[str] = field(default_factory=list)  # DI elements with nothing to draw


def _bounds(node: etree._Element | None) -> _Box | None:
    if node is None:
        return None
    try:
        values = [float(node.get(k, "")) for k in ("x", "y", "width", "height")]
    except ValueError:
        return None
    if not all(math.isfinite(v) and abs(v) < 1e6 for v in values) or min(values[2:]) < 0:
        return None
    return _Box(*values)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _task_glyph(kind: str, x: float, y: float) -> str:
    if kind == "userTask":
        # A person: head and shoulders.
        return (
            f'<g class="glyph" fill="none" stroke="{STROKE}" stroke-width="1.2">'
            f'<circle cx="{_num(x + 13)}" cy="{_num(y + 11)}" r="3.6"/>'
            f'<path d="M{_num(x + 6)} {_num(y + 23)}v-2.5a7 5.5 0 0 1 14 0v2.5z"/></g>'
        )
    if kind == "serviceTask":
        cx, cy = x + 13, y + 14
        teeth = " ".join(
            f"M{_num(cx + 5 * math.cos(a))} {_num(cy + 5 * math.sin(a))}"
            f"L{_num(cx + 8 * math.cos(a))} {_num(cy + 8 * math.sin(a))}"
            for a in (i * math.pi / 4 for i in range(8))
        )
        return (
            f'<g class="glyph" fill="none" stroke="{STROKE}">'
            f'<path d="{teeth}" stroke-width="2.6"/>'
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="5.2" fill="#fff" stroke-width="1.2"/>'
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="2" stroke-width="1.2"/></g>'
        )
    if kind == "scriptTask":
        return (
            f'<g class="glyph" fill="none" stroke="{STROKE}" stroke-width="1.2">'
            f'<rect x="{_num(x + 7)}" y="{_num(y + 6)}" width="12" height="15" rx="1.5"/>'
            f'<path d="M{_num(x + 9.5)} {_num(y + 10.5)}h7m-7 3h7m-7 3h5"/></g>'
        )
    return ""


def _event_glyph(definition: str, cx: float, cy: float, filled: bool) -> str:
    if definition == "timer":
        ticks = " ".join(
            f"M{_num(cx + 8.5 * math.cos(a))} {_num(cy + 8.5 * math.sin(a))}"
            f"L{_num(cx + 10.5 * math.cos(a))} {_num(cy + 10.5 * math.sin(a))}"
            for a in (i * math.pi / 6 for i in range(12))
        )
        return (
            f'<g class="glyph" fill="none" stroke="{STROKE}">'
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="11" fill="#fff" stroke-width="1.5"/>'
            f'<path d="{ticks}" stroke-width="1"/>'
            f'<path d="M{_num(cx)} {_num(cy)}V{_num(cy - 7.5)}M{_num(cx)} {_num(cy)}'
            f'L{_num(cx + 5.5)} {_num(cy + 2)}" stroke-width="1.6" stroke-linecap="round"/></g>'
        )
    if definition == "message":
        fill = STROKE if filled else "#fff"
        line = "#fff" if filled else STROKE
        return (
            f'<g class="glyph{" filled" if filled else ""}" stroke-width="1.2">'
            f'<rect x="{_num(cx - 9)}" y="{_num(cy - 6)}" width="18" height="12" fill="{fill}"'
            f' stroke="{STROKE}"/><path d="M{_num(cx - 9)} {_num(cy - 6)}l9 6.5 9-6.5"'
            f' fill="none" stroke="{line}"/></g>'
        )
    if definition == "terminate":
        return (
            f'<circle class="glyph filled" cx="{_num(cx)}" cy="{_num(cy)}" r="10" fill="{STROKE}"/>'
        )
    return ""


def _shape_label(name: str, shape: _Box, label: _Box | None, extent: _Extent) -> tuple[str, bool]:
    """An event's or gateway's name outside its shape, growing away from the shape."""
    if not name:
        return "", False
    box = label or _Box(shape.cx - 45, shape.bottom + 5, 90, 14)
    lines, cut = _wrap(name, max(box.w, 90.0), LABEL_FONT, 3)
    lh = LABEL_FONT * LINE_HEIGHT
    height = lh * len(lines)
    widest = max(_width(line, LABEL_FONT) for line in lines)
    anchor, x, top = "middle", box.cx, box.y
    if widest > box.w + 2:
        if box.x >= shape.right - 4:
            anchor, x = "start", box.x
        elif box.right <= shape.x + 4:
            anchor, x = "end", box.right
    if box.bottom <= shape.y + 4:
        top = box.bottom - height  # above the shape: grow upwards
    elif box.y < shape.bottom - 4 and anchor != "middle":
        top = box.cy - height / 2  # beside the shape: centred on the label's box
    return _text(lines, x, top, LABEL_FONT, anchor, "label", extent), cut


def _outer_label(
    name: str, shape: _Box, label: _Box | None, extent: _Extent
) -> tuple[str, bool, tuple[str, float, float]]:
    """An event's or gateway's label, and a place for a badge that keeps clear of it."""
    drawn = _Extent()
    text, cut = _shape_label(name, shape, label, drawn)
    if drawn.x0 != math.inf:
        extent.add(drawn.x0, drawn.y0, drawn.x1 - drawn.x0, drawn.y1 - drawn.y0)
    badge_w, badge_h = 30.0, 17.0
    places = [
        ("right", shape.right + 8, shape.y - 11, shape.right + 8 - badge_w),
        ("left", shape.right - 6, shape.bottom - 6, shape.right - 6),
        ("right", shape.x + 6, shape.y - 11 - badge_h / 2, shape.x + 6 - badge_w),
    ]
    for align, x, top, left in places:
        if not (
            drawn.x0 < left + badge_w
            and left < drawn.x1
            and drawn.y0 < top + badge_h
            and top < drawn.y1
        ):
            return text, cut, (align, x, top)
    return text, cut, places[0][:3]


def _flow_label(
    name: str, points: tuple[tuple[float, float], ...], label: _Box | None, extent: _Extent
) -> tuple[str, bool]:
    """A flow's name at its label bounds (or near its middle), growing away from the line."""
    if not name or len(points) < 2:
        return "", False
    lines, cut = _wrap(name, max(label.w if label else 0.0, 120.0), LABEL_FONT, 3)
    lh = LABEL_FONT * LINE_HEIGHT
    height = lh * len(lines)
    widest = max(_width(line, LABEL_FONT) for line in lines)
    if label is None:
        (mx, my), (ax, ay), (bx, by) = _middle(points)
        if abs(by - ay) >= abs(bx - ax):  # vertical: to the right of the line
            return _text(lines, mx + 5, my - height / 2, LABEL_FONT, "start", "label", extent), cut
        return _text(lines, mx, my - 4 - height, LABEL_FONT, "middle", "label", extent), cut
    # The segment nearest the label decides the direction it may grow.
    (ax, ay), (bx, by) = min(
        itertools.pairwise(points),
        key=lambda seg: _distance((label.cx, label.cy), seg[0], seg[1]),
    )
    anchor, x, top = "middle", label.cx, label.y
    if abs(bx - ax) >= abs(by - ay):  # horizontal segment: grow up if above it, else down
        if label.cy < ay and height > label.h + 2:
            top = label.bottom - height
    else:  # vertical segment: grow away from it sideways
        if widest > label.w + 2:
            anchor, x = ("start", label.x) if label.cx > ax else ("end", label.right)
        top = label.cy - height / 2
    return _text(lines, x, top, LABEL_FONT, anchor, "label", extent), cut


def _distance(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _middle(
    points: tuple[tuple[float, float], ...],
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """The point halfway along a polyline, with the segment it lies on."""
    segments = list(itertools.pairwise(points))
    total = sum(math.dist(a, b) for a, b in segments)
    walked = 0.0
    for a, b in segments:
        length = math.dist(a, b)
        if length and walked + length >= total / 2:
            t = (total / 2 - walked) / length
            return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])), a, b
        walked += length
    return points[0], points[0], points[-1]


def _header_text(name: str, box: _Box, horizontal: bool, css: str, band: float) -> tuple[str, bool]:
    """A pool's or lane's name in its header band: rotated -90° when the pool is horizontal."""
    if not name:
        return "", False
    lines, cut = _wrap(name, max((box.h if horizontal else box.w) - 12, 24.0), TASK_FONT, 2)
    height = TASK_FONT * LINE_HEIGHT * len(lines)
    if horizontal:
        cx, cy = box.x + band / 2, box.cy
        rotate = f"rotate(-90 {_num(cx)} {_num(cy)})"
        return _text(lines, cx, cy - height / 2, TASK_FONT, "middle", css, transform=rotate), cut
    return _text(lines, box.cx, box.y + (band - height) / 2, TASK_FONT, "middle", css), cut


def _parse(data: bytes) -> _Geometry:
    tree = parse_xml(data, "diagram")
    root = tree.getroot()
    elements = {
        el.get("id", ""): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")
    }
    geometry = _Geometry()
    plane = root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)
    if plane is None:
        return geometry
    extent = _Extent()
    participants = [p.get("name", "") for p in root.iterfind(".//bpmn:participant", NS)]
    processes = [p.get("name", "") for p in root.iterfind("bpmn:process", NS)]
    geometry.title = next((n for n in participants + processes if n), "BPMN diagram")
    lane_boxes = [
        _bounds(s.find(f"{{{DC}}}Bounds"))
        for s in plane.iterfind("bpmndi:BPMNShape", NS)
        if (el := elements.get(s.get("bpmnElement", ""))) is not None and _local(el) == "lane"
    ]

    drawn: set[str] = set()
    for di in plane:
        if not isinstance(di.tag, str):
            continue
        element = elements.get(di.get("bpmnElement", ""))
        if element is None or di.get("bpmnElement") in drawn:
            geometry.skipped.append(f"{_local(di)} {di.get('bpmnElement', '')}: unknown or twice")
            continue
        drawn.add(di.get("bpmnElement", ""))
        kind = _local(element)
        classes = _TYPES.get(kind)
        if classes is None:
            classes = "other"
            geometry.skipped.append(f"{kind} {element.get('id')}: drawn as a plain box")
        name = element.get("name", "") or ""
        label = _bounds(di.find(f"bpmndi:BPMNLabel/{{{DC}}}Bounds", NS))
        if label is not None:
            extent.add(label.x, label.y, label.w, label.h)
        if _local(di) == "BPMNEdge":
            geometry.items.append(_edge(element, di, classes, name, label, elements, extent))
            continue
        box = _bounds(di.find(f"{{{DC}}}Bounds"))
        if box is None:
            geometry.skipped.append(f"{kind} {element.get('id')}: no bounds")
            continue
        extent.add(box.x, box.y, box.w, box.h)
        horizontal = di.get("isHorizontal", "true") != "false"
        item = _shape(element, kind, classes, name, box, label, horizontal, extent)
        if kind == "participant":
            inner = [b for b in lane_boxes if b and b.x >= box.x and b.right <= box.right + 1]
            band = HEADER
            if inner:
                band = (min(b.x for b in inner) - box.x) if horizontal else HEADER
                band = band if 10 <= band <= box.w / 2 else HEADER
            header, item.truncated = _header_text(name, box, horizontal, "name", band)
            item.body = (
                f'<rect class="shape" x="{_num(box.x)}" y="{_num(box.y)}" width="{_num(box.w)}"'
                f' height="{_num(box.h)}" fill="#fff" stroke="{STROKE}" stroke-width="1.5"/>'
                + (
                    f'<path class="band" d="M{_num(box.x + band)} {_num(box.y)}'
                    f'V{_num(box.bottom)}" stroke="{STROKE}" stroke-width="1.5"/>'
                    if horizontal
                    else f'<path class="band" d="M{_num(box.x)} {_num(box.y + band)}'
                    f'H{_num(box.right)}" stroke="{STROKE}" stroke-width="1.5"/>'
                )
                + header
            )
        geometry.items.append(item)

    geometry.items.sort(key=lambda item: item.layer)  # stable: DI order within a layer
    if extent.x0 == math.inf:
        return geometry
    geometry.view = _Box(
        extent.x0 - MARGIN,
        extent.y0 - MARGIN,
        extent.x1 - extent.x0 + 2 * MARGIN,
        extent.y1 - extent.y0 + 2 * MARGIN,
    )
    return geometry


def _shape(
    element: etree._Element,
    kind: str,
    classes: str,
    name: str,
    box: _Box,
    label: _Box | None,
    horizontal: bool,
    extent: _Extent,
) -> _Item:
    ident = element.get("id", "")
    x, y, w, h = box.x, box.y, box.w, box.h
    layer = 4
    body, cut = "", False
    badge_at = ("right", box.right + 8, box.y - 11)
    rect = f'x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}"'
    if classes == "lane":
        layer = _LAYER["lane"]
        body = f'<rect class="shape" {rect} fill="#fff" stroke="{STROKE}" stroke-width="1.2"/>'
        header, cut = _header_text(name, box, horizontal, "name", HEADER)
        body += header
    elif classes == "pool":
        layer = _LAYER["pool"]  # drawn by the caller, which knows the lanes
    elif classes.startswith("task"):
        glyph = _task_glyph(kind, x, y)
        lines, cut = _wrap(name, w - 12, TASK_FONT, 4, hang=2.0)
        height = TASK_FONT * LINE_HEIGHT * len(lines)
        top = box.cy - height / 2
        widest = max((_width(line, TASK_FONT) for line in lines), default=0.0)
        if glyph and top < y + 24 and box.cx - widest / 2 < x + 24:
            top = min(y + 24, y + h - 4 - height)  # keep clear of the glyph
        body = (
            f'<rect class="shape" {rect} rx="10" fill="#fff" stroke="{STROKE}" stroke-width="2"/>'
            + glyph
            + _text(lines, box.cx, top, TASK_FONT, "middle", "name")
        )
        if kind == "subProcess":
            bx, by = box.cx - 7, box.bottom - 16
            body += (
                f'<path class="glyph" d="M{_num(bx)} {_num(by)}h14v14h-14zM{_num(box.cx)}'
                f' {_num(by + 3)}v8M{_num(box.cx - 4)} {_num(by + 7)}h8" fill="none"'
                f' stroke="{STROKE}"/>'
            )
    elif classes.startswith("event"):
        definitions = [
            _EVENT_DEFINITIONS.get(_local(d), _local(d).removesuffix("EventDefinition"))
            for d in element
            if isinstance(d.tag, str) and _local(d).endswith("EventDefinition")
        ]
        definition = definitions[0] if len(definitions) == 1 else ""
        if definition:
            classes += f" {definition}"
        interrupting = element.get("cancelActivity", "true") != "false"
        if kind == "startEvent":
            interrupting = element.get("isInterrupting", "true") != "false"
        if not interrupting:
            classes += " non-interrupting"
        dash = "" if interrupting else ' stroke-dasharray="5 3"'
        r = min(w, h) / 2
        cx, cy = box.cx, box.cy
        width = {"startEvent": 2.0, "endEvent": 4.0}.get(kind, 1.5)
        body = (
            f'<circle class="shape" cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r)}" fill="#fff"'
            f' stroke="{STROKE}" stroke-width="{_num(width)}"{dash}/>'
        )
        if kind not in ("startEvent", "endEvent"):
            body += (
                f'<circle class="ring" cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r - 3)}"'
                f' fill="none" stroke="{STROKE}" stroke-width="1.2"{dash}/>'
            )
        throwing = kind in ("endEvent", "intermediateThrowEvent")
        body += _event_glyph(definition, cx, cy, throwing)
        text, cut, badge_at = _outer_label(name, box, label, extent)
        body += text
        if kind == "boundaryEvent":
            layer = _LAYER["boundary-event"]
    elif classes.startswith("gateway"):
        cx, cy = box.cx, box.cy
        body = (
            f'<path class="shape" d="M{_num(cx)} {_num(y)}L{_num(x + w)} {_num(cy)}'
            f'L{_num(cx)} {_num(y + h)}L{_num(x)} {_num(cy)}Z" fill="#fff" stroke="{STROKE}"'
            ' stroke-width="2" stroke-linejoin="round"/>'
        )
        s = w * 0.16
        glyph = ""
        if kind == "exclusiveGateway":
            glyph = f"M{_num(cx - s)} {_num(cy - s)}l{_num(2 * s)} {_num(2 * s)}m0 {_num(-2 * s)}"
            glyph += f"l{_num(-2 * s)} {_num(2 * s)}"
        elif kind == "parallelGateway":
            glyph = f"M{_num(cx)} {_num(cy - 1.3 * s)}v{_num(2.6 * s)}M{_num(cx - 1.3 * s)}"
            glyph += f" {_num(cy)}h{_num(2.6 * s)}"
        if glyph:
            body += (
                f'<path class="glyph" d="{glyph}" stroke="{STROKE}" stroke-width="3.5"'
                ' fill="none"/>'
            )
        elif kind in ("inclusiveGateway", "eventBasedGateway"):
            body += (
                f'<circle class="glyph" cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(w * 0.22)}"'
                f' fill="none" stroke="{STROKE}" stroke-width="2.5"/>'
            )
        text, cut, badge_at = _outer_label(name, box, label, extent)
        body += text
    elif classes == "annotation":
        layer = _LAYER["annotation"]
        name = element.findtext("bpmn:text", "", NS) or name
        lines, cut = _wrap(name, w - 10, LABEL_FONT, max(1, int(h // (LABEL_FONT * 1.2))))
        body = (
            f'<rect class="hit" {rect} fill="none" stroke="none"/>'
            f'<path class="shape" d="M{_num(x + 15)} {_num(y)}H{_num(x)}V{_num(y + h)}'
            f'H{_num(x + 15)}" fill="none" stroke="{STROKE}" stroke-width="1.2"/>'
            + _text(lines, x + 6, y + 4, LABEL_FONT, "start", "name")
        )
    else:
        body = (
            f'<rect class="shape" {rect} rx="4" fill="#fff" stroke="{STROKE}"'
            ' stroke-dasharray="4 3"/>'
            + _text(
                _wrap(name, w - 8, LABEL_FONT, 3)[0], box.cx, y + 4, LABEL_FONT, "middle", "name"
            )
        )
    return _Item(ident, classes, name, cut, body, badge_at, layer)


def _edge(
    element: etree._Element,
    di: etree._Element,
    classes: str,
    name: str,
    label: _Box | None,
    elements: Mapping[str, etree._Element],
    extent: _Extent,
) -> _Item:
    ident = element.get("id", "")
    points: list[tuple[float, float]] = []
    for waypoint in di.iterfind(f"{{{DI}}}waypoint"):
        try:
            px, py = float(waypoint.get("x", "")), float(waypoint.get("y", ""))
        except ValueError:
            continue
        if math.isfinite(px) and math.isfinite(py) and max(abs(px), abs(py)) < 1e6:
            points.append((px, py))
    for px, py in points:
        extent.add(px, py)
    source = elements.get(element.get("sourceRef", ""))
    slash = (
        classes == "flow"
        and source is not None
        and bool(ident)
        and source.get("default") == ident
        and _local(source) != "participant"
    )
    if slash:
        classes += " default"
    pts = tuple(points)
    text, cut = _flow_label(name, pts, label, extent)
    if pts:
        (mx, my), _a, _b = _middle(pts)
    else:
        mx = my = 0.0
    return _Item(
        ident,
        classes,
        name,
        cut,
        text,
        ("middle", mx, my - 8.5),
        _LAYER["flow"],
        points=pts,
        slash=slash,
        arrow=classes.split()[1:2] != ["association"],
    )


# ---------------------------------------------------------------------------------------------
# Cache: geometry per diagram, keyed by a hash of its bytes.

_CACHE: OrderedDict[str, _Geometry] = OrderedDict()
_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


def _geometry(data: bytes) -> _Geometry:
    digest = hashlib.sha256(data).hexdigest()
    with _CACHE_LOCK:
        found = _CACHE.get(digest)
        if found is not None:
            _CACHE.move_to_end(digest)
            return found
    geometry = _parse(data)
    with _CACHE_LOCK:
        _CACHE[digest] = geometry
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return geometry


# ---------------------------------------------------------------------------------------------
# Rendering with marks.

_ids = itertools.count(1)
# Marker variants: (name, colour, arrow half-width); colours as in diagram.css, which wins.
_VARIANTS = {
    "": (STROKE, 4.0),
    "taken": ("#1e7b3a", 5.5),
    "current": ("#0b5cad", 5.5),
    "escalated": ("#c0281c", 5.5),
    "heat": ("#b34700", 5.0),
}


def _variant(css: str) -> str:
    tokens = set(css.split())
    for token, variant in (
        ("escalated", "escalated"),
        ("current", "current"),
        ("taken", "taken"),
        ("done", "taken"),
    ):
        if token in tokens:
            return variant
    if any(token.startswith("heat-") for token in tokens):
        return "heat"
    return ""


def _defs(prefix: str) -> str:
    parts = ["<defs>"]
    for variant, (colour, half) in _VARIANTS.items():
        suffix = f"-{variant}" if variant else ""
        css = f' class="{variant}"' if variant else ""
        parts.append(
            f'<marker id="{prefix}-arrow{suffix}"{css} viewBox="0 0 {_num(ARROW)} {_num(2 * half)}"'
            f' refX="1" refY="{_num(half)}" markerWidth="{_num(ARROW)}"'
            f' markerHeight="{_num(2 * half)}" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0 0L{_num(ARROW)} {_num(half)}L0 {_num(2 * half)}Z" fill="{colour}"/>'
            "</marker>"
        )
        parts.append(
            f'<marker id="{prefix}-slash{suffix}"{css} viewBox="0 0 20 20" refX="0" refY="10"'
            ' markerWidth="20" markerHeight="20" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M7 4L13 16" stroke="{colour}" stroke-width="1.8" fill="none"/></marker>'
        )
    parts.append("</defs>")
    return "".join(parts)


def _polyline(item: _Item, prefix: str, variant: str) -> str:
    points = list(item.points)
    if len(points) < 2:
        return ""
    suffix = f"-{variant}" if variant else ""
    attrs = ""
    if item.arrow:
        (ax, ay), (bx, by) = points[-2], points[-1]
        length = math.dist((ax, ay), (bx, by))
        if length > ARROW:
            # End the line at the arrow's base, so a thick line never shows past its tip.
            t = (length - ARROW + 1) / length
            points[-1] = (ax + t * (bx - ax), ay + t * (by - ay))
            attrs += f' marker-end="url(#{prefix}-arrow{suffix})"'
    if item.slash:
        attrs += f' marker-start="url(#{prefix}-slash{suffix})"'
    dash = ""
    if "message-flow" in item.classes:
        dash = ' stroke-dasharray="10 6"'
    elif "association" in item.classes:
        dash = ' stroke-dasharray="2 4"'
    coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    return (
        f'<polyline class="line" points="{coords}" fill="none" stroke="{STROKE}"'
        f' stroke-width="1.5" stroke-linejoin="round"{dash}{attrs}/>'
    )


def _badge(text: str, at: tuple[str, float, float]) -> str:
    size = 10.5
    w = _width(text, size) + 10
    h = 17.0
    align, x, top = at
    left = {"left": x, "right": x - w, "middle": x - w / 2}[align]
    return (
        f'<g class="badge"><rect x="{_num(left)}" y="{_num(top)}" width="{_num(w)}"'
        f' height="{_num(h)}" rx="8.5" fill="#fff" stroke="{STROKE}" stroke-width="1"/>'
        f'<text x="{_num(left + w / 2)}" y="{_num(top + h / 2 + size * 0.35)}"'
        f' font-size="{_num(size)}" font-weight="600" text-anchor="middle" fill="{INK}">'
        f"{escape(text)}</text></g>"
    )


def render(xml: str | bytes, marks: Mapping[str, Mark] | None = None, *, label: str = "") -> Markup:
    """The diagram as an <svg> (role="img", aria-label=label), viewBox fitted to the DI bounds
    with a margin, each BPMN element drawn once with class "el <type>" (task, user-task,
    service-task, script-task, event, start-event, end-event, boundary-event, timer, gateway,
    exclusive-gateway, lane, pool, flow) plus the mark's css class when marked, and
    data-element="<bpmn id>" on its <g> so pages can link a click to the element."""
    data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    geometry = _geometry(data)
    marks = marks or {}
    prefix = f"bpmn{next(_ids)}"
    view = geometry.view
    parts = [
        f'<svg xmlns="{SVG_NS}" class="bpmn-diagram" role="img"'
        f' aria-label="{escape(label or geometry.title)}"'
        f' viewBox="{_num(view.x)} {_num(view.y)} {_num(view.w)} {_num(view.h)}"'
        f' width="{_num(view.w)}" height="{_num(view.h)}"'
        f' font-family="{escape(FONT_FAMILY)}" font-size="{_num(TASK_FONT)}">',
        _defs(prefix),
    ]
    for item in geometry.items:
        mark = marks.get(item.id)
        css = " ".join(mark.css.split()) if mark else ""
        classes = f"el {item.classes} {css}".rstrip()
        parts.append(f'<g class="{escape(classes)}" data-element="{escape(item.id)}">')
        title = (mark.title if mark else "") or (item.name if item.truncated else "")
        if title:
            parts.append(f"<title>{escape(title)}</title>")
        if item.points:
            parts.append(_polyline(item, prefix, _variant(css)))
        parts.append(item.body)
        if mark and mark.badge:
            parts.append(_badge(mark.badge, item.badge_at))
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(kinds: Iterable[str], labels: Mapping[str, str] | None = None) -> Markup:
    """A <ul class="legend"> with a swatch and a name per mark kind (names from `labels`, a
    mapping css → translated name, else English)."""
    labels = labels or {}
    items = []
    for kind in kinds:
        name = labels.get(kind) or MARK_NAMES.get(kind) or kind
        css = escape(" ".join(kind.split()))
        if kind == "taken":
            swatch = (
                f'<g class="el flow {css}"><polyline class="line" points="2,8 20,8" fill="none"'
                f' stroke="{STROKE}" stroke-width="1.5"/><path class="head" d="M19 3L28 8L19 13Z"'
                f' fill="{STROKE}"/></g>'
            )
        else:
            swatch = (
                f'<g class="el task {css}"><rect class="shape" x="2" y="2" width="24" height="12"'
                f' rx="3" fill="#fff" stroke="{STROKE}" stroke-width="1.5"/></g>'
            )
        items.append(
            f'<li><svg xmlns="{SVG_NS}" class="bpmn-diagram swatch" viewBox="0 0 30 16"'
            ' width="30" height="16"'
            f' aria-hidden="true" focusable="false">{swatch}</svg> <span>{escape(name)}</span>'
            "</li>"
        )
    return Markup(f'<ul class="legend">{"".join(items)}</ul>')
