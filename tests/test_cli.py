"""The `complaintflow` command as an operator runs it: in its own process, with settings from
the environment. Mistakes give one readable line and exit status 1, never a traceback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import column, select, table, update

from complaintflow.errors import Unauthorized
from complaintflow.models import AuditEntry
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import BUNDLED, _settings
from .test_versions import with_photo_step

ALEMBIC_VERSION = table("alembic_version", column("version_num"))

ROLES = {
    "clerk",
    "technician",
    "engineering_supervisor",
    "office_director",
    "bar_staff",
    "bar_manager",
    "lobby_manager",
    "department_supervisor",
    "department_manager",
    "general_manager",
    "duty_manager",
    "admin",
    "auditor",
    "process_owner",
}


@pytest.fixture
def database(database_url: Callable[[Path], Iterator[str]]) -> Iterator[str]:
    urls = database_url(BUNDLED)
    yield next(urls)
    next(urls, None)


@pytest.fixture
def cli(database: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {
        **os.environ,
        "COMPLAINTFLOW_HOME": str(tmp_path / "home"),
        "COMPLAINTFLOW_DATABASE_URL": database,
    }

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "complaintflow", *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def staff(database: str, tmp_path: Path) -> Iterator[Services]:
    """The engine on the command's database, for complaints the staff work on meanwhile."""
    svc = Services.build(_settings(tmp_path / "staff-home", database, BUNDLED))
    yield svc
    svc.store.dispose()


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command prints."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_init_is_safe_to_run_again(cli) -> None:
    result = cli("init")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "bar: unchanged at version 1",
        "facility: unchanged at version 1",
        "hotel: unchanged at version 1",
    ]


def test_roles_lists_one_role_per_line_key_first(cli) -> None:
    lines = cli("roles").stdout.splitlines()
    keys = [line.split("\t")[0] for line in lines]
    assert set(keys) == ROLES and len(keys) == len(ROLES)
    technician = next(line for line in lines if line.startswith("technician\t"))
    assert "機電人員" in technician and "M&E technician" in technician


def test_users_are_created_with_their_roles(cli) -> None:
    created = cli(
        "users",
        "create",
        "ah_wing",
        "--password",
        "s3cret-pass",
        "--role",
        "technician",
        "--role",
        "clerk",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created ah_wing with roles clerk, technician"
    again = cli("users", "create", "ah_wing", "--password", "s3cret-pass", "--role", "clerk")
    assert refused(again) == "error: username: There is a user called ah_wing already."


def test_mistakes_in_users_create_are_one_line(cli) -> None:
    unknown = cli("users", "create", "x", "--password", "long-enough", "--role", "janitor")
    assert refused(unknown) == (
        "error: roles: There is no role janitor; `complaintflow roles` lists them."
    )
    short = cli("users", "create", "x", "--password", "short", "--role", "clerk")
    assert refused(short) == "error: password: At least 8 characters."
    spaced = cli("users", "create", "ah wing", "--password", "long-enough", "--role", "clerk")
    assert refused(spaced) == "error: username: 1 to 100 characters, without spaces."


def test_a_user_changes_roles_leaves_and_comes_back(cli, staff: Services) -> None:
    ok(cli("users", "create", "ah_wing", "--password", "s3cret-pass", "--role", "clerk"))
    moved = cli("users", "roles", "ah_wing", "--grant", "technician", "--revoke", "clerk")
    assert ok(moved) == ["ah_wing: roles technician"]
    assert "left with no role" in refused(
        cli("users", "roles", "ah_wing", "--revoke", "technician")
    )
    assert "no role janitor" in refused(cli("users", "roles", "ah_wing", "--grant", "janitor"))
    token = staff.accounts.issue_token(staff.accounts.authenticate("ah_wing", "s3cret-pass"))
    complaint = Complaint(staff, "facility")
    task = complaint.ready()["contact_complainant"]
    staff.engine.claim(task.id, "ah_wing")
    # A role taken away takes its tasks with it: colleagues may do them.
    ok(cli("users", "roles", "ah_wing", "--grant", "clerk"))
    switched = ok(cli("users", "roles", "ah_wing", "--revoke", "technician"))
    assert switched == [
        "ah_wing: roles clerk",
        "1 task(s) of roles they no longer hold are waiting again",
    ]
    assert complaint.ready()["contact_complainant"].assignee is None
    ok(cli("users", "roles", "ah_wing", "--grant", "technician", "--revoke", "clerk"))
    staff.engine.claim(task.id, "ah_wing")

    gone = ok(cli("users", "deactivate", "ah_wing", "--reason", "left the company"))
    assert gone == ["deactivated ah_wing; 1 task(s) they had taken are waiting again"]
    assert complaint.ready()["contact_complainant"].assignee is None
    assert complaint.history()[-1]["action"] == "task.released"
    with pytest.raises(Unauthorized):
        staff.accounts.person_for_token(token)  # the token they had no longer works
    with pytest.raises(Unauthorized):
        staff.accounts.authenticate("ah_wing", "s3cret-pass")
    assert "ah_wing\ttechnician\tdeactivated" in ok(cli("users", "list"))
    assert "already deactivated" in refused(cli("users", "deactivate", "ah_wing", "--reason", "x"))

    ok(cli("users", "activate", "ah_wing", "--reason", "came back"))
    token = staff.accounts.issue_token(staff.accounts.authenticate("ah_wing", "s3cret-pass"))
    ok(cli("users", "password", "ah_wing", "--password", "new-s3cret-pass"))
    with pytest.raises(Unauthorized, match="the password changed"):
        staff.accounts.person_for_token(token)  # say, one that was stolen
    assert staff.accounts.authenticate("ah_wing", "new-s3cret-pass").roles == {"technician"}
    assert refused(cli("users", "password", "ah_wing", "--password", "short")) == (
        "error: password: At least 8 characters."
    )
    with staff.store.read() as session:
        logged = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject == "ah_wing")
            .order_by(AuditEntry.seq)
        ).all()
    assert logged == [
        "user.created",
        *["user.roles_changed"] * 4,
        "user.deactivated",
        "user.reactivated",
        "user.password_set",
    ]


