"""TLS for the connections Frontoffice opens (SIP over TLS, IMAP, OAuth2 token endpoints)."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["client_context"]


def client_context(cafile: str | Path | None = None) -> ssl.SSLContext:
    """For connections we open: verify the server and its host name (the system's CAs, or
    ``cafile``), TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
