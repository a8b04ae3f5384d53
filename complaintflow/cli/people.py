"""People: users, their roles, and where their notifications go."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
from flask.cli import with_appcontext

from ..accounts import Contact
from ..app import services
from ..bootstrap import OPERATOR
from ..naming import LANGUAGES
from . import main


@main.command()
@with_appcontext
def roles() -> None:
    """List the roles: the key first, then its description."""
    for role in services().accounts.roles():
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
    accounts.set_contact(username, contact, OPERATOR)
    click.echo(
        f"{username}: email {contact.email or '-'}, phone {contact.phone or '-'},"
        f" language {contact.locale}"
    )


@users.command("list")
@with_appcontext
def users_list() -> None:
    """One user per line: the name, the roles, and whether they may sign in."""
    for account in services().accounts.listing():
        state = "" if account.active else "\tdeactivated"
        roles = ", ".join(sorted(account.person.roles))
        click.echo(f"{account.person.username}\t{roles}{state}")


@users.command("roles")
@click.argument("username")
@click.option("--grant", multiple=True, help="A role key to give; repeatable.")
@click.option("--revoke", multiple=True, help="A role key to take away; repeatable.")
@with_appcontext
def users_roles(username: str, grant: tuple[str, ...], revoke: tuple[str, ...]) -> None:
    """Give a user roles and take others away (audited); it counts from their next request."""
    svc = services()
    person = svc.accounts.change_roles(username, list(grant), list(revoke), OPERATOR)
    given_back = svc.engine.give_back(username, person.may_work, OPERATOR)
    click.echo(f"{person.username}: roles {', '.join(sorted(person.roles))}")
    if given_back:
        click.echo(f"{given_back} task(s) of roles they no longer hold are waiting again")


@users.command("deactivate")
@click.argument("username")
@click.option("--reason", required=True, help="Why (in the audit log).")
@with_appcontext
def users_deactivate(username: str, reason: str) -> None:
    """Stop someone who leaves from signing in or using their API tokens; the tasks they had
    taken go back to their roles' inboxes."""
    svc = services()
    svc.accounts.set_active(username, False, OPERATOR, reason)
    given_back = svc.engine.give_back(username, lambda role: False, OPERATOR)
    click.echo(f"deactivated {username}; {given_back} task(s) they had taken are waiting again")


@users.command("activate")
@click.argument("username")
@click.option("--reason", required=True, help="Why (in the audit log).")
@with_appcontext
def users_activate(username: str, reason: str) -> None:
    """Let a deactivated user sign in again."""
    services().accounts.set_active(username, True, OPERATOR, reason)
    click.echo(f"activated {username}")


@users.command("password")
@click.argument("username")
@click.password_option(help="The new password; asked for twice when left out.")
@with_appcontext
def users_password(username: str, password: str) -> None:
    """Set a new password for someone (audited); it also lifts a lockout after failed sign-ins."""
    services().accounts.set_password(username, password, OPERATOR)
    click.echo(f"new password set for {username}")
