"""The product's parts, built once from the settings and shared by the web app and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from .accounts import Accounts
from .attachments import AttachmentStore
from .config import Settings
from .db import Store
from .dispatch import load_channels
from .engine import Engine
from .errors import ConfigError
from .handlers import load_handlers
from .integrations import Integrations
from .notices import Subscribers
from .sla import SlaTable, duration


@dataclass
class Services:
    settings: Settings
    store: Store
    engine: Engine
    accounts: Accounts
    attachments: AttachmentStore
    integrations: Integrations

    @classmethod
    def build(cls, settings: Settings) -> Services:
        try:
            duration(settings.deadline_warning)
        except ValueError:
            raise ConfigError(
                f"COMPLAINTFLOW_DEADLINE_WARNING must be an ISO 8601 duration such as PT15M,"
                f" not {settings.deadline_warning!r}"
            ) from None
        load_channels()
        store = Store(settings)
        sla = SlaTable(settings.bpmn_dir / "sla.json", settings.sla_overrides)
        subscribers = Subscribers()
        engine = Engine(store, sla, load_handlers(), subscribers)
        accounts = Accounts(store, settings.secret_key, settings.token_ttl_seconds)
        return cls(
            settings,
            store,
            engine,
            accounts,
            AttachmentStore(settings.attachments_dir),
            Integrations(store, subscribers),
        )
