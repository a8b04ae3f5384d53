"""People and their roles: creating users, checking passwords, and API bearer tokens.

Passwords are stored as argon2 hashes. Tokens are signed (itsdangerous) with the user's id and
expire; each request still looks the user up, so a deactivated user or a changed role takes
effect at once (`People`: on PostgreSQL from a copy in memory that every change drops). Tokens
and web sessions carry a digest of the password's hash (`Person.credentials`): a new password
ends every one made with the old.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, selectinload

from . import audit
from .db import Store, after_commit
from .errors import N_, Conflict, InvalidData, NotFound, Problem, Unauthorized
from .listening import Channel
from .models import Role, User, UserRole, utcnow
from .naming import LANGUAGES

ADMIN_ROLE = "admin"
AUDITOR_ROLE = "auditor"
PROCESS_OWNER_ROLE = "process_owner"
BUILTIN_ROLES = {
    ADMIN_ROLE: "Administrator: may do everything, in every procedure",
    PROCESS_OWNER_ROLE: "Process owner: prepares, reviews and approves versions of the procedures",
    AUDITOR_ROLE: "Auditor: reads every complaint, its history and the reports; changes nothing",
}
MIN_PASSWORD = 8
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)

_hasher = PasswordHasher()
# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


class AccountLocked(Unauthorized):
    def __init__(self, minutes: int) -> None:
        super().__init__(
            f"too many failed sign-ins: this account is locked; try again in {minutes} min"
        )
        self.minutes = minutes


@dataclass(frozen=True)
class Person:
    """The signed-in user as the rest of the product sees it."""

    id: int
    username: str
    display_name: str
    roles: frozenset[str]
    # Of the password the person signed in with: tokens and sessions carry it, and a new
    # password ends every one made with the old.
    credentials: str = field(repr=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def may_work(self, role: str) -> bool:
        return self.is_admin or role in self.roles

    def may_use(self, procedure_roles: frozenset[str]) -> bool:
        """Start and work complaints of a procedure with these lane roles."""
        return self.is_admin or bool(self.roles & procedure_roles)

    @property
    def is_process_owner(self) -> bool:
        return self.is_admin or PROCESS_OWNER_ROLE in self.roles

    @property
    def is_auditor(self) -> bool:
        return self.is_admin or AUDITOR_ROLE in self.roles

    def may_view(self, procedure_roles: frozenset[str]) -> bool:
        """See complaints of a procedure: its staff, and auditors."""
        return self.is_auditor or self.may_use(procedure_roles)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s()-]{6,30}$")


@dataclass(frozen=True)
class Contact:
    """How notifications reach a member of staff, and in which language."""

    email: str | None = None
    phone: str | None = None
    locale: str = "en"

    def cleaned(self) -> tuple[Contact, dict[str, list[Problem]]]:
        """The contact trimmed, and what is wrong with its fields (`checked` refuses those)."""
        problems: dict[str, list[Problem]] = {}
        email = (self.email or "").strip() or None
        phone = (self.phone or "").strip() or None
        if email and (len(email) > 200 or not _EMAIL.match(email)):
            problems["email"] = [(N_("Give an email address such as name@example.com."), {})]
        if phone and not _PHONE.match(phone):
            problems["phone"] = [(N_("Give a phone number: digits, spaces, + ( ) -."), {})]
        if self.locale not in LANGUAGES:
            problems["locale"] = [(N_("Choose among: %(types)s."), {"types": ", ".join(LANGUAGES)})]
        return Contact(email, phone, self.locale), problems

    def checked(self) -> Contact:
        contact, problems = self.cleaned()
        _refuse_if_any(problems)
        return contact


@dataclass(frozen=True)
class Account:
    """A user as administrators see them: whether they may sign in, and how they are reached."""

    person: Person
    active: bool
    locked_until: datetime | None
    contact: Contact


def _account(user: User) -> Account:
    return Account(
        _person(user), user.active, user.locked_until, Contact(user.email, user.phone, user.locale)
    )


def _person(user: User) -> Person:
    return Person(
        user.id,
        user.username,
        user.display_name or user.username,
        user.role_keys,
        _credentials(user.password_hash),
    )


def _credentials(password_hash: str) -> str:
    """A digest of the password's (salted) hash: enough to tell passwords apart, and nothing
    to learn the password from, should a token be read."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


