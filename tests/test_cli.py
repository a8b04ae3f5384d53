"""The `complaintflow` command as an operator runs it: in its own process, with settings from
the environment. Mistakes give one readable line and exit status 1, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import BUNDLED

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
def cli(
    database_url: Callable[[Path], Iterator[str]], tmp_path: Path
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    urls = database_url(BUNDLED)
    env = {
        **os.environ,
        "COMPLAINTFLOW_HOME": str(tmp_path / "home"),
        "COMPLAINTFLOW_DATABASE_URL": next(urls),
    }

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "complaintflow", *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    yield run
    next(urls, None)


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
    assert refused(again) == "error: a user called ah_wing already exists"


def test_mistakes_in_users_create_are_one_line(cli) -> None:
    unknown = cli("users", "create", "x", "--password", "long-enough", "--role", "janitor")
    assert refused(unknown) == "error: unknown role janitor; `complaintflow roles` lists the roles"
    short = cli("users", "create", "x", "--password", "short", "--role", "clerk")
    assert "at least 8 characters" in refused(short)


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


def test_instances_commands_refuse_what_does_not_exist(cli) -> None:
    assert "no complaint instance 999" in refused(
        cli("instances", "cancel", "999", "--reason", "x")
    )
