"""People: users, their roles, and where their notifications go."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..accounts import Contact
from ..app import services
from ..models import Role
from ..naming import LANGUAGES
from . import main


@main.command()
@with_appcontext
def roles() -> None:
    """List the roles: the key first, then its description."""
    with services().store.read() as session:
        for role in session.scalars(select(Role).order_by(Role.procedure_key.is_(None), Role.key)):
            where = f" [{role.procedure_key}]" if role.procedure_key else ""
            detail = f" — {role.description}" if role.description else ""
            click.echo(f"{role.key}\t{role.name}{detail}{where}")


Command = TypeVar("Command", bound=Callable[..., None])


def contact_options(locale_default: str | None) -> Callable[[Command], Command]:
    """--email, --phone and --locale; for a change, an option left out keeps what was set."""

    def decorate(command: Command) -> Command:
        command = click.option(
            "--locale",
            type=click.Choice(LANGUAGES),
            default=locale_default,
            show_default=locale_default is not None,
            help="The language of the notifications.",
        )(command)
        command = click.option("--phone", help="Where urgent notifications go by SMS.")(command)
        return click.option("--email", help="Where notifications are emailed.")(command)

    return decorate


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--password", required=True)
@click.option("--role", "roles_", multiple=True, required=True, help="A role key; repeatable.")
@click.option("--display-name", default="")
@contact_options(locale_default="en")
@with_appcontext
def users_create(
    username: str,
    password: str,
    roles_: tuple[str, ...],
    display_name: str,
    email: str | None,
    phone: str | None,
    locale: str,
) -> None:
    """Create a user with one or more roles."""
    contact = Contact(email, phone, locale)
    person = services().accounts.create_user(
        username, password, list(roles_), display_name, contact=contact
    )
    click.echo(f"created {person.username} with roles {', '.join(sorted(person.roles))}")


@users.command("contact")
@click.argument("username")
@contact_options(locale_default=None)
@with_appcontext
def users_contact(username: str, email: str | None, phone: str | None, locale: str | None) -> None:
    """Set where a user's notifications go (email, SMS) and in which language; an empty
    value ('') removes an address."""
    accounts = services().accounts
    now = accounts.contact_of(username)
    contact = Contact(
        now.email if email is None else email,
        now.phone if phone is None else phone,
        locale or now.locale,
    )
    accounts.set_contact(username, contact, "cli")
    click.echo(
        f"{username}: email {contact.email or '-'}, phone {contact.phone or '-'},"
        f" language {contact.locale}"
    )
