"""Fixtures: every test that uses a database runs on SQLite and on PostgreSQL.

A template database per backend is migrated, given the bundled diagrams and the demo users once
per session; each test gets a fresh copy (a file copy on SQLite, CREATE DATABASE … TEMPLATE on
PostgreSQL). PostgreSQL must be running: without it the PostgreSQL half fails, it never skips.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Playwright, sync_playwright
from sqlalchemy import event

from complaintflow import create_app
from complaintflow.app import services
from complaintflow.bootstrap import demo_password, initialise
from complaintflow.config import REPO_ROOT, Settings
from complaintflow.handlers import HandlerContext, HandlerError, registry
from complaintflow.services import Services

from .processes import Processes
from .receivers import Receiver, SmtpServer

PG_ADMIN_URL = os.environ.get(
    "COMPLAINTFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BUNDLED = REPO_ROOT / "bpmn"
MECHANICS = Path(__file__).parent / "diagrams"
# One headless Debian Chromium for the whole session, never a downloaded browser: Playwright's
# sync driver allows only one per thread, so every test module shares this one.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def statements(svc: Services) -> Iterator[list[str]]:
    """The SQL the services send while the block runs, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(svc.store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(svc.store.engine, "before_cursor_execute", record)


# Complainants whose call to the test handler fails, as an unreachable outside system would.
FLAKY_FOR: set[str] = set()


@registry.register("test.flaky")
def _flaky(ctx: HandlerContext) -> dict[str, Any]:
    """A handler for the tests: fails while the complainant is in FLAKY_FOR."""
    if ctx.data.get("name") in FLAKY_FOR:
        raise HandlerError("the outside system did not answer")
    return {"ok": True}


def _pg_admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is needed for the tests and does not answer at {PG_ADMIN_URL}: {exc}."
            " Run `make test-env` (or `make test`, which does it).",
            pytrace=False,
        )


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def _pg_copy(template: str) -> Iterator[str]:
    """A PostgreSQL database copied from the template database at `template`, dropped after."""
    name = f"cf_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
    try:
        yield _pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Templates:
    """Template databases, one per (backend, bundle of diagrams), built when first needed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[tuple[str, Path], str] = {}
        self.pg_databases: list[str] = []

    def get(self, backend: str, bpmn_dir: Path) -> str:
        key = (backend, bpmn_dir)
        if key not in self.made:
            name = f"cf_tmpl_{uuid.uuid4().hex[:10]}"
            if backend == "sqlite":
                url = f"sqlite:///{self.root / (name + '.db')}"
            else:
                with _pg_admin() as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
                self.pg_databases.append(name)
                url = _pg_url(name)
            settings = _settings(self.root / name, url, bpmn_dir)
            svc = Services.build(settings)
            for _ in initialise(svc, demo_users=True):
                pass
            svc.store.dispose()
            self.made[key] = url
        return self.made[key]

    def drop_all(self) -> None:
        if self.pg_databases:
            with _pg_admin() as admin:
                for name in self.pg_databases:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _settings(home: Path, url: str, bpmn_dir: Path, **overrides: Any) -> Settings:
    return replace(
        Settings(home=home, database_url=url, secret_key="test-secret", bpmn_dir=bpmn_dir),
        **overrides,
    )


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    made = _Templates(tmp_path_factory.mktemp("templates"))
    yield made
    made.drop_all()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, templates: _Templates, tmp_path: Path
) -> Callable[[Path], Iterator[str]]:
    """A factory: a fresh database copied from the template for a bundle of diagrams."""

    def fresh(bpmn_dir: Path) -> Iterator[str]:
        template = templates.get(backend, bpmn_dir)
        if backend == "sqlite":
            path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.db"
            shutil.copy(template.removeprefix("sqlite:///"), path)
            yield f"sqlite:///{path}"
            return
        yield from _pg_copy(template)

    return fresh


@pytest.fixture
def make_app(
    database_url: Callable[[Path], Iterator[str]], tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Build an app on a fresh database; keyword arguments override settings."""
    made: list[tuple[Flask, Iterator[str]]] = []

    def build(bpmn_dir: Path = BUNDLED, **overrides: Any) -> Flask:
        urls = database_url(bpmn_dir)
        url = next(urls)
        app = create_app(_settings(tmp_path / "home", url, bpmn_dir, **overrides))
        app.config["TESTING"] = True
        made.append((app, urls))
        return app

    yield build
    for app, urls in made:
        services(app).store.dispose()
        next(urls, None)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def svc(app: Flask) -> Services:
    return services(app)


