"""The email parser: the bytes of a message (RFC 5322 / MIME, RFC 2045-2049) in, a
:class:`ParsedEmail` out. Sans-IO and pure: no database, no files, no clock.

Built on the standard ``email`` package: its ``compat32`` parser splits the message into parts and
keeps the headers as the raw strings they arrived as, and only the headers the intake uses are
decoded (RFC 2047 encoded words with :func:`email.header.decode_header`, RFC 2231 parameters with the
parser's own ``get_param``). ``policy.default`` builds a header object for every header it is asked
for, and re-parses ``Content-Type`` each time a part's type is asked (about thirty times per
message here): three quarters of the parse time of a typical message, for nothing the intake needs
(``bench/email_intake.py``; docs/email.md, "Speed"). Around it, what real mail needs:

- bodies whose declared charset is wrong or missing (KOI8-R labelled windows-1251, 8-bit text
  labelled us-ascii, raw 8-bit headers): strict decodes are tried and a Russian-letter score picks
  between the single-byte Cyrillic charsets, which decode any byte;
- ``multipart/alternative``: the text part is the body, the HTML part is kept sanitised (remote
  images blocked, :mod:`.display`);
- attachments and inline images (``Content-ID``) returned with their bytes, under size limits;
  TNEF (``winmail.dat``), calendar invites (``text/calendar``) and attached messages stay attachments;
- auto-replies (RFC 3834 ``Auto-Submitted``, ``Precedence``, ``X-Autoreply``,
  ``X-Auto-Response-Suppress``), mailing lists (``List-Id``), and delivery status notifications
  (RFC 3464 ``multipart/report``) recognised;
- a message the parser cannot read is not an exception to the caller: it comes back with
  ``parse_error`` set, its text as well as can be recovered, so it is stored raw and flagged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from .display import FoldRange, fold_ranges, html_to_text, sanitize_html, signature_phone

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENT_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_MIME_PARTS",
    "DeliveryReport",
    "ParsedAttachment",
    "ParsedEmail",
    "decode_text",
    "message_ids",
    "parse_email",
]

# The largest message accepted (SMTP SIZE, RFC 1870): 25 MiB after transfer encoding, what Gmail,
# Yandex and Mail.ru let their users send, so a customer's mail that left their provider fits.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
# One attachment at most (decoded): a message under MAX_MESSAGE_BYTES cannot carry more (base64
# adds a third), so this only bites on a message that is itself over the limit (IMAP has no SIZE).
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
# Attachments kept per message: real mail carries a few, a scan a few dozen; a message of
# thousands of parts is an attack on the blob store, and the rest are listed as dropped.
MAX_ATTACHMENTS = 100
# MIME parts walked at most: past it the structure is abuse (or broken) and the message is flagged.
MAX_MIME_PARTS = 1000
# Text kept of a body: a help-desk message is read by a person; a 5 MB "text" is a log dump, and
# the whole of it stays in the raw message anyway.
MAX_BODY_CHARS = 1_000_000

# Charsets tried, in order, when the declared one fails or is missing; the single-byte Cyrillic ones
# decode every byte, so between them the Russian-letter score decides.
_FALLBACK_CHARSETS = ("utf-8", "windows-1251", "koi8-r", "iso-8859-5", "cp866")
_SINGLE_BYTE_CYRILLIC = frozenset({"windows-1251", "cp1251", "koi8-r", "koi8-u", "iso-8859-5", "cp866"})
# The most frequent Russian letters (about 60% of running text): a right decode is full of them,
# a wrong single-byte decode of Cyrillic is mostly upper case and pseudo-graphics.
_COMMON_RUSSIAN = frozenset("оеаинтсрвлкмдпуяыьгзбч")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,995})>")
# The raw-header parser (see the module's docstring): headers stay strings until one is asked for.
_PARSER = BytesParser(policy=policy.compat32)
# An attached message is stored as it arrived: its raw headers, CRLF line ends (RFC 5322 §2.1).
_AS_RECEIVED = policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """A file of the message: as it named it (``filename``, ``content_type``), its decoded bytes,
    and for an inline image its ``Content-ID`` (without brackets)."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """An RFC 3464 delivery status notification: the message it reports on (``original_message_id``,
    from the returned headers), the recipients that failed, and why (``status`` like 5.1.1 and the
    remote server's ``diagnostic``). ``failed`` is false for delayed/delivered/relayed reports."""

    original_message_id: str | None
    recipients: tuple[str, ...]
    action: str
    status: str
    diagnostic: str

    @property
    def failed(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """A parsed message. Addresses are lower-cased ``local@domain``; ids have no angle brackets;
    ``references`` are oldest first (RFC 5322 §3.6.4)."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    sender: str
    sender_name: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    date: datetime | None = None
    text: str = ""
    html: str | None = None
    remote_images_blocked: bool = False
    attachments: tuple[ParsedAttachment, ...] = ()
    dropped_attachments: tuple[str, ...] = ()
    auto_reply: bool = False
    auto_reply_reason: str = ""
    mailing_list: bool = False
    bounce: DeliveryReport | None = None
    folds: tuple[FoldRange, ...] = ()
    signature_phone: str | None = None
    charset_fallback: bool = False
    parse_error: str | None = None
    header_names: frozenset[str] = field(default_factory=frozenset)


def message_ids(value: str | None) -> tuple[str, ...]:
    """The message ids in a Message-ID / In-Reply-To / References value, without brackets, in order.
    A bare id without brackets (some old clients) counts when it is the whole value."""
    if not value:
        return ()
    found = tuple(_MESSAGE_ID.findall(value))
    if found:
        return found
    bare = value.strip()
    return (bare,) if bare and " " not in bare and "@" in bare else ()


def _russian_score(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if c in _COMMON_RUSSIAN) / len(letters)


def decode_text(data: bytes, declared: str | None) -> tuple[str, bool]:
    """Decode a body (or a raw 8-bit header) whose declared charset may be wrong or missing; returns
    the text and whether a charset other than the declared one was used. NUL characters (which
    PostgreSQL's text cannot hold, and no mail text means) become U+FFFD."""
    text, fallback = _decode_text(data, declared)
    return text.replace("\x00", "\ufffd"), fallback


def _decode_text(data: bytes, declared: str | None) -> tuple[str, bool]:
    declared_name = (declared or "").strip().lower() or None
    eight_bit = not data.isascii()
    if declared_name in {"us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown"}:
        declared_name = None if eight_bit else "us-ascii"
    if eight_bit:
        # Valid UTF-8 with multi-byte sequences is UTF-8 whatever the label says: text in a
        # single-byte charset almost never forms valid UTF-8 sequences by chance.
        try:
            return data.decode("utf-8"), declared_name not in {"utf-8", "utf8"}
        except UnicodeDecodeError:
            pass
    candidates: list[tuple[str, str]] = []
    for charset in ([declared_name] if declared_name else []) + list(_FALLBACK_CHARSETS):
        try:
            candidates.append((charset, data.decode(charset)))
        except (LookupError, UnicodeDecodeError):
            continue
        # A strict UTF-8 decode (declared or not) of 8-bit data is not a coincidence.
        if charset in {"utf-8", "utf8", "us-ascii"} or (
            charset == declared_name and charset not in _SINGLE_BYTE_CYRILLIC
        ):
            return candidates[-1][1], charset != declared_name
    if not candidates:  # nothing decodes cleanly: keep what can be read
        return data.decode("utf-8", errors="replace"), True
    first_charset, first_text = candidates[0]
    best_charset, best_text = max(candidates, key=lambda c: _russian_score(c[1]))
    # Keep the declared charset unless another reads clearly better.
    if _russian_score(best_text) > _russian_score(first_text) + 0.15:
        return best_text, best_charset != declared_name
    return first_text, first_charset != declared_name


class _Headers:
    """A message's top-level headers by lower-cased name, as the raw strings they arrived as
    (non-ASCII bytes as ``surrogateescape`` characters: the parser read the bytes as ASCII)."""

    def __init__(self, msg: Message) -> None:
        self.all: dict[str, list[str]] = {}
        for key, value in msg.raw_items():
            self.all.setdefault(key.lower(), []).append(str(value))

    def raw(self, name: str) -> str | None:
        """The first ``name`` header's raw value, or ``None``."""
        values = self.all.get(name.lower())
        return values[0] if values else None

    def text(self, name: str) -> str:
        """The first ``name`` header as text, on one line (see :func:`_header_value`)."""
        return _header_value(self.raw(name))


def _has_8bit(value: str) -> bool:
    return not value.isascii() and any("\udc80" <= c <= "\udcff" for c in value)


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded (each with the charset fallbacks of a body: a word labelled
    with the wrong charset is read as well as a body would be)."""
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # a malformed encoded word: the value as it is
        return value
    out: list[str] = []
    for data, charset in chunks:
        if isinstance(data, str):
            out.append(data)
        elif charset is None or charset in {"unknown-8bit", "us-ascii"}:
            out.append(data.decode("ascii", "replace"))
        else:
            out.append(decode_text(data, charset)[0])
    return "".join(out)


def _header_value(raw_value: str | None) -> str:
    """A raw header value as text: plain ASCII as it is, RFC 2047 encoded words decoded, raw 8-bit
    bytes (not encoded, as old clients send them) decoded like a body, not turned into replacement
    characters; folding and runs of white space become one space."""
    if raw_value is None:
        return ""
    if _has_8bit(raw_value):
        text, _ = decode_text(raw_value.encode("ascii", "surrogateescape"), None)
        return " ".join(text.split())
    return " ".join(_decode_words(raw_value).replace("\x00", "\ufffd").split())


def _addresses(headers: _Headers, name: str) -> tuple[str, ...]:
    values = headers.all.get(name.lower(), [])
    out = [addr.lower() for _, addr in getaddresses([_header_value(v) for v in values]) if "@" in addr]
    return tuple(dict.fromkeys(out))


def _sender(headers: _Headers) -> tuple[str, str]:
    raw = headers.raw("From")
    if raw is None:
        return "", ""
    if _has_8bit(raw):
        raw, _ = decode_text(raw.encode("ascii", "surrogateescape"), None)
    # Addresses first, then the display name's encoded words: a decoded name may hold a comma.
    for name, addr in getaddresses([" ".join(raw.split())]):
        if addr or name:
            return addr.lower(), _header_text(_decode_words(name))
    return "", ""


def _header_text(value: str) -> str:
    if _has_8bit(value):
        value, _ = decode_text(value.encode("utf-8", "surrogateescape"), None)
    return value.replace("\x00", "\ufffd").strip()


def _auto_reply(headers: _Headers, subject: str) -> tuple[bool, str]:
    """RFC 3834 and the headers clients put on automatic mail in practice."""
    auto_submitted = headers.text("Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True, f"auto-submitted: {auto_submitted}"
    precedence = headers.text("Precedence").lower()
    if precedence in {"bulk", "list", "junk", "auto_reply"}:
        return True, f"precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Autogenerated"):
        if headers.text(name):
            return True, name.lower()
    if headers.text("X-Mailer-Daemon") or headers.text("X-Failed-Recipients"):
        return True, "mailer-daemon"
    lowered = subject.lower()
    for prefix in (
        "automatic reply:",
        "auto-reply:",
        "autoreply:",
        "out of office",
        "автоматический ответ",
        "автоответ",
    ):
        if lowered.startswith(prefix):
            return True, "subject"
    return False, ""


def _delivery_report(msg: Message) -> DeliveryReport | None:
    """RFC 3464: ``multipart/report; report-type=delivery-status`` with a ``message/delivery-status``
    part (per-message fields, then per-recipient ones) and the returned message or its headers."""
    if msg.get_content_type() != "multipart/report":
        return None
    original: str | None = None
    recipients: list[str] = []
    action = status = diagnostic = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                continue
            for block in blocks:
                if not isinstance(block, Message):
                    continue
                recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
                if recipient:
                    recipients.append(recipient.split(";", 1)[-1].strip().lower())
                action = action or str(block.get("Action") or "").strip().lower()
                status = status or str(block.get("Status") or "").strip()
                diagnostic = diagnostic or " ".join(str(block.get("Diagnostic-Code") or "").split())
        elif ctype in {"message/rfc822", "message/global"} and original is None:
            inner = part.get_payload()
            returned = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(returned, Message):
                ids = message_ids(str(returned.get("Message-ID") or ""))
                original = ids[0] if ids else None
        elif ctype in {"text/rfc822-headers", "message/rfc822-headers"} and original is None:
            payload = part.get_payload(decode=True)
            text = (
                payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
            )
            found = re.search(r"^Message-ID:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
            if found:
                ids = message_ids(found.group(1))
                original = ids[0] if ids else None
    if not recipients and not action and not status:
        return None
    return DeliveryReport(original, tuple(recipients), action, status, diagnostic)


def _part_text(part: Message) -> tuple[str, bool]:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return (raw.replace("\x00", "\ufffd") if isinstance(raw, str) else ""), False
    return decode_text(payload, part.get_content_charset())


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        return _header_text(_decode_words(" ".join(str(name).split())))[:255]
    ctype = part.get_content_type()
    if ctype == "application/ms-tnef":
        return "winmail.dat"
    if ctype == "text/calendar":
        return "invite.ics"
    if ctype in {"message/rfc822", "message/global"}:
        return "message.eml"
    if part.get("Content-ID"):
        # An inline image without a name (Apple Mail, web mail): named by its type.
        return f"image.{part.get_content_subtype()}"
    return ""


def _is_attachment(part: Message, body_parts: Iterable[Message]) -> bool:
    if any(part is b for b in body_parts):
        return False
    disposition = (part.get_content_disposition() or "").lower()
    ctype = part.get_content_type()
    if ctype in {"message/rfc822", "message/global"}:
        return True  # a forwarded message: kept whole, as an .eml file
    if part.is_multipart():
        return False
    if ctype in {"message/delivery-status", "text/rfc822-headers", "message/rfc822-headers"}:
        return False
    if disposition == "attachment" or ctype in {"application/ms-tnef", "text/calendar"}:
        return True
    return not ctype.startswith("text/") or bool(_filename(part))


def _attachment_bytes(part: Message) -> bytes:
    ctype = part.get_content_type()
    if ctype in {"message/rfc822", "message/global"}:
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=_AS_RECEIVED)
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one message. Never raises: an unreadable message comes back with ``parse_error``."""
    try:
        return _parse(raw)
    except Exception as exc:  # the caller stores the raw bytes flagged; nothing is dropped
        return _unparsed(raw, f"{type(exc).__name__}: {exc}"[:500])


def _unparsed(raw: bytes, error: str) -> ParsedEmail:
    """What can be told of a message the parser failed on: its headers by a plain scan."""
    head, _, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    fields: dict[str, str] = {}
    for line in re.split(rb"\r?\n(?![ \t])", head):
        name, sep, value = line.partition(b":")
        if sep:
            text, _ = decode_text(value.strip(), None)
            fields.setdefault(name.decode("ascii", "replace").strip().lower(), " ".join(text.split()))
    name, addr = parseaddr(fields.get("from", ""))
    ids = message_ids(fields.get("message-id"))
    text, _ = decode_text(body[:MAX_BODY_CHARS], None)
    return ParsedEmail(
        message_id=ids[0] if ids else None,
        in_reply_to=(message_ids(fields.get("in-reply-to")) or (None,))[0],
        references=message_ids(fields.get("references")),
        subject=fields.get("subject", "")[:998],
        sender=addr.lower(),
        sender_name=name,
        text=text,
        parse_error=error,
    )


def _parse(raw: bytes) -> ParsedEmail:
    msg = _PARSER.parsebytes(raw)
    headers = _Headers(msg)
    parts = list(msg.walk())
    if len(parts) > MAX_MIME_PARTS:
        return _unparsed(raw, f"too many MIME parts ({len(parts)} > {MAX_MIME_PARTS})")
    if msg.get_content_maintype() == "multipart" and not msg.is_multipart():
        raise ValueError("multipart message without parts (missing or wrong boundary)")
    subject = headers.text("Subject")[:998]
    sender, sender_name = _sender(headers)
    ids = message_ids(headers.text("Message-ID"))
    in_reply_to = message_ids(headers.text("In-Reply-To"))
    references = message_ids(headers.text("References"))
    try:
        date_value = headers.text("Date")
        date = parsedate_to_datetime(date_value) if date_value else None
    except (TypeError, ValueError, IndexError):
        date = None

    text_part = _body(msg, "plain")
    html_part = _body(msg, "html")
    # A text/plain part that is an attachment (a .txt file) is not the body.
    if text_part is not None and (text_part.get_content_disposition() or "") == "attachment":
        text_part = None
    if html_part is not None and (html_part.get_content_disposition() or "") == "attachment":
        html_part = None
    fallback = False
    text = ""
    html: str | None = None
    blocked = False
    if text_part is not None:
        text, fallback = _part_text(text_part)
    if html_part is not None:
        html_source, html_fallback = _part_text(html_part)
        html, blocked = sanitize_html(html_source)
        if text_part is None:
            text, fallback = html_to_text(html_source), html_fallback
    text = text.replace("\r\n", "\n")[:MAX_BODY_CHARS]

    bounce = _delivery_report(msg)
    body_parts = [p for p in (text_part, html_part) if p is not None]
    attachments: list[ParsedAttachment] = []
    dropped: list[str] = []
    skip_inside: list[Message] = []
    for part in parts:
        if part is msg:
            continue
        if any(part in _children(outer) for outer in skip_inside):
            continue  # the inside of an attached message is the attachment itself
        if not _is_attachment(part, body_parts):
            if part.get_content_type() in {"message/rfc822", "message/global"}:
                skip_inside.append(part)
            continue
        if part.get_content_type() in {"message/rfc822", "message/global"}:
            skip_inside.append(part)
            if bounce is not None:
                continue  # a DSN's returned message is read for its id, not stored twice
        data = _attachment_bytes(part)
        name = _filename(part) or "attachment"
        if len(data) > MAX_ATTACHMENT_BYTES or len(attachments) >= MAX_ATTACHMENTS:
            dropped.append(name)
            continue
        content_id = message_ids(str(part.get("Content-ID") or ""))
        disposition = (part.get_content_disposition() or "").lower()
        attachments.append(
            ParsedAttachment(
                filename=name,
                content_type=part.get_content_type(),
                data=data,
                content_id=content_id[0] if content_id else None,
                inline=bool(content_id) and disposition != "attachment",
            )
        )
    auto, reason = _auto_reply(headers, subject)
    if bounce is not None:
        auto, reason = True, "delivery-status-notification"
    list_id = headers.text("List-Id") or headers.text("List-Unsubscribe")
    precedence = headers.text("Precedence").lower()
    folds = fold_ranges(text)
    return ParsedEmail(
        message_id=ids[0] if ids else None,
        in_reply_to=in_reply_to[-1] if in_reply_to else None,
        references=references,
        subject=subject,
        sender=sender,
        sender_name=sender_name,
        to=_addresses(headers, "To"),
        cc=_addresses(headers, "Cc"),
        reply_to=_addresses(headers, "Reply-To"),
        date=date,
        text=text,
        html=html,
        remote_images_blocked=blocked,
        attachments=tuple(attachments),
        dropped_attachments=tuple(dropped),
        auto_reply=auto,
        auto_reply_reason=reason,
        mailing_list=bool(list_id) or precedence in {"bulk", "list"},
        bounce=bounce,
        folds=folds,
        signature_phone=signature_phone(text, folds),
        charset_fallback=fallback,
        header_names=frozenset(headers.all),
    )


def _children(part: Message) -> list[Message]:
    return list(part.walk())[1:]


def _body(msg: Message, subtype: str) -> Message | None:
    """The part a reader would show as the message's ``text/<subtype>`` body: what
    ``EmailMessage.get_body(preferencelist=(subtype,))`` answers, on a ``compat32`` message."""
    return next(_find_body(msg, msg, subtype), None)


def _find_body(root: Message, part: Message, subtype: str) -> Iterator[Message]:
    # The walk of EmailMessage._find_body: attachments are no body; in multipart/related only the
    # root part (``start`` parameter, else the first) is; other multiparts are searched in order.
    if (part.get_content_disposition() or "") == "attachment":
        return
    maintype, _, sub = part.get_content_type().partition("/")
    if maintype == "text":
        if sub == subtype:
            yield part
        return
    if maintype != "multipart" or not root.is_multipart():
        return
    payload = part.get_payload()
    if not isinstance(payload, list):
        return
    children = [c for c in payload if isinstance(c, Message)]
    if sub != "related":
        for child in children:
            yield from _find_body(root, child, subtype)
        return
    start = part.get_param("start")
    candidate = None
    if isinstance(start, str) and start:
        candidate = next((c for c in children if c.get("content-id") == start), None)
    if candidate is None and children:
        candidate = children[0]
    if candidate is not None:
        yield from _find_body(root, candidate, subtype)
