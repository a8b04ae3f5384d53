"""Browser fixtures: `site` serves complaintflow on a fresh database (SQLite and PostgreSQL,
through the shared `start_server`) and gives each person their own browser context. The one
Chromium of the session is `browser`, from the root conftest."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser

from .pages import Site

DOCS_SCREENSHOTS = os.environ.get("COMPLAINTFLOW_DOCS_SCREENSHOTS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "docs_screenshots: writes docs/images/*.png; runs only with"
        " COMPLAINTFLOW_DOCS_SCREENSHOTS=1 (on SQLite)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the docs screenshots unless asked for, and then take them once (SQLite)."""
    keep, drop = [], []
    for item in items:
        if item.get_closest_marker("docs_screenshots") is None:
            keep.append(item)
            continue
        params = getattr(item, "callspec", None)
        backend = params.params.get("backend") if params else None
        (keep if DOCS_SCREENSHOTS and backend in (None, "sqlite") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def serve(start_server: Callable[..., str], browser: Browser) -> Iterator[Callable[..., Site]]:
    """Start a server with extra environment settings; returns the site to browse it."""
    sites: list[Site] = []

    def start(**env: str) -> Site:
        base = start_server(COMPLAINTFLOW_INTAKE_MIN_SECONDS="0", **env)
        sites.append(Site(browser, base))
        return sites[-1]

    yield start
    for site in sites:
        site.close()


@pytest.fixture
def site(serve: Callable[..., Site]) -> Site:
    """complaintflow served with its default deadlines, public form accepted at once."""
    return serve()
