"""The engine's mechanics on a small test procedure: numbering, validation, conflicts, failing
handlers and retry, timers, cancelling, versions, and the history chain."""

from __future__ import annotations

import base64
import gc
import itertools
import json
import logging
import shutil
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task as SpiffTask
from sqlalchemy import delete, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from complaintflow.app import services
from complaintflow.audit import verify
from complaintflow.chain import event_hash
from complaintflow.engine import queries
from complaintflow.engine.history import Draft
from complaintflow.engine.steps import Step, write_instance
from complaintflow.errors import Conflict, InvalidData, StaleInstance
from complaintflow.models import ComplaintRecord, Event, Instance, Notification, Task
from complaintflow.services import Services

from .conftest import FLAKY_FOR, MECHANICS, REPO_ROOT, statements


@pytest.fixture
def mech(make_app: Callable[..., Flask]) -> Services:
    return services(make_app(MECHANICS))


def start(svc: Services, name: str = "王小明", text: str = "電梯停了") -> int:
    return svc.engine.start("mechanics", {"name": name, "text": text}, "desk")


def ready(svc: Services, instance_id: int) -> list[Task]:
    with svc.store.read() as session:
        return queries.ready_tasks_of(session, instance_id)


def actions(svc: Services, instance_id: int) -> list[str]:
    with svc.store.read() as session:
        return [e["action"] for e in queries.history(session, instance_id)]


def instance(svc: Services, instance_id: int) -> Instance:
    with svc.store.read() as session:
        found = session.get(Instance, instance_id)
        assert found is not None
        return found


def test_start_numbers_the_complaint_and_records_it(mech: Services) -> None:
    first, second = start(mech), start(mech, name="李四")
    with mech.store.read() as session:
        records = session.scalars(select(ComplaintRecord).order_by(ComplaintRecord.id)).all()
    year = records[0].received_at.year
    assert [r.number for r in records] == [f"T-{year}-000001", f"T-{year}-000002"]
    assert [r.instance_id for r in records] == [first, second]
    assert records[0].complainant == "王小明" and records[0].description == "電梯停了"
    assert records[0].recorded_by == "desk"
    assert [t.bpmn_id for t in ready(mech, first)] == ["handle"]
    assert actions(mech, first) == [
        "instance.started",
        "service.called",
        "service.called",
        "task.ready",
    ]


def test_invalid_intake_is_refused_and_nothing_is_written(mech: Services) -> None:
    with pytest.raises(InvalidData) as refused:
        mech.engine.start("mechanics", {"name": "", "text": 3, "extra": 1}, "desk")
    assert refused.value.fields == {
        "name": ["This field is required."],
        "text": ["Must be text."],
        "extra": ["This form has no such field."],
    }
    with mech.store.read() as session:
        assert session.scalars(select(Instance)).all() == []
        assert session.scalars(select(ComplaintRecord)).all() == []


def test_invalid_completion_keeps_the_task_ready(mech: Services) -> None:
    instance_id = start(mech)
    task = ready(mech, instance_id)[0]
    before = instance(mech, instance_id).lock_version
    with pytest.raises(InvalidData) as refused:
        mech.engine.complete(task.id, {"solved": "yes", "visited_on": "tomorrow"}, "desk")
    assert refused.value.fields == {
        "solved": ["Must be true or false."],
        "visited_on": ["Must be a date such as 2026-11-27."],
    }
    assert instance(mech, instance_id).lock_version == before
    assert [t.id for t in ready(mech, instance_id)] == [task.id]


