"""Settings, read from the environment once.

Every other module receives a `Settings` object; none reads `os.environ` itself, so tests and the
CLI can build the whole product from one explicit configuration.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    secret_key: str
    bpmn_dir: Path = REPO_ROOT / "bpmn"
    # {"<procedure key>": {"<timer name>": "<ISO 8601 duration>"}}
    sla_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    token_ttl_seconds: int = 12 * 3600
    # Times on pages are shown in this zone (the seeds' region by default).
    timezone: str = "Asia/Hong_Kong"
    # Where complainants reach the public pages (QR codes, status links); the request's own
    # address when empty.
    public_url: str = ""
    # Public intake: how many complaints one address may file ("N per period; M per period").
    intake_limit: str = "10 per hour;50 per day"
    # A public form sent back sooner than this is taken for a robot.
    intake_min_seconds: float = 3.0
    # Email: the SMTP server notifications are sent through; none configured sends no email.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: str = ""
    mail_from: str = "complaintflow@localhost"
    # SMS: a gateway's HTTP endpoint taking {"to", "text"} as JSON, with its bearer token.
    sms_url: str = ""
    sms_token: str = ""
    # Outbox: attempts before a message is dead (seen by an admin), and the webhooks' limits.
    outbox_max_attempts: int = 8
    # Work handed out (a message to deliver, a timer to fire) and not done this long is taken
    # for lost, its taker for dead: it is handed out again.
    lease_seconds: float = 60.0
    webhook_secrets: dict[str, list[str]] = field(default_factory=dict)
    webhook_max_bytes: int = 1024 * 1024
    # A warning goes out this long before a deadline passes (ISO 8601 duration).
    deadline_warning: str = "PT15M"
    # How often `serve` (or the scheduler) looks for due timers; half the promised 2 s lateness.
    timer_poll_seconds: float = 0.5
    # The scaled mode: a Celery broker (redis://…). Without it, `serve` does the background work.
    broker_url: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def scaled(self) -> bool:
        """Background work goes through Celery (`complaintflow scheduler` and `worker`)."""
        return bool(self.broker_url)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("COMPLAINTFLOW_HOME", "var")).resolve()
        database_url = (
            env.get("COMPLAINTFLOW_DATABASE_URL") or f"sqlite:///{home / 'complaintflow.db'}"
        )
        return cls(
            home=home,
            database_url=database_url,
            secret_key=env.get("COMPLAINTFLOW_SECRET_KEY") or _stored_secret(home),
            bpmn_dir=Path(env.get("COMPLAINTFLOW_BPMN_DIR", REPO_ROOT / "bpmn")).resolve(),
            sla_overrides=_parse_sla_overrides(env.get("COMPLAINTFLOW_SLA_OVERRIDES", "")),
            token_ttl_seconds=int(env.get("COMPLAINTFLOW_TOKEN_TTL", 12 * 3600)),
            timezone=_timezone(env.get("COMPLAINTFLOW_TIMEZONE", "Asia/Hong_Kong")),
            public_url=env.get("COMPLAINTFLOW_PUBLIC_URL", "").rstrip("/"),
            intake_limit=env.get("COMPLAINTFLOW_INTAKE_LIMIT", "10 per hour;50 per day"),
            intake_min_seconds=float(env.get("COMPLAINTFLOW_INTAKE_MIN_SECONDS", 3)),
            smtp_host=env.get("COMPLAINTFLOW_SMTP_HOST", ""),
            smtp_port=int(env.get("COMPLAINTFLOW_SMTP_PORT", 587)),
            smtp_starttls=env.get("COMPLAINTFLOW_SMTP_STARTTLS", "yes").lower()
            in ("1", "yes", "true"),
            smtp_user=env.get("COMPLAINTFLOW_SMTP_USER", ""),
            smtp_password=env.get("COMPLAINTFLOW_SMTP_PASSWORD", ""),
            mail_from=env.get("COMPLAINTFLOW_MAIL_FROM", "complaintflow@localhost"),
            sms_url=env.get("COMPLAINTFLOW_SMS_URL", ""),
            sms_token=env.get("COMPLAINTFLOW_SMS_TOKEN", ""),
            outbox_max_attempts=int(env.get("COMPLAINTFLOW_OUTBOX_MAX_ATTEMPTS", 8)),
            lease_seconds=float(env.get("COMPLAINTFLOW_LEASE_SECONDS", 60)),
            webhook_secrets=_parse_secrets(env.get("COMPLAINTFLOW_WEBHOOK_SECRETS", "")),
            webhook_max_bytes=int(env.get("COMPLAINTFLOW_WEBHOOK_MAX_BYTES", 1024 * 1024)),
            deadline_warning=env.get("COMPLAINTFLOW_DEADLINE_WARNING", "PT15M"),
            broker_url=env.get("COMPLAINTFLOW_BROKER_URL", ""),
        )

    @property
    def attachments_dir(self) -> Path:
        return self.home / "attachments"


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"COMPLAINTFLOW_TIMEZONE {name!r} is not a time zone such as Asia/Hong_Kong"
        ) from None
    return name


def _stored_secret(home: Path) -> str:
    """A secret kept under the home directory, so sessions and tokens survive restarts."""
    path = home / "secret_key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _parse_sla_overrides(raw: str) -> dict[str, dict[str, str]]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"COMPLAINTFLOW_SLA_OVERRIDES is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict) or not all(
        isinstance(timers, dict) and all(isinstance(d, str) for d in timers.values())
        for timers in value.values()
    ):
        raise ConfigError(
            'COMPLAINTFLOW_SLA_OVERRIDES must look like {"<procedure>": {"<timer>": "PT30M"}}'
        )
    return value


def _parse_secrets(raw: str) -> dict[str, list[str]]:
    """{"<source>": "<secret>"} (or a list of two during a rotation)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"COMPLAINTFLOW_WEBHOOK_SECRETS is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ConfigError('COMPLAINTFLOW_WEBHOOK_SECRETS must look like {"<source>": "<secret>"}')
    secrets_by_source = {}
    for source, secret in value.items():
        listed = [secret] if isinstance(secret, str) else secret
        if not isinstance(listed, list) or not all(isinstance(s, str) and s for s in listed):
            raise ConfigError(
                f"COMPLAINTFLOW_WEBHOOK_SECRETS: the secret of {source!r} must be text"
            )
        secrets_by_source[str(source)] = listed
    return secrets_by_source
