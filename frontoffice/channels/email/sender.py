"""The outbox's email sender: builds the MIME message from the rows and hands it to the relay.

The message is built at delivery time from the outbound ``messages`` row (:class:`OutboundMessage`):
From, To, Cc (Bcc only on the envelope), our Message-ID, In-Reply-To and References (RFC 5322
§3.6.4), Date, the subject with the thread token, a text/plain part with the HTML next to it
(multipart/alternative), attachments from the blobs; signed with DKIM (RFC 6376, ``dkimpy``) when a
key is configured; sent with ``aiosmtplib`` to the relay (STARTTLS or implicit TLS, SMTP AUTH).

Outcomes (RFC 5321 §4.2.1: the first digit of the reply decides): a 4xx reply, a refused or lost
connection or a timeout is a :class:`TemporaryFailure` (the outbox tries again later); a 5xx reply
about the message or its recipients is a :class:`PermanentFailure` with the relay's reply. A relay
that refuses our login (535) is a configuration problem affecting every message, fixed by an
operator: it is retried rather than failing the agents' replies one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
import dkim

from frontoffice.services.outbox_delivery import (
    Delivery,
    OutboundMessage,
    PermanentFailure,
    TemporaryFailure,
)

__all__ = ["DKIM_SIGNED_HEADERS", "DkimKey", "EmailSender", "SmtpRelay", "build_message", "build_notice"]

# RFC 6376 §5.4.1: sign the headers a recipient sees and threads on. Missing ones (Cc, In-Reply-To
# of a first message) are signed as absent, so adding one on the way breaks the signature.
DKIM_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"auto-submitted",
)


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    """Where outbound mail goes (settings ``smtp_relay_*``)."""

    host: str = "localhost"
    port: int = 25
    # auto: STARTTLS when offered; starttls: required; tls: implicit TLS (465); none: plain.
    security: str = "auto"
    username: str = ""
    password: str = ""
    timeout_s: float = 60.0
    tls_context: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM signing key: ``selector`` (the DNS name ``<selector>._domainkey.<domain>``), the
    signing ``domain`` (None: the From address's domain) and the PEM private key."""

    selector: str
    private_key: bytes
    domain: str | None = None

    @classmethod
    def from_file(cls, path: Path, selector: str, domain: str | None = None) -> DkimKey:
        """Read the key once at start-up (a missing file fails the start, naming the file)."""
        return cls(selector=selector, private_key=path.read_bytes(), domain=domain or None)


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def _email_config(message: OutboundMessage) -> dict[str, Any]:
    block = message.entry_point_config.get("email")
    return block if isinstance(block, dict) else {}


def _from_header(message: OutboundMessage) -> str:
    name, address = parseaddr(message.sender)
    config = _email_config(message)
    address = address or str(config.get("from_address") or message.entry_point_address or "")
    name = name or str(config.get("from_name") or "")
    if not address:
        raise PermanentFailure("the message has no From address (entry point without an address)")
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=name, username=local, domain=domain))