_PERSON = (
    select(User.id, User.username, User.display_name, User.password_hash, UserRole.role_key)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(User.id == bindparam("uid"), User.active.is_(True))
)

_CONTACT = select(User.email, User.phone, User.locale).where(User.username == bindparam("username"))


def _problem(field: str, template: str, /, **values: object) -> dict[str, list[Problem]]:
    """What is wrong with one field, as the pages show it beside the field and the CLI says it."""
    return {field: [(template, values)]}


def _refuse_if_any(problems: dict[str, list[Problem]]) -> None:
    if problems:
        raise InvalidData(problems)


def _password_problems(password: str) -> dict[str, list[Problem]]:
    if len(password) < MIN_PASSWORD:
        return _problem("password", N_("At least %(limit)s characters."), limit=MIN_PASSWORD)
    return {}


def _role_problems(session: Session, roles: list[str]) -> dict[str, list[Problem]]:
    known = set(session.scalars(select(Role.key).where(Role.key.in_(roles))))
    unknown = sorted(set(roles) - known)
    if unknown:
        return _problem(
            "roles",
            N_("There is no role %(roles)s; `complaintflow roles` lists them."),
            roles=", ".join(unknown),
        )
    return {}


class People:
    """Who is active, with which roles, as every request asks: read from the database or, on
    PostgreSQL, from a copy in memory while the database's triggers announce every change to
    users and their roles (`PEOPLE_CHANNEL`, see migration 0010). Each copy is kept with the
    channel's generation and this process's count of its own changes when the read began: a
    change announced, or made here, after that makes it stale at once — in another process as
    soon as the notification arrives (a millisecond or two after the commit). When the channel is
    not listening (starting, or its connection lost) every lookup reads."""

    LIMIT = 10_000  # copies kept at most: beyond, start again

    def __init__(self, read: Callable[[int], Person | None], channel: Channel | None) -> None:
        self._read = read
        self._channel = channel
        self._changes = 0  # made in this process: known before the notification comes back
        self._kept: dict[int, tuple[tuple[int, int], Person | None]] = {}

    def get(self, user_id: int) -> Person | None:
        channel = self._channel
        if channel is None or not channel.live:
            return self._read(user_id)
        seen = (channel.generation, self._changes)
        kept = self._kept.get(user_id)
        if kept is not None and kept[0] == seen:
            return kept[1]
        person = self._read(user_id)
        if len(self._kept) >= self.LIMIT:
            self._kept.clear()
        self._kept[user_id] = (seen, person)
        return person

    def changed(self) -> None:
        self._changes += 1  # every copy kept so far carries the old count: none is used again


PEOPLE_CHANNEL = "complaintflow_people"