def test_validate_and_deploy(cli, tmp_path: Path) -> None:
    valid = cli("validate", *(str(BUNDLED / f"{k}.bpmn") for k in ("facility", "bar", "hotel")))
    assert valid.returncode == 0
    assert [line.split(": ")[1] for line in valid.stdout.splitlines()] == [
        "valid (facility, 4 lanes)",
        "valid (bar, 2 lanes)",
        "valid (hotel, 5 lanes)",
    ]
    hostile = tmp_path / "evil.bpmn"
    hostile.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    assert "DOCTYPE and ENTITY declarations are not allowed" in refused(cli("deploy", str(hostile)))
    missing = cli("deploy", str(tmp_path / "missing.bpmn"))
    assert "cannot read the file" in refused(missing)


def test_a_diagram_with_several_problems_lists_each(cli, tmp_path: Path) -> None:
    broken = tmp_path / "facility.bpmn"
    text = (BUNDLED / "facility.bpmn").read_text(encoding="utf-8")
    broken.write_text(
        text.replace('id="notify.role"', 'id="notify.pager"').replace(
            'sla["technician_contact"]', 'sla["tech"]'
        ),
        encoding="utf-8",
    )
    shutil.copytree(BUNDLED / "forms", tmp_path / "forms")
    result = cli("deploy", str(broken))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"error: {broken}: ") for line in lines)
    assert sum("no handler is called 'notify.pager'" in line for line in lines) == 2
    assert any("sla['tech']" in line for line in lines)


def test_bad_configuration_is_one_line(cli) -> None:
    bad_json = cli("roles", COMPLAINTFLOW_SLA_OVERRIDES='{"facility": ')
    assert refused(bad_json).startswith("error: COMPLAINTFLOW_SLA_OVERRIDES is not valid JSON")
    unknown = cli("roles", COMPLAINTFLOW_SLA_OVERRIDES='{"facility": {"tea_break": "PT1M"}}')
    assert "names facility.tea_break, which has no default" in refused(unknown)
    not_duration = cli("roles", COMPLAINTFLOW_SLA_OVERRIDES='{"bar": {"act_immediately": "soon"}}')
    assert "is not an ISO 8601 duration" in refused(not_duration)


def test_an_unreachable_database_is_one_line(cli) -> None:
    down = cli("roles", COMPLAINTFLOW_DATABASE_URL="postgresql://postgres@127.0.0.1:1/none")
    assert refused(down).startswith("error: the database does not answer")