class ServerProcess(Processes):
    """`complaintflow serve` in its own process on a given database and home; it can be
    killed (`kill("web")`, SIGKILL, as a power cut would) and started again on the same data."""

    def __init__(self, database_url: str, home: Path, env: dict[str, str]) -> None:
        super().__init__(
            home,
            {"COMPLAINTFLOW_DATABASE_URL": database_url, **env},
        )

    def start(self) -> str:
        self.spawn("web", "complaintflow", "serve", "--port", str(self.port))
        self.wait_for_web(15)
        return self.base


@pytest.fixture
def server_process(
    database_url: Callable[[Path], Iterator[str]], tmp_path: Path
) -> Iterator[Callable[..., ServerProcess]]:
    """A factory: a server (not started yet) on a fresh database, with settings from keyword
    arguments (environment variables). Stopped after the test."""
    made: list[tuple[ServerProcess, Iterator[str]]] = []

    def make(**env: str) -> ServerProcess:
        urls = database_url(BUNDLED)
        server = ServerProcess(next(urls), tmp_path / f"home-{len(made)}", env)
        made.append((server, urls))
        return server

    yield make
    for server, urls in made:
        server.stop()
        next(urls, None)


@pytest.fixture
def start_server(server_process: Callable[..., ServerProcess]) -> Callable[..., str]:
    """Start `complaintflow serve` on a fresh database; returns its base URL."""
    return lambda **env: server_process(**env).start()


class Api:
    """The JSON API as a client sees it, signed in as the demo users."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self._tokens:
            response = self.client.post(
                "/api/v1/auth/token",
                json={"username": username, "password": demo_password(username)},
            )
            assert response.status_code == 200, response.get_json()
            self._tokens[username] = response.get_json()["token"]
        return self._tokens[username]

    def call(self, method: str, path: str, user: str, json: Any = None) -> Any:
        return self.client.open(
            "/api/v1" + path,
            method=method,
            json=json,
            headers={"Authorization": f"Bearer {self.token(user)}"},
        )

    def get(self, path: str, user: str) -> Any:
        return self.call("GET", path, user)

    def post(self, path: str, user: str, json: Any = None) -> Any:
        return self.call("POST", path, user, {} if json is None else json)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """A factory of HTTP receivers on localhost (see tests/receivers.py), closed after the test."""
    made: list[Receiver] = []

    def make(**options: Any) -> Receiver:
        made.append(Receiver(**options))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`make test-env`).", pytrace=False
        )
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def pg_url(templates: _Templates) -> Iterator[str]:
    """A fresh PostgreSQL database with the bundled diagrams, for what only runs scaled."""
    yield from _pg_copy(templates.get("postgresql", BUNDLED))


@pytest.fixture
def scaled_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a scaled-out process (`complaintflow worker`, `scheduler`, gunicorn)
    on `pg_url`, for running one in a process of its own."""
    return {
        **os.environ,
        "COMPLAINTFLOW_HOME": str(tmp_path / "home"),
        "COMPLAINTFLOW_DATABASE_URL": pg_url,
        "COMPLAINTFLOW_BROKER_URL": "redis://127.0.0.1:6379/12",
    }


@pytest.fixture
def other_pg_url(templates: _Templates) -> Iterator[str]:
    """Another one, as a second deployment beside the first would have."""
    yield from _pg_copy(templates.get("postgresql", BUNDLED))
