"""The product's parts, built once from the settings and shared by the web app and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from .accounts import Accounts
from .attachments import AttachmentStore
from .config import Settings
from .db import Store
from .engine import Engine
from .handlers import load_handlers
from .sla import SlaTable


@dataclass
class Services:
    settings: Settings
    store: Store
    engine: Engine
    accounts: Accounts
    attachments: AttachmentStore

    @classmethod
    def build(cls, settings: Settings) -> Services:
        store = Store(settings)
        sla = SlaTable(settings.bpmn_dir / "sla.json", settings.sla_overrides)
        engine = Engine(store, sla, load_handlers())
        accounts = Accounts(store, settings.secret_key, settings.token_ttl_seconds)
        return cls(settings, store, engine, accounts, AttachmentStore(settings.attachments_dir))
