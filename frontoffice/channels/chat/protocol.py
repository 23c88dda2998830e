"""The web chat's wire protocol, sans-IO: frames in, typed commands out; the per-visitor limits; the
signed visitor token. No sockets, no asyncio, no clock reads (``now`` is passed in).

One JSON object per WebSocket text frame, its kind in ``"t"`` (docs/chat.md, "The protocol"):

client → server: ``hello`` (token, last_seen, page, referrer, lang), ``msg`` (cid, text, files,
prechat), ``typing`` (on), ``got`` / ``seen`` (id: the agent's messages up to it were received /
read), ``rate`` (score, comment), ``transcript`` (email), ``offline`` (name, email, phone, text),
``end``, ``ping``.

server → client: ``welcome``, ``ack`` (cid, id: after the commit), ``msg``, ``typing``, ``receipt``,
``queue``, ``ended``, ``error`` (code, cid), ``pong``.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

__all__ = [
    "ALLOWED_FILE_TYPES",
    "MAX_CHAT_MESSAGE_CHARS",
    "MAX_FILES_PER_MESSAGE",
    "MAX_FILE_BYTES",
    "MAX_FRAME_BYTES",
    "MESSAGES_PER_MINUTE",
    "MESSAGE_BURST",
    "TOKEN_MAX_AGE_S",
    "ChatProtocolError",
    "End",
    "Got",
    "Hello",
    "Offline",
    "Ping",
    "Rate",
    "RateLimit",
    "Seen",
    "Send",
    "Transcript",
    "Typing",
    "VisitorToken",
    "VisitorTokens",
    "parse_frame",
]

# A chat message a person types is a few lines; 4,000 characters (Telegram's limit is 4,096) lets a
# pasted order list through and stops a pasted log or a flood of text from one frame.
MAX_CHAT_MESSAGE_CHARS = 4000
# A whole frame: the longest message (4,000 characters, up to 4 bytes each in UTF-8 JSON escapes
# aside) plus pre-chat fields and file references. Larger frames are refused before parsing.
MAX_FRAME_BYTES = 32 * 1024
# Messages per visitor: a person types at most a message every few seconds for long; 20 a minute with
# a burst of 5 lets a quick exchange through and stops a script flooding agents.
MESSAGES_PER_MINUTE = 20
MESSAGE_BURST = 5
# Files a visitor sends: photos from a phone are 2–6 MB; 10 MB holds a scanned PDF. Only types an
# agent's browser shows safely or downloads: images, PDF, plain text.
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES_PER_MESSAGE = 5
ALLOWED_FILE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)
# A visitor token lives a week after it was last refreshed (each welcome refreshes it): a returning
# visitor within a week continues their conversation; an old or stolen token stops working.
TOKEN_MAX_AGE_S = 7 * 24 * 3600
# Client message ids: what the widget generates (a random id per message), bounded.
_CID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VISITOR = re.compile(r"^w[0-9a-f]{32}$")
_SALT = "frontoffice.chat.visitor"


class ChatProtocolError(Exception):
    """A frame the protocol refuses; ``code`` is the kebab-case error id the client gets."""

    def __init__(self, code: str, message: str = "", cid: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.cid = cid


@dataclass(frozen=True, slots=True)
class Hello:
    token: str | None
    last_seen: int
    page: str
    referrer: str
    lang: str


@dataclass(frozen=True, slots=True)
class Send:
    cid: str
    text: str
    files: tuple[str, ...] = ()
    prechat: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Typing:
    on: bool


@dataclass(frozen=True, slots=True)
class Got:
    id: int


@dataclass(frozen=True, slots=True)
class Seen:
    id: int


@dataclass(frozen=True, slots=True)
class Rate:
    score: int
    comment: str


@dataclass(frozen=True, slots=True)
class Transcript:
    email: str


@dataclass(frozen=True, slots=True)
class Offline:
    name: str
    email: str
    phone: str
    text: str


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    pass


Command = Hello | Send | Typing | Got | Seen | Rate | Transcript | Offline | End | Ping
_PRECHAT_KEYS = ("name", "email", "phone", "topic")


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ChatProtocolError("bad-frame", f"{key} is not text")
    return value[:limit]


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ChatProtocolError("bad-frame", f"{key} is not a count")
    return value


def parse_frame(raw: str | bytes) -> Command:
    """One client frame as a typed command, or :class:`ChatProtocolError`."""
    if len(raw) > MAX_FRAME_BYTES:
        raise ChatProtocolError("frame-too-large", f"frames are at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ChatProtocolError("bad-frame", "not JSON") from None
    if not isinstance(data, dict):
        raise ChatProtocolError("bad-frame", "not an object")
    kind = data.get("t")
    if kind == "msg":
        cid = data.get("cid")
        if not isinstance(cid, str) or not _CID.match(cid):
            raise ChatProtocolError("bad-cid", "a message needs a client id")
        text = data.get("text", "")
        if not isinstance(text, str):
            raise ChatProtocolError("bad-frame", "text is not text", cid)
        if len(text) > MAX_CHAT_MESSAGE_CHARS:
            raise ChatProtocolError("message-too-long", f"at most {MAX_CHAT_MESSAGE_CHARS} characters", cid)
        files = data.get("files") or []
        if not isinstance(files, list) or len(files) > MAX_FILES_PER_MESSAGE:
            raise ChatProtocolError("too-many-files", f"at most {MAX_FILES_PER_MESSAGE} files", cid)
        if not all(isinstance(f, str) and len(f) < 1024 for f in files):
            raise ChatProtocolError("bad-frame", "files are references", cid)
        if not text.strip() and not files:
            raise ChatProtocolError("empty-message", "the message is empty", cid)
        raw_prechat = data.get("prechat") or {}
        if not isinstance(raw_prechat, dict):
            raise ChatProtocolError("bad-frame", "prechat is an object", cid)
        prechat = {k: _text(raw_prechat, k, 200).strip() for k in _PRECHAT_KEYS if raw_prechat.get(k)}
        return Send(cid, text, tuple(files), prechat)
    if kind == "hello":
        token = data.get("token")
        return Hello(
            token=token if isinstance(token, str) and token else None,
            last_seen=_int(data, "last_seen"),
            page=_text(data, "page", 2000),
            referrer=_text(data, "referrer", 2000),
            lang=_text(data, "lang", 16),
        )
    if kind == "typing":
        return Typing(bool(data.get("on")))
    if kind == "got":
        return Got(_int(data, "id"))
    if kind == "seen":
        return Seen(_int(data, "id"))
    if kind == "rate":
        score = data.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ChatProtocolError("bad-rating", "a rating is 1 to 5")
        return Rate(score, _text(data, "comment", 1000))
    if kind == "transcript":
        return Transcript(_text(data, "email", 320).strip())
    if kind == "offline":
        return Offline(
            _text(data, "name", 200).strip(),
            _text(data, "email", 320).strip(),
            _text(data, "phone", 32).strip(),
            _text(data, "text", MAX_CHAT_MESSAGE_CHARS),
        )
    if kind == "end":
        return End()
    if kind == "ping":
        return Ping()
    raise ChatProtocolError("unknown-frame", f"unknown frame {kind!r}")


class RateLimit:
    """A token bucket per visitor: ``MESSAGE_BURST`` at once, refilled at ``MESSAGES_PER_MINUTE``."""

    def __init__(self, per_minute: float = MESSAGES_PER_MINUTE, burst: int = MESSAGE_BURST) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at: float | None = None

    def allow(self, now: float) -> bool:
        """Whether one more message may pass at ``now`` (and count it when it does)."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class VisitorToken:
    """Who a socket is: the visitor id (their chat identity) on an entry point."""

    visitor_id: str
    entry_point_id: int


