"""Versions of a procedure and their document control (the seed's A-doc footer).

A deployed diagram is a draft, prepared (編制) by whoever deployed it. A second person reviews it
(審核) and a third approves it (批准), naming when it takes effect (生效日期): at once or later.
New complaints start on the highest-numbered approved version whose date has come; running
complaints keep theirs. An approved version may be withdrawn until its date comes. Each step
goes into the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from .. import audit
from ..diagrams import CompiledDiagram, content_hash, forms_from
from ..errors import ComplaintflowError, Conflict, Forbidden, InvalidDiagram, NotFound
from ..models import AuditEntry, Instance, Procedure, ProcedureVersion, Role, utcnow
from ..validation import Checked, check_bundle, check_file

if TYPE_CHECKING:
    from ..db import Store
    from ..handlers import HandlerRegistry
    from ..sla import SlaTable

SYSTEM = "system"


@dataclass(frozen=True)
class Deployed:
    key: str
    version: int
    created: bool
    status: str
    # The rejected or withdrawn version this draft is exactly the same as, submitted again.
    resubmits: int | None = None


@dataclass(frozen=True)
class ProcedureRow:
    procedure: Procedure
    current: ProcedureVersion | None  # None until its first version is approved and in effect
    versions: list[ProcedureVersion]  # every one, newest first

    @property
    def waiting(self) -> list[ProcedureVersion]:
        """The versions waiting for a sign-off, newest first."""
        return [v for v in self.versions if v.status in ("draft", "reviewed")]


# A version in one of these states is closed: the same file again is a new submission.
_CLOSED = ("rejected", "withdrawn")


def _in_effect(at: datetime | None) -> tuple[Any, ...]:
    """What makes a version one complaints may start on (at `at`, or now): approved, its date
    come."""
    return (
        ProcedureVersion.status == "approved",
        ProcedureVersion.effective_from <= (at or utcnow()),
    )


class VersionActs:
    """Mixed into Engine, whose store, handlers, deadlines and diagram cache these use."""

    store: Store
    handlers: HandlerRegistry
    sla: SlaTable
    _diagrams: dict[int, CompiledDiagram]

    # -- which version is in effect -----------------------------------------------------

    @staticmethod
    def current_version(session: Session, key: str, at: datetime | None = None) -> ProcedureVersion:
        """The version new complaints start on: the highest-numbered approved one whose date
        has come. By number, not by date: a later version supersedes an earlier one still
        waiting for its date, which then never takes effect (as a newer revision of a written
        procedure replaces one not yet issued)."""
        version = session.scalars(
            select(ProcedureVersion)
            .where(ProcedureVersion.procedure_key == key, *_in_effect(at))
            .order_by(ProcedureVersion.version.desc())
            .limit(1)
        ).first()
        if version is None:
            raise NotFound(f"there is no procedure '{key}' in effect")
        return version

    @staticmethod
    def current_versions(session: Session) -> dict[str, ProcedureVersion]:
        """`current_version` of every procedure that has one, by key, in the procedures' order,
        in one statement. A procedure whose first version still waits for its sign-offs has
        none, and is left out."""
        current: dict[str, ProcedureVersion] = {}
        for version in session.scalars(
            select(ProcedureVersion)
            .join(ProcedureVersion.procedure)
            .where(*_in_effect(None))
            .order_by(Procedure.number_prefix, Procedure.key, ProcedureVersion.version.desc())
            .options(contains_eager(ProcedureVersion.procedure))
        ):
            current.setdefault(version.procedure_key, version)
        return current

    @staticmethod
    def procedure_rows(session: Session) -> list[ProcedureRow]:
        """Every procedure, in order, with its version in effect and all its versions: what a
        process owner looks at first. Three statements, however many there are."""
        current = VersionActs.current_versions(session)
        versions: dict[str, list[ProcedureVersion]] = {}
        for version in session.scalars(
            select(ProcedureVersion).order_by(ProcedureVersion.version.desc())
        ):
            versions.setdefault(version.procedure_key, []).append(version)
        return [
            ProcedureRow(p, current.get(p.key), versions[p.key])
            for p in session.scalars(
                select(Procedure).order_by(Procedure.number_prefix, Procedure.key)
            )
        ]

    @staticmethod
    def version(session: Session, key: str, number: int) -> ProcedureVersion:
        found = session.scalars(
            select(ProcedureVersion).where(
                ProcedureVersion.procedure_key == key, ProcedureVersion.version == number
            )
        ).first()
        if found is None:
            raise NotFound(f"procedure '{key}' has no version {number}")
        return found

    @staticmethod
    def versions(session: Session, key: str) -> list[tuple[ProcedureVersion, int, int]]:
        """Every version, newest first, with how many complaints run and ran on it."""
        counts = dict(
            session.execute(
                select(Instance.version_id, func.count())
                .where(Instance.status == "running")
                .group_by(Instance.version_id)
            ).all()
        )
        totals = dict(
            session.execute(
                select(Instance.version_id, func.count()).group_by(Instance.version_id)
            ).all()
        )
        rows = session.scalars(
            select(ProcedureVersion)
            .where(ProcedureVersion.procedure_key == key)
            .order_by(ProcedureVersion.version.desc())
        ).all()
        return [(v, counts.get(v.id, 0), totals.get(v.id, 0)) for v in rows]

    # -- deploying drafts ---------------------------------------------------------------

    def check(self, path: Path) -> Checked:
        """Read a diagram and its forms and check them; InvalidDiagram lists every finding."""
        return check_file(path, self.handlers, self.sla)

    def check_upload(
        self,
        content: bytes,
        forms: dict[str, Any],
        source: str,
        base: tuple[str, int] | None = None,
    ) -> Checked:
        """Check an uploaded (or edited) diagram: its forms are those uploaded with it, then
        those of the version it was edited from."""
        available = dict(self._stored_forms(*base)) if base else {}
        available.update(forms)
        return check_bundle(
            content, source, self.handlers, self.sla, lambda process: forms_from(available, process)
        )

    def _stored_forms(self, key: str, number: int) -> dict[str, Any]:
        with self.store.read() as session:
            return dict(self.version(session, key, number).forms)

    def deploy(self, path: Path, actor: str, resubmit: bool = False) -> Deployed:
        return self.store_draft(self.check(path), actor, str(path), resubmit)

    def store_draft(
        self, checked: Checked, actor: str, source: str, resubmit: bool = False
    ) -> Deployed:
        """Store a checked diagram as a draft of its procedure's next version, unless the
        newest version is already exactly this. With `resubmit` (a person submitting a file),
        the same file as a rejected or withdrawn newest version is a new draft: as in any
        document control, the refusal stays on record and the file is reviewed again. Without
        it (setting up, which runs again and again) nothing is stored."""
        diagram = checked.diagram
        digest = content_hash(checked.content, checked.forms)
        with self.store.write() as session:
            procedure = self._procedure_for(session, diagram, source)
            latest = procedure.versions[-1] if procedure.versions else None
            same = latest is not None and latest.sha256 == digest
            if latest is not None and same and not (resubmit and latest.status in _CLOSED):
                return Deployed(diagram.key, latest.version, False, latest.status)
            resubmits = latest.version if latest is not None and same else None
            self._roles_for(session, diagram, source)
            version = ProcedureVersion(
                procedure=procedure,
                version=latest.version + 1 if latest else 1,
                bpmn_xml=checked.content.decode("utf-8"),
                forms=checked.forms,
                sha256=digest,
                deployed_by=actor,
                status="draft",
            )
            session.add(version)
            session.flush()
            audit.record(
                session,
                actor,
                "procedure.deployed",
                f"{diagram.key} v{version.version}",
                {
                    "key": diagram.key,
                    "version": version.version,
                    "sha256": digest,
                    "name": diagram.name,
                    **({"resubmits": resubmits} if resubmits else {}),
                },
                utcnow(),
            )
            self._diagrams[version.id] = diagram
            return Deployed(diagram.key, version.version, True, "draft", resubmits)

    @staticmethod
    def _procedure_for(session: Session, diagram: CompiledDiagram, source: str) -> Procedure:
        holder = session.scalars(
            select(Procedure).where(Procedure.number_prefix == diagram.number_prefix)
        ).first()
        if holder is not None and holder.key != diagram.key:
            raise InvalidDiagram(
                source,
                [
                    f"numberPrefix {diagram.number_prefix} already numbers procedure"
                    f" '{holder.key}'; choose another letter"
                ],
            )
        procedure = session.get(Procedure, diagram.key)
        if procedure is None:
            procedure = Procedure(
                key=diagram.key, name=diagram.name, number_prefix=diagram.number_prefix
            )
            session.add(procedure)
        procedure.name = diagram.name
        return procedure

    @staticmethod
    def _roles_for(session: Session, diagram: CompiledDiagram, source: str) -> None:
        for lane in diagram.lanes:
            role = session.get(Role, lane.key)
            if role is None:
                session.add(
                    Role(
                        key=lane.key,
                        name=lane.name,
                        description=lane.description,
                        procedure_key=diagram.key,
                    )
                )
            elif role.procedure_key != diagram.key:
                raise InvalidDiagram(
                    source,
                    [
                        f"lane {lane.key} ({lane.name}): the role key '{lane.key}' already belongs"
                        f" to {role.procedure_key or 'the product'}; give this lane another id"
                    ],
                )
            else:
                role.name, role.description = lane.name, lane.description

    # -- signing off --------------------------------------------------------------------

    def review(self, key: str, number: int, actor: str, accept: bool, comment: str) -> None:
        """審核: a second person reviews a draft, accepting it for approval or rejecting it."""
        with self.store.write() as session:
            version = self.version(session, key, number)
            if version.status != "draft":
                raise Conflict(f"version {number} is {version.status}; only a draft is reviewed")
            if actor == version.deployed_by:
                raise Forbidden("the person who prepared a version may not review it")
            now = utcnow()
            version.reviewed_by, version.reviewed_at = actor, now
            version.review_comment = comment
            version.status = "reviewed" if accept else "rejected"
            action = "procedure.reviewed" if accept else "procedure.rejected"
            audit.record(
                session,
                actor,
                action,
                f"{key} v{number}",
                {"comment": comment, "stage": "review"},
                now,
            )

    def approve(
        self,
        key: str,
        number: int,
        actor: str,
        accept: bool,
        comment: str,
        effective_from: datetime | None = None,
    ) -> None:
        """批准: a third person approves a reviewed version, which takes effect at its date."""
        with self.store.write() as session:
            version = self.version(session, key, number)
            if version.status != "reviewed":
                raise Conflict(f"version {number} is {version.status}; approval needs a review")
            if actor in (version.deployed_by, version.reviewed_by):
                raise Forbidden("the approver must be neither who prepared nor who reviewed it")
            now = utcnow()
            if effective_from is not None and effective_from < now:
                raise ComplaintflowError("the effective date is in the past; give now or later")
            if accept:
                self._not_superseded(session, version, effective_from or now)
            version.approved_by, version.approved_at = actor, now
            version.approval_comment = comment
            version.status = "approved" if accept else "rejected"
            if accept:
                version.effective_from = effective_from or now
            action = "procedure.approved" if accept else "procedure.rejected"
            audit.record(
                session,
                actor,
                action,
                f"{key} v{number}",
                {
                    "comment": comment,
                    "stage": "approval",
                    "effective_from": version.effective_from.isoformat()
                    if version.effective_from
                    else None,
                },
                now,
            )

    @staticmethod
    def _not_superseded(session: Session, version: ProcedureVersion, effective: datetime) -> None:
        """Refuse approving a version that would never take effect: a higher-numbered one is
        approved to be in effect by then."""
        newer = session.scalars(
            select(ProcedureVersion)
            .where(
                ProcedureVersion.procedure_key == version.procedure_key,
                ProcedureVersion.status == "approved",
                ProcedureVersion.version > version.version,
                ProcedureVersion.effective_from <= effective,
            )
            .order_by(ProcedureVersion.version.desc())
            .limit(1)
        ).first()
        if newer is not None:
            raise Conflict(
                f"version {newer.version} is newer and in effect by then, so version"
                f" {version.version} would never take effect; reject it instead"
            )

    def withdraw(self, key: str, number: int, actor: str, reason: str) -> None:
        """Take back an approved version before its effective date; it then never takes
        effect. Once in effect it stays on record: a newer version replaces it."""
        if not reason.strip():
            raise ComplaintflowError("give a reason for withdrawing it; it goes into the audit log")
        with self.store.write() as session:
            version = self.version(session, key, number)
            if version.status != "approved":
                raise Conflict(
                    f"version {number} is {version.status}; only an approved version not yet"
                    " in effect can be withdrawn"
                )
            now = utcnow()
            assert version.effective_from is not None  # every approved version has its date
            if version.effective_from <= now:
                raise Conflict(
                    f"version {number} has been in effect since"
                    f" {version.effective_from.isoformat(timespec='minutes')}; a version in effect"
                    " is not withdrawn: approve a newer version to replace it"
                )
            moved = session.scalar(
                select(func.count()).select_from(Instance).where(Instance.version_id == version.id)
            )
            if moved:
                raise Conflict(
                    f"{moved} complaint(s) were moved onto version {number}; it cannot be"
                    " withdrawn while they run on it"
                )
            version.status = "withdrawn"
            audit.record(
                session,
                actor,
                "procedure.withdrawn",
                f"{key} v{number}",
                {
                    "reason": reason.strip(),
                    "effective_from": version.effective_from.isoformat(),
                },
                now,
            )

    @staticmethod
    def withdrawal(session: Session, key: str, number: int) -> AuditEntry | None:
        """Who withdrew a version, when and why (the audit log keeps it)."""
        return session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "procedure.withdrawn", AuditEntry.subject == f"{key} v{number}"
            )
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).first()

    def put_in_effect(self, key: str, number: int, reason: str) -> None:
        """For a procedure with no version in effect yet (a new installation): the bundled
        version takes effect at once, signed off by the system, with the reason."""
        with self.store.write() as session:
            try:
                self.current_version(session, key)
                return
            except NotFound:
                pass
            version = self.version(session, key, number)
            now = utcnow()
            version.status, version.effective_from = "approved", now
            version.reviewed_by = version.approved_by = SYSTEM
            version.reviewed_at = version.approved_at = now
            version.review_comment = version.approval_comment = reason
            audit.record(
                session,
                SYSTEM,
                "procedure.approved",
                f"{key} v{number}",
                {"comment": reason, "stage": "bootstrap", "effective_from": now.isoformat()},
                now,
            )
