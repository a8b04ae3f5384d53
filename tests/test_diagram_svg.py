"""The server-side SVG of a diagram: every element drawn once from its DI, marks on the right
element only, text escaped; and each bundled diagram rendered by Chromium to
tests/artifacts/diagram-<key>.png for a look."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree
from markupsafe import Markup
from playwright.sync_api import Browser

from complaintflow.diagrams import NS
from complaintflow.errors import InvalidDiagram
from complaintflow.web import diagram_svg
from complaintflow.web.diagram_svg import Mark, legend, render

from .conftest import BUNDLED

KEYS = ["facility", "bar", "hotel"]
SVG = "http://www.w3.org/2000/svg"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
X = {"s": SVG}
CSS = Path(diagram_svg.__file__).parent.parent / "static" / "diagram.css"
ARTIFACTS = Path(__file__).parent / "artifacts"
FLOW_NODES = {
    "startEvent",
    "endEvent",
    "boundaryEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "task",
    "userTask",
    "serviceTask",
    "scriptTask",
    "manualTask",
    "sendTask",
    "receiveTask",
    "businessRuleTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
}


def _xml(key: str) -> bytes:
    return (BUNDLED / f"{key}.bpmn").read_bytes()


def _bpmn(key: str) -> etree._Element:
    return etree.fromstring(_xml(key))


def _svg(markup: Markup) -> etree._Element:
    return etree.fromstring(str(markup).encode("utf-8"))


def _groups(svg: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for g in svg.iterfind(".//s:g[@data-element]", X):
        assert g.get("data-element") not in found, f"{g.get('data-element')} drawn twice"
        found[g.get("data-element", "")] = g
    return found


def _classes(g: etree._Element) -> set[str]:
    return set(g.get("class", "").split())


def _text(g: etree._Element, css: str = "") -> str:
    """The text an element shows (its lines joined), or of its text of class `css`."""
    texts = [t for t in g.iterfind("s:text", X) if not css or css in (t.get("class") or "").split()]
    return "".join("".join(t.itertext()) for t in texts)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _expected_ids(root: etree._Element) -> set[str]:
    ids = {
        el.get("id", "")
        for el in root.iterfind(".//bpmn:process//*", NS)
        if _local(el) in FLOW_NODES | {"lane", "sequenceFlow"}
    }
    ids |= {p.get("id", "") for p in root.iterfind(".//bpmn:participant", NS)}
    return ids


def _marker_id(reference: str | None) -> str:
    match = re.fullmatch(r"url\(#([\w-]+)\)", reference or "")
    assert match, reference
    return match.group(1)


@pytest.mark.parametrize("key", KEYS)
def test_each_element_is_drawn_once_with_its_type(key: str) -> None:
    root = _bpmn(key)
    svg = _svg(render(_xml(key), label=f"The {key} procedure"))
    assert svg.tag == f"{{{SVG}}}svg"
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == f"The {key} procedure"
    groups = _groups(svg)
    assert set(groups) == _expected_ids(root)
    kinds = {
        "userTask": {"task", "user-task"},
        "serviceTask": {"task", "service-task"},
        "startEvent": {"event", "start-event"},
        "endEvent": {"event", "end-event"},
        "boundaryEvent": {"event", "boundary-event", "timer"},
        "exclusiveGateway": {"gateway", "exclusive-gateway"},
        "lane": {"lane"},
        "sequenceFlow": {"flow"},
        "participant": {"pool"},
    }
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") in groups:
            css = _classes(groups[element.get("id", "")])
            assert {"el", *kinds[_local(element)]} <= css, (element.get("id"), css)
    # Nothing that runs or loads: no scripts, no foreign HTML, no outside references.
    assert not svg.xpath("//*[local-name()='script' or local-name()='foreignObject']")
    assert "http" not in str(render(_xml(key))).replace(SVG, "")


@pytest.mark.parametrize("key", KEYS)
def test_view_box_covers_every_di_bound(key: str) -> None:
    root = _bpmn(key)
    x, y, w, h = (float(v) for v in _svg(render(_xml(key))).get("viewBox", "").split())
    points = [
        (
            float(b.get("x", "")),
            float(b.get("y", "")),
            float(b.get("width", "")),
            float(b.get("height", "")),
        )
        for b in root.iter(f"{{{DC}}}Bounds")
    ]
    points += [
        (float(p.get("x", "")), float(p.get("y", "")), 0.0, 0.0)
        for p in root.iter(f"{{{DI}}}waypoint")
    ]
    assert points
    for px, py, pw, ph in points:
        assert x < px and px + pw < x + w and y < py and py + ph < y + h


def test_task_names_appear_wrapped_inside_their_task() -> None:
    groups = _groups(_svg(render(_xml("facility"))))
    assert _text(groups["notify_technician"]) == "立即通知機電人員"
    record = groups["create_record"]
    assert _text(record) == "在《用戶投訴記錄》上做好詳細記錄"
    assert len(record.findall(".//s:tspan", X)) == 2
    assert _text(groups["gw_assessment"], "label") == "問題能否由機電人員解決？"
    assert _text(groups["flow_solvable"], "label") == "能解決"
    lane = groups["engineering_supervisor"]
    assert _text(lane) == "機電部或工程部主管"
    assert "rotate(-90" in lane.find("s:text", X).get("transform", "")
    assert _text(groups["participant_facility"]) == "小區機電設施投訴處理程序"
    # Boundary timers: a clock inside a (dashed, non-interrupting) double circle.
    timer = groups["timer_technician_contact"]
    assert {"timer", "non-interrupting"} <= _classes(timer)
    assert len(timer.findall(".//s:circle", X)) == 3


def test_marks_apply_to_their_element_only() -> None:
    marks = {
        "create_record": Mark("done", badge="12 · 3h", title="completed at 10:02"),
        "contact_complainant": Mark("current"),
        "timer_technician_contact": Mark("escalated"),
        "take_measures": Mark("heat-3"),
        "flow_received": Mark("taken"),
        "no_such_element": Mark("done"),
    }
    groups = _groups(_svg(render(_xml("facility"), marks)))
    mark_classes = {"done", "current", "escalated", "taken", "heat-3"}
    for ident, g in groups.items():
        expected = {marks[ident].css} if ident in marks else set()
        assert _classes(g) & mark_classes == expected, ident
    record = groups["create_record"]
    assert record.findtext("s:title", namespaces=X) == "completed at 10:02"
    assert _text(record.find("s:g[@class='badge']", X)) == "12 · 3h"
    assert groups["notify_technician"].find("s:title", X) is None
    assert groups["notify_technician"].find("s:g[@class='badge']", X) is None


@pytest.mark.parametrize("key", KEYS)
def test_default_flows_start_with_a_slash(key: str) -> None:
    root = _bpmn(key)
    defaults = {g.get("default") for g in root.iter() if g.get("default")}
    assert defaults
    svg = _svg(render(_xml(key)))
    markers = {m.get("id") for m in svg.iterfind(".//s:defs/s:marker", X)}
    for ident, g in _groups(svg).items():
        if "flow" not in _classes(g):
            continue
        line = g.find("s:polyline", X)
        assert line is not None
        assert _marker_id(line.get("marker-end")) in markers
        start = line.get("marker-start")
        if ident in defaults:
            assert "default" in _classes(g)
            assert _marker_id(start).endswith("-slash") and _marker_id(start) in markers
        else:
            assert start is None, ident


def test_taken_flows_use_the_taken_arrow() -> None:
    marks = {"flow_received": Mark("taken"), "flow_unsolvable": Mark("taken")}
    svg = _svg(render(_xml("facility"), marks))
    groups = _groups(svg)
    markers = {m.get("id"): m for m in svg.iterfind(".//s:defs/s:marker", X)}
    taken = _marker_id(groups["flow_received"].find("s:polyline", X).get("marker-end"))
    plain = _marker_id(groups["flow_recorded"].find("s:polyline", X).get("marker-end"))
    assert taken.endswith("-arrow-taken") and plain.endswith("-arrow") and taken != plain
    assert markers[taken].get("class") == "taken"
    # A taken default flow: the slash goes green with it.
    line = groups["flow_unsolvable"].find("s:polyline", X)
    assert _marker_id(line.get("marker-start")).endswith("-slash-taken")
    # The arrow's tip lands on the flow's last waypoint: the line stops at the arrow's base.
    marker = markers[taken]
    coords = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
    assert coords[0] == (966.0, 615.0) and coords[-1][0] < 1086
    assert 1086 - coords[-1][0] + float(marker.get("refX", "")) == pytest.approx(
        float(marker.get("markerWidth", ""))
    )


def test_two_diagrams_on_one_page_do_not_share_marker_ids() -> None:
    first, second = _svg(render(_xml("bar"))), _svg(render(_xml("bar")))
    ids = [m.get("id") for svg in (first, second) for m in svg.iterfind(".//s:marker", X)]
    assert len(ids) == len(set(ids))


def test_hostile_text_comes_out_escaped() -> None:
    xml = _xml("facility").decode("utf-8")
    xml = xml.replace(
        'name="立即通知機電人員"', 'name="&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"'
    )
    xml = xml.replace('name="能解決"', 'name="a &amp; b &lt;b&gt;"')
    xml = xml.replace('name="機電人員"', 'name="&quot;lane&quot; &lt;img src=x&gt;"')
    marks = {
        "notify_technician": Mark(
            'current" onclick="x', badge="<b>1</b>", title="</title><script>"
        ),
    }
    out = str(render(xml, marks, label='"><script>alert(1)</script>'))
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;script&gt;" in out and "&amp; co" in out and "a &amp; b &lt;b&gt;" in out
    svg = _svg(Markup(out))
    assert svg.get("aria-label") == '"><script>alert(1)</script>'
    groups = _groups(svg)
    task = groups["notify_technician"]
    assert _text(task) == "<script>alert(1)</script> & co"
    assert task.findtext("s:title", namespaces=X) == "</title><script>"
    assert _text(task.find("s:g[@class='badge']", X)) == "<b>1</b>"
    assert 'current"' in task.get("class", "")  # an odd class stays one attribute
    assert task.get("onclick") is None
    assert _text(groups["flow_solvable"], "label") == "a & b <b>"
    assert _text(groups["technician"]) == '"lane" <img src=x>'


def test_long_names_are_cut_with_an_ellipsis_and_kept_in_the_tooltip() -> None:
    name = "立即" * 40
    xml = _xml("facility").decode("utf-8").replace('name="立即通知機電人員"', f'name="{name}"')
    task = _groups(_svg(render(xml)))["notify_technician"]
    lines = ["".join(t.itertext()) for t in task.iterfind(".//s:tspan", X)]
    assert len(lines) == 4 and lines[-1].endswith("…")
    assert task.findtext("s:title", namespaces=X) == name


def test_english_names_wrap_at_spaces() -> None:
    name = "Tell the supervisor when the technician is late"
    xml = _xml("facility").decode("utf-8").replace('name="立即通知機電人員"', f'name="{name}"')
    task = _groups(_svg(render(xml)))["notify_technician"]
    lines = ["".join(t.itertext()) for t in task.iterfind(".//s:tspan", X)]
    assert " ".join(lines) == name and len(lines) > 1


def test_geometry_is_parsed_once_per_diagram() -> None:
    data = _xml("bar")
    assert diagram_svg._geometry(data) is diagram_svg._geometry(bytes(data))
    assert render(data.decode("utf-8")).count("data-element=") == render(data).count(
        "data-element="
    )


@pytest.mark.parametrize("key", KEYS)
def test_bundled_diagrams_use_nothing_the_renderer_cannot_draw(key: str) -> None:
    assert diagram_svg._geometry(_xml(key)).skipped == []


def test_a_diagram_without_di_gives_an_empty_picture_and_bad_xml_is_refused() -> None:
    root = _bpmn("bar")
    for diagram in root.findall("bpmndi:BPMNDiagram", NS):
        root.remove(diagram)
    svg = _svg(render(etree.tostring(root)))
    assert _groups(svg) == {} and svg.get("viewBox")
    with pytest.raises(InvalidDiagram):
        render(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')


def test_an_element_shown_twice_in_the_di_is_drawn_once() -> None:
    xml = _xml("bar").decode("utf-8")
    shape = re.search(r"<bpmndi:BPMNShape id=\"listen_di\".*?</bpmndi:BPMNShape>", xml, re.S)
    assert shape
    xml = xml.replace(shape.group(0), shape.group(0) + shape.group(0).replace("listen_di", "x_di"))
    groups = _groups(_svg(render(xml)))  # asserts each id once
    assert "listen" in groups


def test_legend_lists_each_kind_with_a_swatch() -> None:
    out = legend(["done", "taken", "current", "heat-5"], {"done": "已完成 <ok>"})
    root = etree.fromstring(str(out).replace("&nbsp;", " ").encode("utf-8"))
    assert root.tag == "ul" and root.get("class") == "legend"
    items = root.findall("li")
    assert ["".join(li.find("span").itertext()) for li in items] == [
        "已完成 <ok>",
        "Path taken",
        "Current step",
        "Most",
    ]
    swatches = [li.find(f"{{{SVG}}}svg") for li in items]
    assert all(s is not None and s.get("aria-hidden") == "true" for s in swatches)
    assert {"el", "flow", "taken"} <= _classes(swatches[1].find(f"{{{SVG}}}g"))
    assert {"el", "task", "heat-5"} <= _classes(swatches[3].find(f"{{{SVG}}}g"))


def test_stylesheet_defines_every_mark() -> None:
    css = CSS.read_text(encoding="utf-8")
    for kind in ["done", "taken", "current", "escalated", *(f"heat-{i}" for i in range(6))]:
        assert f".{kind}" in css, kind
    assert "marker.taken" in css and "@media print" in css and "!important" not in css


# ---------------------------------------------------------------------------------------------
# A look with Chromium: tests/artifacts/diagram-<key>.png.


def _walk_marks(root: etree._Element) -> dict[str, Mark]:
    """A plausible run: from the start along first outgoing flows to the first user task
    (current), everything before it done and its flows taken; the first timer fired."""
    process = root.find("bpmn:process", NS)
    assert process is not None
    by_id = {el.get("id"): el for el in process.iter() if isinstance(el.tag, str)}
    marks: dict[str, Mark] = {}
    node = process.find("bpmn:startEvent", NS)
    steps = 0
    while node is not None and steps < 20:
        steps += 1
        if _local(node) == "userTask":
            marks[node.get("id", "")] = Mark("current", badge="2h", title="waiting since 10:02")
            break
        marks[node.get("id", "")] = Mark("done", title="completed")
        flow = by_id.get(node.findtext("bpmn:outgoing", "", NS))
        if flow is None:
            break
        marks[flow.get("id", "")] = Mark("taken")
        node = by_id.get(flow.get("targetRef"))
    timer = process.find("bpmn:boundaryEvent", NS)
    if timer is not None:
        marks[timer.get("id", "")] = Mark("escalated", title="timer fired")
        marks[timer.findtext("bpmn:outgoing", "", NS)] = Mark("escalated")
    gateways = process.findall("bpmn:exclusiveGateway", NS)
    for level, gateway in enumerate(gateways[-3:], start=3):
        marks.setdefault(gateway.get("id", ""), Mark(f"heat-{level}", badge=str(level * 4)))
    return marks


@pytest.mark.parametrize("key", KEYS)
def test_renders_to_png_with_text_inside_the_shapes(browser: Browser, key: str) -> None:
    root = _bpmn(key)
    marks = _walk_marks(root)
    assert {m.css for m in marks.values()} >= {"done", "taken", "current", "escalated"}
    svg = render(_xml(key), marks, label=key)
    kinds = ["done", "taken", "current", "escalated", "heat-3", "heat-4", "heat-5"]
    page_html = (
        '<!doctype html><html lang="zh-Hant"><meta charset="utf-8">'
        f"<style>body{{margin:8px;background:#fff;font-family:sans-serif}}{CSS.read_text(encoding='utf-8')}</style>"
        f"{legend(kinds)}{svg}</html>"
    )
    _x, _y, width, height = (float(v) for v in _svg(svg).get("viewBox", "").split())
    page = browser.new_page(viewport={"width": int(width) + 16, "height": int(height) + 80})
    try:
        page.set_content(page_html)
        # Real font metrics: every task's lines fit inside its box, every lane's name inside
        # its lane, and arrowheads were drawn (their markers resolve).
        overflowing = page.evaluate(
            """() => [...document.querySelectorAll('svg.bpmn-diagram g.el')]
                .filter(g => g.matches('.task, .lane, .pool'))
                .filter(g => {
                    const box = g.querySelector('.shape').getBBox();
                    const text = g.querySelector(':scope > text');
                    if (!text) return false;
                    const r = text.getBoundingClientRect();
                    const s = g.querySelector('.shape').getBoundingClientRect();
                    return r.left < s.left + 2 || r.right > s.right - 2
                        || r.top < s.top + 2 || r.bottom > s.bottom - 2 || !box.width;
                })
                .map(g => g.dataset.element)"""
        )
        assert overflowing == []
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"diagram-{key}.html").write_text(page_html, encoding="utf-8")
        target = ARTIFACTS / f"diagram-{key}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000
    finally:
        page.close()