def test_what_a_task_sees_is_read_off_the_workflow_kept_here_as_a_copy(
    mech: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = start(mech, text="燈不亮")
    task = ready(mech, instance_id)[0]
    with mech.store.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        restored = mech.engine.codec.loads(row.state, mech.engine.diagram(row.version), None)
    monkeypatch.setattr(mech.engine.codec, "loads", None)  # restoring would fail the test
    with mech.store.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        seen = mech.engine.task_data(row, task.id)
        assert seen == dict(restored.get_task_from_id(UUID(task.id)).data)
        assert seen["text"] == "燈不亮"
        seen["text"] = "changed by the reader"
        assert mech.engine.task_data(row, task.id)["text"] == "燈不亮"
        assert mech.engine.instance_data(row) == dict(restored.last_task.data)
    mech.engine.complete(task.id, {"solved": True}, "desk")  # the kept workflow is intact


def test_a_task_completes_once(mech: Services) -> None:
    instance_id = start(mech)
    task = ready(mech, instance_id)[0]
    mech.engine.complete(task.id, {"solved": True}, "desk")
    with pytest.raises(Conflict, match="already completed by desk"):
        mech.engine.complete(task.id, {"solved": True}, "someone-else")
    assert instance(mech, instance_id).status == "completed"


def test_the_next_step_reuses_the_workflow_saved_here_unless_the_row_moved_on(
    mech: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    restored: list[str] = []
    restore = mech.engine.codec.loads
    monkeypatch.setattr(
        mech.engine.codec,
        "loads",
        lambda text, *rest: restored.append(text) or restore(text, *rest),
    )
    kept, moved = start(mech), start(mech)
    with mech.store.write() as session:  # as another process would: the row's version moves on
        row = session.get(Instance, moved)
        assert row is not None
        write_instance(session, row, row.lock_version, [], {})
    mech.engine.complete(ready(mech, kept)[0].id, {"solved": False}, "desk")
    assert restored == []
    mech.engine.complete(ready(mech, moved)[0].id, {"solved": False}, "desk")
    assert len(restored) == 1
    assert [t.bpmn_id for t in ready(mech, kept)] == [t.bpmn_id for t in ready(mech, moved)]


def test_a_task_the_last_step_here_made_ready_completes_with_no_read(mech: Services) -> None:
    # That step's row is kept with its workflow: completing the task sends only the writes,
    # and the version check on the instance row stands in for the read.
    instance_id = start(mech)
    task = ready(mech, instance_id)[0]
    with pytest.raises(InvalidData):  # a refused form changes nothing, what is kept included
        mech.engine.complete(task.id, {"solved": "perhaps"}, "desk")
    with statements(mech) as sent:
        done = mech.engine.complete(task.id, {"solved": False}, "desk")
    assert reads_among(sent) == []
    assert [t["name"] for t in done["next_tasks"]] == ["主管檢查"]
    assert actions(mech, instance_id).count("task.completed") == 1


def reads_among(sent: list[str]) -> list[str]:
    return [s for s in sent if not s.lstrip().upper().startswith(("UPDATE", "INSERT"))]


def test_taking_a_task_here_keeps_it_completable_with_no_read_by_the_taker_only(
    mech: Services,
) -> None:
    instance_id = start(mech)
    task = ready(mech, instance_id)[0]
    mech.engine.claim(task.id, "desk")
    with pytest.raises(Conflict, match="claimed by desk"):
        mech.engine.complete(task.id, {"solved": False}, "desk2")
    assert actions(mech, instance_id)[-1] == "task.claimed"
    with statements(mech) as sent:
        mech.engine.complete(task.id, {"solved": False}, "desk")
    assert reads_among(sent) == []
    # Given back, it is anyone's again, still with no read.
    task = ready(mech, instance_id)[0]
    mech.engine.claim(task.id, "boss1")
    mech.engine.claim(task.id, "boss1", release=True)
    with statements(mech) as sent:
        mech.engine.complete(task.id, {"verdict": "fixed"}, "boss2")
    assert reads_among(sent) == []
    assert instance(mech, instance_id).status == "completed"
    assert verify(mech.store).intact


def test_a_complaint_moved_on_in_another_process_is_read_again_before_completing(
    mech: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # This process kept each task below as free to take; another one (the same database, its
    # own memory) has claimed or completed it since.
    caplog.set_level(logging.WARNING)
    other = Services.build(mech.settings)
    try:
        claimed, completed = start(mech), start(mech)
        claimed_task, completed_task = ready(mech, claimed)[0], ready(mech, completed)[0]
        other.engine.claim(claimed_task.id, "desk2")
        other.engine.complete(completed_task.id, {"solved": False}, "desk2")
        with pytest.raises(Conflict, match="claimed by desk2"):
            mech.engine.complete(claimed_task.id, {"solved": True}, "desk")
        with pytest.raises(Conflict, match="already completed by desk2"):
            mech.engine.complete(completed_task.id, {"solved": True}, "desk")
        # Nothing of the refused attempts was written.
        assert actions(mech, claimed)[-2:] == ["task.ready", "task.claimed"]
        assert actions(mech, completed).count("task.completed") == 1
        assert instance(mech, completed).status == "running"
        assert verify(mech.store).intact
        # And the claimant completes it here.
        mech.engine.complete(claimed_task.id, {"solved": True}, "desk2")
        assert instance(mech, claimed).status == "completed"
        # The refused batches are the conflicts above, not warnings in the log.
        assert [r.getMessage() for r in caplog.records] == []
    finally:
        other.store.dispose()


def test_no_step_leaves_its_workflow_or_session_to_the_full_garbage_collection(
    mech: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A workflow is a reference cycle (its tasks refer to it), so one that nothing uses any more
    # waits for Python's full collection, which pauses every thread of the process while it
    # runs, unless it is taken apart. Every way a workflow stops being used is here: completed
    # (not kept), outdated by another process's step, pushed out of the cache, restored only to
    # be read. A workflow kept here refers to no session.
    monkeypatch.setattr(mech.engine.workflows, "_size", 2)
    other = Services.build(mech.settings)
    gc.collect()
    sessions_before = {id(o) for o in gc.get_objects() if isinstance(o, Session)}
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        ids = [start(mech) for _ in range(4)]  # the first two are pushed out by the last two
        first = ready(mech, ids[2])[0]
        other.engine.claim(first.id, "desk")  # kept here before: outdated now
        other.engine.task_data(instance(other, ids[2]), first.id)  # kept there
        mech.engine.task_data(instance(mech, ids[2]), first.id)  # restored to be read
        mech.engine.complete(first.id, {"solved": False}, "desk")
        for instance_id in ids:  # each step in the other process than the last
            engines = itertools.cycle([other.engine, mech.engine])
            while tasks := ready(mech, instance_id):
                data = {"solved": False} if tasks[0].bpmn_id == "handle" else {"verdict": "fixed"}
                next(engines).complete(tasks[0].id, data, "desk")
            assert instance(mech, instance_id).status == "completed"
        kept = start(mech)
        mech.engine.complete(ready(mech, kept)[0].id, {"solved": False}, "desk")
        gc.collect()
        kinds = (BpmnWorkflow, SpiffTask, Step, Session)
        assert [sum(isinstance(o, kind) for o in gc.garbage) for kind in kinds] == [0, 0, 0, 0]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        other.store.dispose()
    gc.collect()  # what was saved above (a refused step's exception refers to itself)
    sessions = [o for o in gc.get_objects() if isinstance(o, Session)]
    assert [o for o in sessions if id(o) not in sessions_before] == []


def test_states_are_kept_in_the_format_the_codec_was_written_for(mech: Services) -> None:
    # A state is stored without its spec, so SpiffWorkflow's own migrations, which rewrite the
    # spec along with the tasks, cannot run on it. A SpiffWorkflow with another format needs
    # the stored states migrated (and `_SpeclessConverter` checked) before it runs them.
    saved = instance(mech, start(mech)).serializer_version
    assert saved == mech.engine.codec.VERSION == "1.5", (
        f"SpiffWorkflow now writes state format {mech.engine.codec.VERSION}: migrate the stored"
        " states of running complaints before upgrading"
    )


def test_a_closed_complaints_state_is_stored_compressed_and_read_in_either_packing(
    mech: Services,
) -> None:
    instance_id = start(mech)
    mech.engine.complete(ready(mech, instance_id)[0].id, {"solved": True}, "desk")
    with mech.store.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None and row.status == "completed"
        stored, diagram = row.state, mech.engine.diagram(row.version)
    assert stored.startswith("zlib64:")
    text = zlib.decompress(base64.b64decode(stored.removeprefix("zlib64:"), validate=True))
    assert json.loads(text)["tasks"] and len(stored) < len(text) / 2
    # as states closed before 2026-12-06 were stored
    before = "zlib85:" + base64.b85encode(zlib.compress(text)).decode()
    for packed in (stored, before):
        workflow = mech.engine.codec.loads(packed, diagram, None)
        assert workflow.is_completed()
        assert mech.engine.codec.dumps(workflow) == text.decode()


def test_racing_completions_let_exactly_one_through(mech: Services) -> None:
    instance_id = start(mech)
    task = ready(mech, instance_id)[0]
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            mech.engine.complete(task.id, {"solved": True, "note": f"by {n}"}, f"user{n}")
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert actions(mech, instance_id).count("task.completed") == 1


def test_a_write_based_on_a_stale_read_is_refused(mech: Services) -> None:
    instance_id = start(mech)
    with mech.store.write() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        read_before_last_save = row.lock_version - 1
        with pytest.raises(Conflict, match="changed by someone else"):
            write_instance(session, row, read_before_last_save, [], {})


@pytest.mark.parametrize(("read_behind", "refusal"), [(1, StaleInstance), (0, IntegrityError)])
def test_a_write_whose_events_clash_is_taken_for_a_race_only_when_its_version_was_stale(
    mech: Services, read_behind: int, refusal: type[Exception]
) -> None:
    # A writer that read before the last save numbers its events as the winner did: the
    # database refuses them in the same batch as the instance's UPDATE, and the caller hears
    # the version check's answer (try again). When the version check passed, the refusal is a
    # fault to see, not a race to retry.
    instance_id = start(mech)
    with pytest.raises(refusal), mech.store.write() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        set_committed_value(row, "head_seq", row.head_seq - 1)
        write_instance(
            session,
            row,
            row.lock_version - read_behind,
            [Draft(row.updated_at, "desk", "task.claimed", "contact", "聯絡")],
            {},
        )


def test_a_failing_handler_keeps_the_work_and_retry_resumes(mech: Services) -> None:
    FLAKY_FOR.add("斷線")
    try:
        instance_id = start(mech, name="斷線")
        failed = instance(mech, instance_id)
        assert failed.status == "error"
        assert "outside system did not answer" in (failed.error or "")
        assert actions(mech, instance_id)[-2:] == ["service.failed", "instance.errored"]
        assert ready(mech, instance_id) == []
    finally:
        FLAKY_FOR.discard("斷線")
    mech.engine.retry(instance_id, "admin", "the outside system is back")
    resumed = instance(mech, instance_id)
    assert resumed.status == "running" and resumed.error is None
    assert [t.bpmn_id for t in ready(mech, instance_id)] == ["handle"]
    assert actions(mech, instance_id)[-3:] == ["instance.retried", "service.called", "task.ready"]


def test_a_script_that_runs_away_fails_its_step_instead_of_the_process(
    mech: Services, tmp_path: Path
) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(MECHANICS, changed)
    bpmn = changed / "mechanics.bpmn"
    # What the form brings in (the note's words) sizes what the script makes.
    runaway = 'words = len(get("note", "").split())\nruler = "=" * (words * 10 ** 9)'
    bpmn.write_text(bpmn.read_text().replace('words = len(get("note", "").split())', runaway))
    mech.engine.deploy(bpmn, "owner")
    mech.engine.review("mechanics", 2, "reviewer", True, "reads well")
    mech.engine.approve("mechanics", 2, "approver", True, "in effect now")
    instance_id = start(mech)
    mech.engine.complete(ready(mech, instance_id)[0].id, {"solved": True, "note": "a b"}, "desk")
    failed = instance(mech, instance_id)
    assert failed.status == "error"
    assert "would make a value longer than 1000000 items" in (failed.error or "")
    assert actions(mech, instance_id)[-2:] == ["task.failed", "instance.errored"]


def test_gateway_takes_the_condition_or_the_default(mech: Services) -> None:
    solved, unsolved = start(mech), start(mech)
    mech.engine.complete(ready(mech, solved)[0].id, {"solved": True, "note": "a b c"}, "desk")
    mech.engine.complete(ready(mech, unsolved)[0].id, {"solved": False}, "desk")
    assert instance(mech, solved).status == "completed"
    assert [t.bpmn_id for t in ready(mech, unsolved)] == ["check"]
    with mech.store.read() as session:
        passed = [e for e in queries.history(session, solved) if e["action"] == "gateway.passed"]
        assert passed[0]["data"] == {"to": ["tally"]}
        assert mech.engine.instance_data(session.get(Instance, solved))["words"] == 3


def test_a_due_timer_fires_and_escalates(make_app: Callable[..., Flask]) -> None:
    svc = services(make_app(MECHANICS, sla_overrides={"mechanics": {"handle": "PT1S"}}))
    instance_id = start(svc)
    assert svc.engine.fire_due_timers() == 0
    task = ready(svc, instance_id)[0]
    assert task.due_at is not None
    time.sleep(1.1)
    assert svc.engine.fire_due_timers() == 1
    assert actions(svc, instance_id)[-4:] == [
        "timer.fired",
        "service.called",
        "escalated",
        "end.reached",
    ]
    with svc.store.read() as session:
        note = session.scalars(select(Notification).where(Notification.role == "boss")).one()
        assert note.event == "deadline.missed" and note.urgent
        record = session.scalars(select(ComplaintRecord)).one()
        assert record.escalations == 1
    assert [t.id for t in ready(svc, instance_id)] == [task.id]  # the work goes on
    assert instance(svc, instance_id).next_timer_at is None


def test_a_task_waiting_through_a_timers_step_here_completes_with_no_read(
    make_app: Callable[..., Flask],
) -> None:
    svc = services(make_app(MECHANICS, sla_overrides={"mechanics": {"handle": "PT1S"}}))
    instance_id = start(svc)
    task = ready(svc, instance_id)[0]
    time.sleep(1.1)
    assert svc.engine.fire_due_timers() == 1  # escalates; the task waits on
    with statements(svc) as sent:
        svc.engine.complete(task.id, {"solved": False}, "desk")
    assert reads_among(sent) == []
    assert [t.bpmn_id for t in ready(svc, instance_id)] == ["check"]


def test_cancel_closes_the_open_tasks(mech: Services) -> None:
    instance_id = start(mech)
    task = ready(mech, instance_id)[0]
    mech.engine.cancel(instance_id, "admin", "filed twice")
    assert instance(mech, instance_id).status == "cancelled"
    with mech.store.read() as session:
        assert session.get(Task, task.id).state == "cancelled"  # type: ignore[union-attr]
        history = queries.history(session, instance_id)
    assert history[-2]["action"] == "instance.cancelled"
    assert history[-2]["data"] == {"reason": "filed twice"}
    with pytest.raises(Conflict):
        mech.engine.complete(task.id, {"solved": True}, "desk")


def test_running_instances_keep_their_version(mech: Services, tmp_path: Path) -> None:
    old = start(mech)
    changed = tmp_path / "changed"
    shutil.copytree(MECHANICS, changed)
    bpmn = changed / "mechanics.bpmn"
    bpmn.write_text(bpmn.read_text().replace('name="處理"', 'name="立即處理"'))
    deployed = mech.engine.deploy(bpmn, "owner")
    assert (deployed.version, deployed.created, deployed.status) == (2, True, "draft")
    assert mech.engine.deploy(bpmn, "owner").created is False
    mech.engine.review("mechanics", 2, "reviewer", True, "reads well")
    mech.engine.approve("mechanics", 2, "approver", True, "in effect now")
    new = start(mech)
    assert [t.name for t in ready(mech, old)] == ["處理"]
    assert [t.name for t in ready(mech, new)] == ["立即處理"]
    mech.engine.complete(ready(mech, old)[0].id, {"solved": True}, "desk")
    assert instance(mech, old).status == "completed"
    assert instance(mech, old).version.version == 1


def test_history_is_a_hash_chain(mech: Services) -> None:
    instance_id = start(mech)
    mech.engine.complete(ready(mech, instance_id)[0].id, {"solved": False}, "desk")
    with mech.store.read() as session:
        events = session.scalars(
            select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
        ).all()
        head = session.get(Instance, instance_id).head_hash  # type: ignore[union-attr]
    previous = ""
    for event in events:
        assert event.prev_hash == previous
        assert event.hash == event_hash(
            previous,
            instance_id,
            event.seq,
            event.at,
            event.actor,
            event.action,
            event.bpmn_id,
            event.name,
            event.data,
        )
        previous = event.hash
    assert head == previous


def test_the_database_refuses_to_rewrite_history_or_drop_records(mech: Services) -> None:
    start(mech)
    statements: list[Any] = [
        update(Event).values(actor="someone else"),
        delete(Event),
        delete(ComplaintRecord),
    ]
    for statement in statements:
        with (
            pytest.raises(Exception, match="history and records are kept"),
            mech.store.write() as session,
        ):
            session.execute(statement)
    with mech.store.read() as session:
        assert session.execute(text("select count(*) from events")).scalar_one() == 4


def test_a_completion_answers_with_every_task_now_waiting(mech: Services, tmp_path: Path) -> None:
    # Two branches in parallel: after the split both tasks are new, the step knows them and
    # answers without reading them back; after one branch the other was waiting before the
    # step, so the answer is read. Either way it is what the inbox holds.
    parallel = tmp_path / "parallel"
    shutil.copytree(REPO_ROOT / "bench" / "standard", parallel)
    bpmn = parallel / "standard.bpmn"
    xml = bpmn.read_text()
    for old, new in [
        ('<bpmn:exclusiveGateway id="choose" default="f5">', '<bpmn:parallelGateway id="choose">'),
        ("</bpmn:exclusiveGateway>", "</bpmn:parallelGateway>"),
        (
            '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">branch == "left"'
            "</bpmn:conditionExpression>",
            "",
        ),
    ]:
        assert old in xml
        xml = xml.replace(old, new)
    bpmn.write_text(xml)
    deployed = mech.engine.deploy(bpmn, "owner")
    mech.engine.put_in_effect(deployed.key, deployed.version, "a test of parallel tasks")
    instance_id = mech.engine.start("standard", {}, "bench_worker")
    reads: list[str] = []

    @sa_event.listens_for(mech.store.engine, "before_cursor_execute")
    def _reads(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "tasks.instance_id =" in statement:
            reads.append(statement)

    def complete(bpmn_id: str) -> tuple[list[str], int]:
        (task,) = [t for t in ready(mech, instance_id) if t.bpmn_id == bpmn_id]
        reads.clear()
        answer = mech.engine.complete(task.id, {"branch": "left"}, "bench_worker")
        read_back = len(reads)
        inbox = [queries.task_summary(t) for t in ready(mech, instance_id)]
        assert sorted(answer["next_tasks"], key=str) == sorted(inbox, key=str)
        return [t["bpmn_id"] for t in answer["next_tasks"]], read_back

    assert complete("first") == (["second"], 0)
    assert sorted(complete("second")[0]) == ["left", "right"]
    assert complete("left") == (["right"], 1)
    assert complete("right") == ([], 0)
