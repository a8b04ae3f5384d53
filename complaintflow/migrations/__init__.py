"""Database migrations (Alembic). `upgrade` brings any database to the current schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..db import Store
from ..errors import SchemaMismatch


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def upgrade(store: Store) -> None:
    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def require_current(store: Store) -> None:
    """Refuse a database whose schema is not this code's (never set up, or set up by another
    version): a process serving it would fail on every request and every background round."""
    script = ScriptDirectory.from_config(alembic_config())
    with store.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == script.get_current_head():
        return
    if current is None:
        raise SchemaMismatch("the database is not set up yet: run `complaintflow init` first")
    if current in {revision.revision for revision in script.walk_revisions()}:
        raise SchemaMismatch(
            f"the database's schema is older than this version of complaintflow ({current}):"
            " run `complaintflow init` to upgrade it"
        )
    raise SchemaMismatch(
        f"the database was set up by a newer version of complaintflow (schema {current}):"
        " run that version"
    )