def build_message(message: OutboundMessage, *, auto_submitted: str | None = None) -> EmailMessage:
    """The RFC 5322 message of an outbound row (without a DKIM signature)."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = _from_header(message)
    to, cc = message.recipients.get("to", []), message.recipients.get("cc", [])
    if to:
        mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    if not to and not cc:
        # RFC 5322 §3.6.3: a message to Bcc recipients only still names its audience.
        mail["To"] = "undisclosed-recipients:;"
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(message.created_at)
    if message.rfc_message_id:
        mail["Message-ID"] = _bracketed(message.rfc_message_id)
    if message.in_reply_to:
        mail["In-Reply-To"] = _bracketed(message.in_reply_to)
    if message.reference_ids:
        mail["References"] = " ".join(_bracketed(r) for r in message.reference_ids)
    if auto_submitted:
        # RFC 3834 §5: an automatic answer says so, so that the other side's responder stays quiet.
        mail["Auto-Submitted"] = auto_submitted
    mail.set_content(message.body or "")
    if message.html_body is not None:
        mail.add_alternative(message.html_body, subtype="html")
    for file in message.attachments:
        maintype, _, subtype = file.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(
            file.data,
            maintype=maintype,
            subtype=subtype,
            filename=file.filename or None,
            disposition="inline" if file.inline else "attachment",
            cid=_bracketed(file.content_id) if file.content_id else None,
        )
    return mail


def build_notice(payload: dict[str, Any]) -> EmailMessage:
    """The message of a notice to administrators (an outbox row with no ``messages`` row:
    :mod:`frontoffice.services.notices`), plain text, marked automatic."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = str(payload["from"])
    mail["To"] = ", ".join(str(a) for a in payload["to"])
    mail["Subject"] = str(payload["subject"])
    mail["Date"] = format_datetime(datetime.fromisoformat(str(payload["date"])))
    domain = parseaddr(str(payload["from"]))[1].rpartition("@")[2] or None
    mail["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834 §5: generated by the server, not a person: responders and vacation replies stay quiet.
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(str(payload["body"]))
    if payload.get("language"):  # after set_content, which replaces the Content-* headers
        mail["Content-Language"] = str(payload["language"])  # RFC 3282: the recipients' language
    return mail


def envelope_recipients(message: OutboundMessage) -> list[str]:
    """Every address the message goes to (To, Cc and Bcc), once each."""
    values: list[str] = []
    for kind in ("to", "cc", "bcc"):
        values += message.recipients.get(kind, [])
    return list(dict.fromkeys(address for _, address in getaddresses(values) if address))


def sign(data: bytes, key: DkimKey, from_address: str) -> bytes:
    """``data`` with a DKIM-Signature header in front (relaxed/relaxed, rsa-sha256)."""
    domain = key.domain or from_address.rpartition("@")[2]
    signature = dkim.sign(
        data,
        key.selector.encode(),
        domain.encode(),
        key.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=list(DKIM_SIGNED_HEADERS),
    )
    return bytes(signature) + data


class EmailSender:
    """The outbox sender of channel ``email`` (registered in ``bootstrap.py``)."""

    channel = "email"

    def __init__(self, relay: SmtpRelay, *, dkim_key: DkimKey | None = None) -> None:
        self.relay = relay
        self.dkim_key = dkim_key

    def _dkim_for(self, message: OutboundMessage) -> DkimKey | None:
        # An entry point of another client company may sign with its own domain's key.
        own = _email_config(message).get("dkim")
        if isinstance(own, dict) and own.get("selector") and own.get("private_key_file"):
            return DkimKey.from_file(Path(own["private_key_file"]), own["selector"], own.get("domain"))
        return self.dkim_key

    async def send(self, delivery: Delivery) -> str | None:
        """Build, sign and send the delivery's message; a note when some recipients were refused."""
        message = delivery.message
        if message is None and delivery.payload.get("kind") == "notice":
            return await self._send_notice(delivery.payload)
        if message is None:
            raise PermanentFailure("the outbox row names no message")
        recipients = envelope_recipients(message)
        if not recipients:
            raise PermanentFailure("the message has no recipient")
        auto = delivery.payload.get("auto_submitted")
        mail = build_message(message, auto_submitted=auto if isinstance(auto, str) else None)
        from_address = parseaddr(str(mail["From"]))[1]
        envelope_from = str(_email_config(message).get("return_path") or from_address)
        data = mail.as_bytes(policy=SMTP)
        key = self._dkim_for(message)
        if key is not None:
            # RSA signing takes milliseconds of CPU: off the event loop.
            data = await asyncio.to_thread(sign, data, key, from_address)
        refused = await self._submit(data, envelope_from, recipients)
        if refused:
            return "refused by the relay: " + "; ".join(refused)
        return None

    async def _send_notice(self, payload: dict[str, Any]) -> str | None:
        recipients = [address for _, address in getaddresses([str(a) for a in payload.get("to", [])])]
        if not recipients:
            raise PermanentFailure("the notice has no recipient")
        mail = build_notice(payload)
        from_address = parseaddr(str(mail["From"]))[1]
        data = mail.as_bytes(policy=SMTP)
        if self.dkim_key is not None:
            data = await asyncio.to_thread(sign, data, self.dkim_key, from_address)
        refused = await self._submit(data, from_address, recipients)
        return "refused by the relay: " + "; ".join(refused) if refused else None

    async def _submit(self, data: bytes, envelope_from: str, recipients: Sequence[str]) -> list[str]:
        relay = self.relay
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            username=relay.username or None,
            password=relay.password or None,
            use_tls=relay.security == "tls",
            start_tls={"auto": None, "starttls": True, "none": False, "tls": False}[relay.security],
            tls_context=relay.tls_context,
            timeout=relay.timeout_s,
        )
        accepted = False
        try:
            await client.connect()  # STARTTLS and login as configured
            errors, _ = await client.sendmail(envelope_from, list(recipients), data)
            accepted = True
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reasons = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if all(r.code >= 500 for r in exc.recipients):
                raise PermanentFailure(reasons) from None
            raise TemporaryFailure(reasons) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(f"the relay refused our login: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"{exc.code} {exc.message}"
            if exc.code >= 500:
                raise PermanentFailure(reason) from None
            raise TemporaryFailure(reason) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"{relay.host}:{relay.port}: {exc}") from None
        finally:
            # Closed without QUIT after a failure or a cancellation (the node stopping): waiting for
            # the relay's goodbye would hold the shutdown for a whole timeout.
            if not accepted:
                client.close()
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()  # the message is accepted; a lost goodbye changes nothing
        client.close()
        return [f"{address}: {response.code} {response.message}" for address, response in errors.items()]