def test_serve_refuses_a_database_not_at_this_versions_schema(
    cli, staff: Services, tmp_path: Path
) -> None:
    # Served, such a database fails every request and every background round, in tracebacks.
    empty = cli("serve", COMPLAINTFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert refused(empty) == "error: the database is not set up yet: run `complaintflow init` first"
    with staff.store.engine.begin() as connection:
        connection.execute(update(ALEMBIC_VERSION).values(version_num="0010"))
    older = refused(cli("serve"))
    assert older.endswith("(0010): run `complaintflow init` to upgrade it"), older
    with staff.store.engine.begin() as connection:
        connection.execute(update(ALEMBIC_VERSION).values(version_num="9999_from_the_future"))
    newer = refused(cli("serve"))
    assert newer.endswith("(schema 9999_from_the_future): run that version"), newer


def test_the_scaled_processes_refuse_a_database_not_at_this_versions_schema(
    pg_url: str, scaled_env: dict[str, str]
) -> None:
    # Else the web processes fail every request, the scheduler every round and the workers every
    # task they are given.
    with psycopg.connect(pg_url) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0010'")
    gunicorn = ("gunicorn", "--config", "python:complaintflow.gunicorn_conf")
    for command in (
        (*gunicorn, "--bind", "127.0.0.1:0", "complaintflow.wsgi:app"),
        ("complaintflow", "worker"),
        ("complaintflow", "scheduler"),
    ):
        result = subprocess.run(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            env=scaled_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        last = result.stderr.strip().splitlines()[-1]  # gunicorn says first that it starts
        assert last.startswith("error: the database's schema is older"), command
        assert last.endswith("(0010): run `complaintflow init` to upgrade it"), command


def test_instances_commands_refuse_what_does_not_exist(cli) -> None:
    assert "no complaint instance 999" in refused(
        cli("instances", "cancel", "999", "--reason", "x")
    )
    # Mistyped arguments are refused as everything else is: one line, exit code 1.
    too_big = refused(cli("instances", "cancel", "9" * 20, "--reason", "x"))
    assert too_big.endswith("is not in the range 1<=x<=2147483647.")
    assert "not a valid integer" in refused(cli("outbox", "retry", "one", "--reason", "x"))
    assert "No such command 'show'" in refused(cli("instances", "show", "1"))


def ok(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _site_time(days: int) -> datetime:
    """A minute in the site's zone (Asia/Hong_Kong), some days from now."""
    return (datetime.now(ZoneInfo("Asia/Hong_Kong")) + timedelta(days=days)).replace(
        second=0, microsecond=0
    )


def test_sign_offs_name_an_active_process_owner(cli, tmp_path: Path) -> None:
    path = str(with_photo_step(tmp_path / "b"))
    expected = (
        "error: {} is not an active user holding the role process_owner (or admin); name one"
        " with --as, or add one with `complaintflow users create`"
    )
    assert refused(cli("deploy", "--as", "technician", path)) == expected.format("technician")
    assert refused(cli("deploy", "--as", "procss_owner", path)) == expected.format("procss_owner")
    assert ok(cli("deploy", "--dry-run", "--as", "anyone", path))  # checks only: stores nothing
    assert ok(cli("deploy", "--as", "process_owner", path)) == ["facility: draft version 2 (draft)"]
    review = ("versions", "review", "facility", "2", "--comment", "reads well", "--as")
    assert refused(cli(*review, "auditor")) == expected.format("auditor")
    assert ok(cli(*review, "admin")) == ["facility v2 reviewed by admin"]
    approve = ("versions", "approve", "facility", "2", "--comment", "photos", "--as")
    assert refused(cli(*approve, "clerk")) == expected.format("clerk")
    ok(cli("users", "create", "owner_c", "--password", "owner-c-pass", "--role", "process_owner"))
    assert ok(cli(*approve, "owner_c")) == ["facility v2 approved by owner_c"]


def test_effective_dates_in_the_site_time_zone_and_withdrawing_before_them(
    cli, tmp_path: Path
) -> None:
    ok(cli("users", "create", "owner_c", "--password", "owner-c-pass", "--role", "process_owner"))
    when, day = _site_time(30), _site_time(60).date()
    for number, (folder, effective) in enumerate(
        [
            (with_photo_step(tmp_path / "b"), when.strftime("%Y-%m-%d %H:%M")),  # no seconds
            (with_photo_step(tmp_path / "c", renamed_measures=True), day.isoformat()),
        ],
        start=2,
    ):
        ok(cli("deploy", "--as", "process_owner", str(folder)))
        ok(cli("versions", "review", "facility", str(number), "--as", "admin", "--comment", "ok"))
        approve = ("versions", "approve", "facility", str(number), "--as", "owner_c")
        ok(cli(*approve, "--comment", "ok", "--effective", effective))
    listed = {line.split("\t")[0]: line for line in ok(cli("versions", "list", "facility"))}
    assert f"\teffective {when:%Y-%m-%d %H:%M}\t" in listed["v2"]
    assert f"\teffective {day.isoformat()} 00:00\t" in listed["v3"]  # a date: from midnight
    assert re.search(r"\teffective \d{4}-\d\d-\d\d \d\d:\d\d\t", listed["v1"])
    assert refused(cli("versions", "list", "nothing")) == "error: there is no procedure 'nothing'"
    # Until its date, an approved version can be withdrawn; once in effect, not.
    in_effect = refused(cli("versions", "withdraw", "facility", "1", "--reason", "old"))
    assert in_effect.startswith("error: version 1 has been in effect since ")
    withdraw = ("versions", "withdraw", "facility", "3", "--reason", "cameras come later")
    assert refused(cli(*withdraw, "--as", "clerk")).startswith("error: clerk is not an active")
    assert ok(cli(*withdraw, "--as", "owner_c")) == ["facility v3 withdrawn by owner_c"]
    assert ok(cli("versions", "list", "facility"))[0].startswith("v3\twithdrawn\t")


def test_a_rejected_file_can_be_deployed_again_as_a_new_draft(cli, tmp_path: Path) -> None:
    path = str(with_photo_step(tmp_path / "b"))
    ok(cli("deploy", "--as", "process_owner", path))
    reject = ("versions", "review", "facility", "2", "--as", "admin", "--reject")
    assert ok(cli(*reject, "--comment", "not yet")) == ["facility v2 rejected by admin"]
    assert ok(cli("deploy", "--as", "process_owner", path)) == [
        "facility: draft version 3 (draft); the same as version 2, submitted again for review"
    ]
    assert ok(cli("deploy", "--as", "process_owner", path)) == [
        "facility: unchanged at version 3 (draft)"
    ]


def test_a_task_without_a_type_is_refused_with_what_to_make_it(cli, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    path = with_photo_step(folder)
    xml = path.read_text(encoding="utf-8")
    start = xml.index('<bpmn:userTask id="photograph_site"')
    end = xml.index("</bpmn:userTask>", start) + len("</bpmn:userTask>")
    plain = (
        '<bpmn:task id="photograph_site" name="拍照記錄處理後現場">'
        "<bpmn:incoming>flow_measures_taken</bpmn:incoming>"
        "<bpmn:outgoing>flow_photographed</bpmn:outgoing></bpmn:task>"
    )
    path.write_text(xml[:start] + plain + xml[end:], encoding="utf-8")
    line = refused(cli("validate", str(path)))
    assert re.fullmatch(
        rf"error: {re.escape(str(path))}: photograph_site \(拍照記錄處理後現場\), line \d+: a task"
        r" without a type does nothing here: make it a user task \(in the lane of the role that"
        r" does it, with its form in the property formJsonSchemaFilename\) or a service task"
        r" \(with a handler\)",
        line,
    )


def test_instances_migrate_moves_what_can_move_and_says_why_not(
    cli, staff: Services, tmp_path: Path
) -> None:
    waiting = Complaint(staff, "facility")  # at the first step
    past = Complaint(staff, "facility")
    past.do("contact_complainant", assessment="solvable").do("take_measures")
    ok(cli("users", "create", "owner_c", "--password", "owner-c-pass", "--role", "process_owner"))
    renamed = with_photo_step(tmp_path / "b", renamed_measures=True)
    ok(cli("deploy", "--as", "process_owner", str(renamed)))
    migrate = ("instances", "migrate", "--procedure", "facility", "--reason", "photos")
    assert refused(cli(*migrate, "--to", "2")) == (
        "error: version 2 is draft; complaints move only to an approved version"
    )
    ok(cli("versions", "review", "facility", "2", "--as", "admin", "--comment", "ok"))
    ok(cli("versions", "approve", "facility", "2", "--as", "owner_c", "--comment", "ok"))
    first, second = waiting.record.number, past.record.number
    assert ok(cli(*migrate, "--to", "2", "--dry-run")) == [
        f"{first}\tv1 → v2\tcan move",
        f"{second}\tv1\trefused: take_measures (立即采取措施處理) was already completed and is"
        " changed in the new version",
        "1 of 2 complaint(s) can move (dry run; nothing moved) to version 2",
    ]
    assert all(e["action"] != "instance.migrated" for e in waiting.history())
    moved = cli(*migrate, "--to", "2", "--instance", str(waiting.id), "--as", "owner_c")
    assert ok(moved) == [f"{first}\tv1 → v2\tmoved", "1 of 1 complaint(s) moved to version 2"]
    event = next(e for e in waiting.history() if e["action"] == "instance.migrated")
    assert (event["actor"], event["data"]) == ("owner_c", {"from": 1, "to": 2, "reason": "photos"})
    assert "photograph_site" in Complaint.existing(staff, waiting.id).diagram.spec.task_specs
    assert refused(cli(*migrate, "--to", "9")) == "error: procedure 'facility' has no version 9"
