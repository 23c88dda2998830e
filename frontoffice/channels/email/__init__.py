"""The email channel: mail in over SMTP (``smtp``) and IMAP (``imap``, on ``imap_client``: aioimaplib
with STARTTLS, an XOAUTH2 that ends when the token is refused, and a lost connection that ends what
waits on it; XOAUTH2's access tokens from the provider's token endpoint in ``oauth2``), parsed by
a sans-IO parser (``parsing``, ``display``), taken in by ``services/email_intake.py`` (threads,
dedupe, noise); mail out through the outbox's email sender (``sender``: the MIME message from the
rows, DKIM, aiosmtplib).

The parser and the display helpers are pure; the SMTP server and the IMAP connector are thin
asyncio adapters that acknowledge (``250``, ``\\Seen``) only after the intake's commit. Mail out:
``sender`` (the outbox's email sender, aiosmtplib to the configured relay).
"""

from .display import FoldRange, allow_remote_images, fold_ranges, html_to_text, sanitize_html
from .parsing import (
    MAX_ATTACHMENT_BYTES,
    MAX_MESSAGE_BYTES,
    DeliveryReport,
    ParsedAttachment,
    ParsedEmail,
    parse_email,
)

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "MAX_MESSAGE_BYTES",
    "DeliveryReport",
    "FoldRange",
    "ParsedAttachment",
    "ParsedEmail",
    "allow_remote_images",
    "fold_ranges",
    "html_to_text",
    "parse_email",
    "sanitize_html",
]
