"""The scaled mode's deployment files, checked without a Docker engine: docker-compose.yml runs
the real commands, with settings complaintflow reads, in the right order, with a health check on
every long-running service; the Dockerfile starts the WSGI app that exists. Where `docker
compose` is installed, it has its say on the file as well."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.config import Config as GunicornConfig

from complaintflow import config, gunicorn_conf
from complaintflow.cli import main
from complaintflow.config import REPO_ROOT, Settings

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_ANCHOR = "x-complaintflow-env"
COMPLAINTFLOW_SERVICES = ("migrate", "web", "worker", "scheduler")
LONG_RUNNING = ("postgres", "redis", "web", "proxy", "worker", "scheduler")
WSGI_TARGET = "complaintflow.wsgi:app"
SECRET = "a-test-secret-" * 4

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, and $$ for "$".
INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the image's last stage, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", "")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, arguments = line.partition(" ")
            instructions.append((word.upper(), arguments.strip()))
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def dockerfile_cmd() -> list[str]:
    cmds = [arguments for word, arguments in dockerfile_final_stage() if word == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    argv: list[str] = json.loads(cmds[-1])  # the exec form: no shell between Docker and it
    return argv


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, arguments in dockerfile_final_stage():
        if word == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", arguments))
    return env


def command_of(name: str) -> list[str]:
    """What the service runs: its own command, or else the image's CMD."""
    spec = service(name)
    if "command" not in spec:
        assert "build" in spec, f"{name} runs an image of its own"
        return dockerfile_cmd()
    command = spec["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def environment(name: str) -> dict[str, Any]:
    env: dict[str, Any] = service(name).get("environment") or {}
    assert isinstance(env, dict), f"{name}: environment as a mapping, so the anchor merges"
    return env


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's variable substitution, for the forms the file uses."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        if name in given and (given[name] or not (operator or "").startswith(":")):
            return given[name]
        if operator and operator.endswith("?"):
            raise LookupError(f"{name}: {argument}")
        return argument if operator else ""

    return INTERPOLATION.sub(substitute, value)


def gunicorn_options(argv: list[str]) -> Any:
    """gunicorn's own command-line parser: an option it does not know fails here."""
    try:
        return GunicornConfig().parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"gunicorn does not accept {shlex.join(argv)}")


def names_config_reads() -> set[str]:
    names = set(re.findall(r'env\.get\(\s*"(COMPLAINTFLOW_\w+)"', inspect.getsource(config)))
    assert len(names) > 10, "config.py reads its settings with env.get(...) no longer"
    return names


def test_each_part_of_the_scaled_mode_is_a_service() -> None:
    layout = compose()
    assert set(layout["services"]) == {*LONG_RUNNING, "migrate"}
    assert {"pgdata", "home"} <= set(layout["volumes"])
    assert service("postgres")["image"].startswith("postgres:15")
    assert service("redis")["image"].startswith("redis:7")
    for name in COMPLAINTFLOW_SERVICES:
        assert service(name)["build"] == ".", f"{name} runs the image the Dockerfile builds"
        assert "home:/data" in service(name)["volumes"]
    _docker_compose_agrees()


