"""An aiosmtpd relay on loopback that records what it receives and answers as a test tells it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Received:
    """One message the sink accepted: the envelope and the bytes as sent."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.data, policy=default))


@dataclass
class SinkHandler:
    """aiosmtpd handler: ``replies`` are answered to DATA in turn (then 250); ``refuse_once`` maps a
    message's body (stripped) to the reply its first delivery gets, whatever order concurrent
    deliveries arrive in; ``hold`` keeps DATA unanswered (a relay that hangs) until released."""

    received: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    refuse_once: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    # Set: DATA is answered; cleared: the relay hangs on DATA until it is set again.
    answering: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        body = received.message.get_content().strip() if self.refuse_once else ""
        with self.lock:
            self.attempts += 1
            reply = self.refuse_once.pop(body, None) or (self.replies.pop(0) if self.replies else None)
        if not self.answering.is_set():  # the relay hangs (in a thread: its loop serves others)
            await asyncio.get_running_loop().run_in_executor(None, self.answering.wait)
        if reply is not None and not reply.startswith("250"):
            return reply
        with self.lock:
            self.received.append(received)
        return "250 2.0.0 queued"


class SmtpSink:
    """A started sink: ``port``, ``handler`` (its answers and what it received)."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.handler.answering.set()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self.controller.start()  # returns once the server answers
        return self

    def stop(self) -> None:
        self.handler.answering.set()
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)
