"""The IMAP connector (placeholder until the connector lands)."""

from __future__ import annotations

from collections.abc import Sequence

from frontoffice.config_imap import ImapMailboxSettings
from frontoffice.services.email_intake import EmailIntake

__all__ = ["ImapConnector"]


class ImapConnector:
    def __init__(self, email: EmailIntake, mailboxes: Sequence[ImapMailboxSettings]) -> None:
        self.email = email
        self.mailboxes = tuple(mailboxes)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
