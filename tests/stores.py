"""Opening stores the way separate processes would."""

from __future__ import annotations

import secrets

from domain.application import Ledger
from service.settings import Settings


def unique_name(prefix: str = "t") -> str:
    """A tenant name no other test uses, so tests can share a store."""
    return f"{prefix}-{secrets.token_hex(4)}"


def open_ledger(settings: Settings) -> Ledger:
    """A Ledger on `settings`' store, as a separate process would build it."""
    return Ledger(env=settings.eventsourcing_env(Ledger.name))