def _docker_compose_agrees() -> None:
    """`docker compose config` where Compose is installed (it needs no running engine)."""
    docker = shutil.which("docker")
    if docker is None:
        return
    version = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
    if version.returncode != 0:
        return  # the docker command without its Compose plugin
    env = {k: v for k, v in os.environ.items() if k != "COMPLAINTFLOW_SECRET_KEY"}
    # --env-file /dev/null: a developer's own .env must not decide the outcome.
    check = [docker, "compose", "--env-file", "/dev/null", "-f", str(COMPOSE_FILE), "config", "-q"]
    run = subprocess.run(
        check,
        env={**env, "COMPLAINTFLOW_SECRET_KEY": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    unset = subprocess.run(check, env=env, capture_output=True, text=True, timeout=120)
    assert unset.returncode != 0, "compose must refuse to start without the secret key"


def test_every_long_running_service_has_a_health_check() -> None:
    for name in LONG_RUNNING:
        check = service(name).get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "healthcheck" not in service("migrate"), "migrate runs once; nothing to watch"


def test_web_health_is_the_apps_own_healthz() -> None:
    test = " ".join(service("web")["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in test


def test_a_worker_is_healthy_when_it_answers_a_ping_through_the_broker() -> None:
    shell, line = service("worker")["healthcheck"]["test"]
    assert shell == "CMD-SHELL"
    argv = shlex.split(interpolate(line, {}))
    assert argv[0] == "celery"
    assert argv[argv.index("--broker") + 1] == "$COMPLAINTFLOW_BROKER_URL"
    assert argv[argv.index("inspect") + 1] == "ping"
    # Celery names a worker celery@<host name>: this container's worker, not any worker.
    assert argv[argv.index("--destination") + 1] == "celery@$HOSTNAME"


@pytest.mark.parametrize(
    ("processes", "healthy"),
    [
        ([["/usr/local/bin/python", "/usr/local/bin/complaintflow", "scheduler"]], True),
        ([["python", "-m", "complaintflow", "scheduler"]], True),
        ([["/usr/local/bin/python", "/usr/local/bin/complaintflow", "worker"]], False),
        ([], False),
    ],
)
def test_the_scheduler_is_unhealthy_without_a_scheduler_process(
    tmp_path: Path, processes: list[list[str]], healthy: bool
) -> None:
    kind, python, dash_c, code = service("scheduler")["healthcheck"]["test"]
    assert (kind, python, dash_c) == ("CMD", "python", "-c")
    assert code.count('"/proc"') == 1
    # The check itself (`python -c <code>`) is among the processes it reads: it must not count.
    processes = [*processes, [python, dash_c, code]]
    for pid, argv in enumerate(processes, start=1):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    result = subprocess.run(
        [sys.executable, "-c", code.replace('"/proc"', repr(str(tmp_path)))], timeout=60
    )
    assert (result.returncode == 0) is healthy


def test_complaintflow_commands_are_real_commands() -> None:
    for name in COMPLAINTFLOW_SERVICES:
        argv = command_of(name)
        if argv[0] == "gunicorn":
            assert gunicorn_options(argv[1:]).args == [WSGI_TARGET], name
            continue
        assert argv[0] == "complaintflow", f"{name} runs {argv[0]}"
        command = main.commands.get(argv[1])
        assert command is not None, f"{name}: `complaintflow {argv[1]}` is no command"
        command.make_context(argv[1], argv[2:])  # its options parse: unknown ones raise
    assert command_of("migrate") == ["complaintflow", "init"]
    assert command_of("worker")[:2] == ["complaintflow", "worker"]
    assert command_of("scheduler") == ["complaintflow", "scheduler"]
    assert command_of("web")[0] == "gunicorn"


def test_the_gunicorn_target_is_the_flask_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPLAINTFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("COMPLAINTFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'complaintflow.db'}")
    monkeypatch.delitem(sys.modules, "complaintflow.wsgi", raising=False)
    module, _, attribute = WSGI_TARGET.partition(":")
    app = getattr(importlib.import_module(module), attribute)
    assert isinstance(app, Flask)
    assert app.test_client().get("/healthz").status_code in (200, 503)


def gunicorn_settings(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings gunicorn runs with for `argv`: its command line over the config module it
    names, loaded by gunicorn itself."""
    monkeypatch.setattr(sys, "argv", argv)
    try:
        return WSGIApplication(prog="gunicorn").cfg
    except SystemExit:
        pytest.fail(f"gunicorn cannot start as {shlex.join(argv)}")


def test_the_gunicorn_settings_module_sets_only_gunicorn_settings() -> None:
    # gunicorn passes over a name it does not know in a config module without a word.
    names = {name for name in vars(gunicorn_conf) if not name.startswith("_")} - {"Path"}
    assert names and names <= set(GunicornConfig().settings), names


def test_the_image_serves_the_wsgi_app_with_gunicorn_as_an_unprivileged_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = dockerfile_cmd()
    assert argv[0] == "gunicorn"
    options = gunicorn_options(argv[1:])
    assert options.args == [WSGI_TARGET]
    assert options.workers is None, "the worker count comes from WEB_CONCURRENCY"
    settings = gunicorn_settings(argv, monkeypatch)
    assert settings.bind == ["0.0.0.0:8000"]
    assert settings.accesslog == "-"
    assert (settings.worker_class_str, settings.threads) == ("gthread", 4)
    assert settings.worker_tmp_dir == "/dev/shm"
    stage = dockerfile_final_stage()
    assert stage[0] == ("FROM", "python:3.11-slim")
    assert ("EXPOSE", "8000") in stage
    users = [arguments for word, arguments in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert dockerfile_env()["COMPLAINTFLOW_HOME"] == "/data"
    installs = [
        arguments for word, arguments in stage if word == "RUN" and "pip install" in arguments
    ]
    pinned = r"pip install -c /src/constraints\.txt /src$"  # the package, at the tested versions
    assert installs and all(re.search(pinned, run) for run in installs), installs


def test_web_worker_scheduler_and_migrate_share_the_settings() -> None:
    shared = compose()[ENV_ANCHOR]
    assert shared["COMPLAINTFLOW_DATABASE_URL"].startswith("postgresql://")
    assert shared["COMPLAINTFLOW_BROKER_URL"].startswith("redis://")
    assert re.fullmatch(
        r"\$\{COMPLAINTFLOW_SECRET_KEY:\?[^}]+\}", shared["COMPLAINTFLOW_SECRET_KEY"]
    )
    for name in COMPLAINTFLOW_SERVICES:
        env = environment(name)
        assert {k: env.get(k) for k in shared} == shared, f"{name} does not use {ENV_ANCHOR}"
    assert "${" not in shared["COMPLAINTFLOW_BROKER_URL"]


def test_the_shared_settings_mean_the_products_defaults() -> None:
    """Optional settings left unset in .env come out as complaintflow's own defaults, and
    without the secret key nothing starts."""
    shared = compose()[ENV_ANCHOR]
    given = {"COMPLAINTFLOW_SECRET_KEY": SECRET}
    env = {name: interpolate(str(value), given) for name, value in shared.items()}
    settings = Settings.from_env(env)
    assert settings.scaled and not settings.is_sqlite
    required = ("COMPLAINTFLOW_HOME", "COMPLAINTFLOW_DATABASE_URL", "COMPLAINTFLOW_BROKER_URL")
    assert settings == Settings.from_env(
        {**{name: env[name] for name in required}, "COMPLAINTFLOW_SECRET_KEY": SECRET}
    )
    with pytest.raises(LookupError, match="COMPLAINTFLOW_SECRET_KEY"):
        interpolate(shared["COMPLAINTFLOW_SECRET_KEY"], {})


def test_every_complaintflow_variable_set_is_one_config_reads() -> None:
    """A misspelt name would be ignored without a word: here it fails."""
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    layout = compose()
    set_here = set(layout[ENV_ANCHOR])
    for spec in layout["services"].values():
        set_here |= set(spec.get("environment") or {})
    set_here |= set(re.findall(r"\$\{(\w+)", raw))  # what .env may set
    set_here |= set(dockerfile_env())
    unknown = {name for name in set_here if name.startswith("COMPLAINTFLOW_")}
    unknown -= names_config_reads()
    assert not unknown, f"complaintflow reads no such setting: {sorted(unknown)}"


def test_services_start_in_order() -> None:
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert service("migrate")["restart"] == "no"
    for name in ("web", "worker", "scheduler"):
        depends = service(name)["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    for name, spec in compose()["services"].items():
        for needed, how in (spec.get("depends_on") or {}).items():
            assert isinstance(how, dict), f"{name}: a condition for each dependency"
            if needed in ("postgres", "redis"):
                assert how["condition"] == "service_healthy", f"{name} on {needed}"


def test_exactly_one_scheduler_and_several_of_the_rest() -> None:
    assert service("scheduler")["deploy"]["replicas"] == 1
    assert service("web")["deploy"]["replicas"] >= 2
    assert service("worker")["deploy"]["replicas"] >= 2
    for name, spec in compose()["services"].items():
        if spec.get("deploy", {}).get("replicas", 1) > 1:
            # Two containers cannot both bind one port of the host.
            assert not spec.get("ports"), f"{name} is replicated and publishes a host port"


def test_the_proxy_hands_clients_addresses_to_gunicorn() -> None:
    """The proxy speaks the PROXY protocol to the web containers, and gunicorn expects it: one
    without the other turns every request into an error, or every complainant into the proxy
    for the public intake's limit per address."""
    layout = compose()
    proxy = service("proxy")
    (mounted,) = proxy["configs"]
    assert mounted["target"] == "/etc/nginx/nginx.conf"
    nginx = layout["configs"][mounted["source"]]["content"]
    assert "server web:8000" in nginx
    assert "proxy_protocol on;" in nginx
    assert "$" not in nginx, "compose would substitute it"
    assert any(port.endswith(":8000") for port in proxy["ports"])
    extra = gunicorn_options(shlex.split(environment("web")["GUNICORN_CMD_ARGS"]))
    assert extra.proxy_protocol not in (None, False, "off")
    assert extra.proxy_allow_ips == "*"