class VisitorTokens:
    """Visitor tokens signed with the node's secret (itsdangerous), expiring ``TOKEN_MAX_AGE_S``
    after they were issued or refreshed."""

    def __init__(self, secret: str, max_age_s: int = TOKEN_MAX_AGE_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age_s = max_age_s

    @staticmethod
    def new_visitor_id() -> str:
        """A new visitor id: random, 128 bits, a valid chat identity."""
        return "w" + secrets.token_hex(16)

    def issue(self, visitor: VisitorToken) -> str:
        """A signed token for ``visitor`` (valid ``max_age_s`` from now)."""
        return self._serializer.dumps([visitor.visitor_id, visitor.entry_point_id])

    def read(self, token: str) -> VisitorToken:
        """The visitor a token names; :class:`ChatProtocolError` ``bad-token`` / ``token-expired``."""
        try:
            visitor_id, entry_point_id = self._serializer.loads(token, max_age=self.max_age_s)
        except SignatureExpired:
            raise ChatProtocolError("token-expired", "the visitor token expired") from None
        except (BadSignature, ValueError, TypeError):
            raise ChatProtocolError("bad-token", "the visitor token is not valid") from None
        if (
            not isinstance(visitor_id, str)
            or not _VISITOR.match(visitor_id)
            or not isinstance(entry_point_id, int)
        ):
            raise ChatProtocolError("bad-token", "the visitor token is not valid")
        return VisitorToken(visitor_id, entry_point_id)
