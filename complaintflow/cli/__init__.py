"""The `complaintflow` command: set up, deploy, manage users, serve, and operate instances.
Its commands live in the modules beside this one, by what they are about.

Commands run with the same application (and so the same settings) as the web server. Errors a
user can cause print one line per problem and exit with status 1, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError

from ..app import create_app
from ..errors import ComplaintflowError, InvalidData, InvalidDiagram
from ..models import MAX_INTEGER

# An id or version number on the command line: one a row can have, or a usage error.
ROW_NUMBER = click.IntRange(1, MAX_INTEGER)


class _Group(FlaskGroup):
    # Flask-Limiter adds `limiter` through Flask's plugin entry point: not one of the product's.
    _FOREIGN = frozenset({"limiter"})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in super().list_commands(ctx) if name not in self._FOREIGN]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return None if name in self._FOREIGN else super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidDiagram as exc:
            for finding in exc.findings:
                click.echo(f"error: {exc.message.split(':', 1)[0]}: {finding}", err=True)
            sys.exit(1)
        except InvalidData as exc:
            problems = "; ".join(f"{name}: {' '.join(m)}" for name, m in exc.fields.items())
            click.echo(f"error: {problems}", err=True)
            sys.exit(1)
        except ComplaintflowError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except click.UsageError as exc:  # a mistyped command or argument: refused like the rest
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(1)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            click.echo(f"error: the database does not answer: {reason}", err=True)
            sys.exit(1)


@click.group(
    cls=_Group,
    create_app=lambda *_: create_app(),
    add_default_commands=False,
    add_version_option=False,
)
def main() -> None:
    """complaintflow: complaint procedures as BPMN, worked on the web."""


from . import operations, people, procedures, processes  # noqa: E402,F401  (commands register on main)
