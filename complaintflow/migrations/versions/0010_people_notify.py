"""on PostgreSQL, announce every change to users and their roles (NOTIFY complaintflow_people)

Each process keeps a copy of who is active with which roles (`accounts.People`) and drops it when
this channel speaks. Triggers, not the application, announce: a change made by any means — the
product, a migration, an operator's SQL — is heard.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Statement-level: one notification a statement however many rows it touched, and PostgreSQL
# folds identical notifications of one transaction into one, sent when it commits.
_FUNCTION = """
CREATE FUNCTION complaintflow_people_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('complaintflow_people', '');
    RETURN NULL;
END
$$
"""
# The columns a person is made of (accounts.People); sign-in counters and contact details
# change without a word.
_TRIGGERS = {
    "users": "INSERT OR DELETE OR TRUNCATE OR UPDATE OF username, display_name, password_hash,"
    " active",
    "user_roles": "INSERT OR DELETE OR TRUNCATE OR UPDATE",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no NOTIFY: there every lookup reads
    op.execute(_FUNCTION)
    for table, events in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {table}_people_changed AFTER {events} ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION complaintflow_people_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_people_changed ON {table}")
    op.execute("DROP FUNCTION complaintflow_people_changed()")