class Accounts:
    def __init__(self, store: Store, secret_key: str, token_ttl_seconds: int) -> None:
        self.store = store
        self.people = People(self._read_person, store.listen(PEOPLE_CHANNEL))
        self._tokens = URLSafeTimedSerializer(secret_key, salt="complaintflow-api-token")
        self._ttl = token_ttl_seconds

    def ensure_builtin_roles(self) -> None:
        with self.store.write() as session:
            for key, description in BUILTIN_ROLES.items():
                if session.get(Role, key) is None:
                    session.add(Role(key=key, name=key, description=description))

    def create_user(
        self,
        username: str,
        password: str,
        roles: list[str],
        display_name: str = "",
        actor: str = "cli",
        contact: Contact | None = None,
    ) -> Person:
        # Every field is checked, so that a form shows all that is wrong at once.
        contact, problems = (contact or Contact()).cleaned()
        username = username.strip()
        if not username or len(username) > 100 or any(c.isspace() for c in username):
            problems |= _problem("username", N_("1 to 100 characters, without spaces."))
        problems |= _password_problems(password)
        if not roles:
            problems |= _problem("roles", N_("Give at least one role."))
        with self._changing_people() as session:
            if roles:
                problems |= _role_problems(session, roles)
            if (
                "username" not in problems
                and session.scalars(select(User.id).where(User.username == username)).first()
            ):
                problems |= _problem(
                    "username", N_("There is a user called %(name)s already."), name=username
                )
            _refuse_if_any(problems)
            user = User(
                username=username,
                password_hash=_hasher.hash(password),
                display_name=display_name or username,
                roles=[UserRole(role_key=r) for r in sorted(set(roles))],
                email=contact.email,
                phone=contact.phone,
                locale=contact.locale,
            )
            session.add(user)
            session.flush()
            audit.record(
                session, actor, "user.created", username, {"roles": sorted(set(roles))}, utcnow()
            )
            return _person(user)

    def contact_of(self, username: str) -> Contact:
        rows = self.store.rows(_CONTACT, {"username": username})  # the three columns, no roles
        if not rows:
            raise NotFound(f"there is no user called {username}")
        return Contact(rows[0].email, rows[0].phone, rows[0].locale)

    def set_contact(self, username: str, contact: Contact, actor: str) -> None:
        """Where and in which language a person's notifications reach them."""
        contact = contact.checked()
        with self.store.write() as session:
            user = self._user(session, username)
            user.email, user.phone, user.locale = contact.email, contact.phone, contact.locale
            audit.record(
                session,
                actor,
                "user.contact_changed",
                username,
                {
                    "email": bool(contact.email),
                    "phone": bool(contact.phone),
                    "locale": contact.locale,
                },
                utcnow(),
            )

    def change_roles(
        self, username: str, grant: list[str], revoke: list[str], actor: str
    ) -> Person:
        """Give and take roles, at once for every request the person makes next. Someone
        keeps at least one role: one who leaves is deactivated (`set_active`)."""
        with self._changing_people() as session:
            user = self._user(session, username)
            _refuse_if_any(_role_problems(session, grant))
            granted = sorted(set(grant) - user.role_keys)
            revoked = sorted(user.role_keys & set(revoke) - set(grant))
            if not (user.role_keys - set(revoked)) | set(granted):
                raise InvalidData(
                    _problem(
                        "roles",
                        N_("%(name)s would be left with no role; deactivate someone who leaves."),
                        name=username,
                    )
                )
            user.roles = [r for r in user.roles if r.role_key not in revoked]
            user.roles += [UserRole(role_key=key) for key in granted]
            if granted or revoked:
                audit.record(
                    session,
                    actor,
                    "user.roles_changed",
                    username,
                    {"granted": granted, "revoked": revoked},
                    utcnow(),
                )
            return _person(user)

    def set_active(self, username: str, active: bool, actor: str, reason: str) -> None:
        """Let someone sign in again, or stop them: their next request (page or API token)
        is refused."""
        if not reason.strip():
            raise InvalidData(_problem("reason", N_("Give a reason: it goes into the audit log.")))
        with self._changing_people() as session:
            user = self._user(session, username)
            if user.active == active:
                raise Conflict(f"{username} is already {'active' if active else 'deactivated'}")
            user.active = active
            action = "user.reactivated" if active else "user.deactivated"
            audit.record(session, actor, action, username, {"reason": reason.strip()}, utcnow())

    def set_password(self, username: str, password: str, actor: str) -> None:
        """A new password, by an administrator or (`change_password`) its owner; it also
        lifts a lockout."""
        _refuse_if_any(_password_problems(password))
        with self._changing_people() as session:
            user = self._user(session, username)
            user.password_hash = _hasher.hash(password)
            user.failed_logins, user.locked_until = 0, None
            audit.record(session, actor, "user.password_set", username, {}, utcnow())

    def change_password(self, username: str, current: str, new: str) -> Person:
        """A person's own change. The current password is checked as a sign-in is, failures
        counting towards the lockout, so this is no way around it. Returns the person as the
        new password signs them in."""
        _refuse_if_any(_password_problems(new))
        person = self.authenticate(username, current)
        self.set_password(username, new, username)
        changed = self.person_by_id(person.id)  # without a second argon2 check
        if changed is None:
            raise Unauthorized("the account was deactivated meanwhile")
        return changed

    def listing(self) -> list[Account]:
        """Every user, by name, with their roles and whether they may sign in."""
        with self.store.read() as session:
            return [
                _account(user)
                for user in session.scalars(
                    select(User).order_by(User.username).options(selectinload(User.roles))
                )
            ]

    def account(self, user_id: int) -> Account:
        with self.store.read() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound(f"there is no user {user_id}")
            return _account(user)

    def roles(self) -> list[Role]:
        """The roles a user may be given: the product's own first, then each procedure's."""
        with self.store.read() as session:
            return list(
                session.scalars(
                    select(Role).order_by(
                        Role.procedure_key.is_not(None), Role.procedure_key, Role.key
                    )
                )
            )

    @contextmanager
    def _changing_people(self) -> Iterator[Session]:
        """`store.write()` for a change to who someone is or what they may do: this process's
        copies are stale once it commits."""
        with self.store.write() as session:
            after_commit(session, self.people.changed)
            yield session

    @staticmethod
    def _user(session: Session, username: str) -> User:
        user = session.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise NotFound(f"there is no user called {username}")
        return user

    def authenticate(self, username: str, password: str) -> Person:
        """The person, if the password is right and the account not locked. Failures count;
        after MAX_FAILURES in a row the account waits LOCKOUT before it may try again."""
        with self.store.read() as session:  # the roles too: the person is made after it closes
            user = session.scalars(
                select(User).where(User.username == username).options(selectinload(User.roles))
            ).first()
        now = utcnow()
        if user is not None and user.locked_until is not None and user.locked_until > now:
            raise AccountLocked(max(1, round((user.locked_until - now).total_seconds() / 60)))
        try:
            # Checked against a dummy hash for unknown names: a wrong name takes as long.
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
            right = user is not None and user.active
        except (VerificationError, InvalidHashError):
            right = False
        if user is not None and not (right and user.failed_logins == 0):
            self._count_attempt(user.id, right, now)
        if not right or user is None:
            raise Unauthorized("wrong username or password")
        return _person(user)

    def _count_attempt(self, user_id: int, right: bool, now: datetime) -> None:
        with self.store.write() as session:
            user = session.get(User, user_id)
            assert user is not None
            if right:
                user.failed_logins, user.locked_until = 0, None
            else:
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILURES:
                    user.failed_logins, user.locked_until = 0, now + LOCKOUT

    def issue_token(self, person: Person) -> str:
        return self._tokens.dumps({"uid": person.id, "cred": person.credentials})

    def person_for_token(self, token: str) -> Person:
        try:
            payload = self._tokens.loads(token, max_age=self._ttl)
        except SignatureExpired:
            raise Unauthorized("the token has expired; ask for a new one") from None
        except BadSignature:
            raise Unauthorized("the token is not valid") from None
        person = self.person_by_id(payload.get("uid"))
        if person is None:
            raise Unauthorized("the token's user no longer exists or is inactive")
        if payload.get("cred") != person.credentials:
            raise Unauthorized("the password changed since this token was made; ask for a new one")
        return person

    def person_by_id(self, user_id: object) -> Person | None:
        """The active user with this id, as it is now (a role taken away counts at once): every
        API call and page asks it."""
        return self.people.get(user_id) if isinstance(user_id, int) else None

    def _read_person(self, user_id: int) -> Person | None:
        rows = self.store.rows(_PERSON, {"uid": user_id})
        if not rows:
            return None
        user = rows[0]
        roles = frozenset(row.role_key for row in rows if row.role_key is not None)
        return Person(
            user.id,
            user.username,
            user.display_name or user.username,
            roles,
            _credentials(user.password_hash),
        )
