"""Fixtures: every test that uses a database runs on SQLite and on PostgreSQL.

A template database per backend is migrated, given the bundled diagrams and the demo users once
per session; each test gets a fresh copy (a file copy on SQLite, CREATE DATABASE … TEMPLATE on
PostgreSQL). PostgreSQL must be running: without it the PostgreSQL half fails, it never skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from complaintflow import create_app
from complaintflow.app import services
from complaintflow.bootstrap import demo_password, initialise
from complaintflow.config import REPO_ROOT, Settings
from complaintflow.handlers import HandlerContext, HandlerError, registry
from complaintflow.services import Services

PG_ADMIN_URL = os.environ.get(
    "COMPLAINTFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BUNDLED = REPO_ROOT / "bpmn"
MECHANICS = Path(__file__).parent / "diagrams"

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
        name = f"cf_test_{uuid.uuid4().hex[:12]}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
        try:
            yield _pg_url(name)
        finally:
            with _pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def start_server(
    database_url: Callable[[Path], Iterator[str]], tmp_path: Path
) -> Iterator[Callable[..., str]]:
    """Start `complaintflow serve` in its own process on a fresh database, with settings from
    keyword arguments (environment variables); returns its base URL. Stopped after the test."""
    started: list[tuple[subprocess.Popen[bytes], Iterator[str]]] = []

    def start(**env: str) -> str:
        urls = database_url(BUNDLED)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "complaintflow", "serve", "--port", str(port)],
            env={
                **os.environ,
                "COMPLAINTFLOW_HOME": str(tmp_path / f"home-{port}"),
                "COMPLAINTFLOW_DATABASE_URL": next(urls),
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append((server, urls))
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return base
            except OSError:
                time.sleep(0.1)
        pytest.fail("complaintflow serve did not answer within 15 s")

    yield start
    for server, urls in started:
        server.terminate()
        server.wait(timeout=10)
        next(urls, None)


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
