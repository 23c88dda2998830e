"""The web chat channel's ways out: the outbox sender (an agent's message pushed to the visitor's
sockets) and the channel port (the end of a conversation told to the visitor).

Agent → visitor messages are outbox rows like every channel's (``services/conversations.py``
``queue_message``). Delivering one publishes its ``msg`` frame for the thread's visitor sockets
(audience ``chat:<thread_id>``, ``services/chat.py``); a visitor who is not connected gets it when the
widget resumes (``hello`` with the last id it saw), so the delivery succeeds either way. The widget's
``got`` / ``seen`` frames move the message on to ``delivered`` / ``read``.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.domain import routing as r
from frontoffice.domain.model import Channel
from frontoffice.services.chat import chat_audience
from frontoffice.services.conversations import queue_message
from frontoffice.services.outbox_delivery import Delivery, PermanentFailure
from frontoffice.store.tables import Interaction

__all__ = ["ChatPort", "ChatSender"]

log = logging.getLogger("frontoffice.chat")


class ChatSender:
    """The chat's :class:`OutboxSender` (registered with the outbox worker in ``bootstrap.py``)."""

    channel = Channel.CHAT.value

    def __init__(self, bus: InProcessBus) -> None:
        self.bus = bus

    async def send(self, delivery: Delivery) -> str | None:
        """Push an agent's message to the visitor's sockets (if any are connected)."""
        message = delivery.message
        if message is None or message.thread_id is None:
            raise PermanentFailure("a chat delivery needs its message and thread")
        files = [
            {"name": a.filename, "type": a.content_type, "size": len(a.data)} for a in message.attachments
        ]
        self.bus.publish(
            BusMessage(
                type="msg",
                data={
                    "t": "msg",
                    "id": message.id,
                    "dir": "out",
                    "text": message.body,
                    "author": message.sender,
                    "at": message.created_at.isoformat(),
                    "cid": None,
                    "state": "sent",
                    "files": files,
                },
                audience=(chat_audience(message.thread_id),),
            )
        )
        return None


class ChatPort:
    """The chat's :class:`ChannelPort` (registered with the channel ports in ``bootstrap.py``)."""

    channel = Channel.CHAT

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: InProcessBus) -> None:
        self.sessions = sessions
        self.bus = bus
        self._tasks: set[asyncio.Task[None]] = set()

    def ring(self, offer: r.OfferContact) -> None:
        return None  # the offer reaches the agent's desk through the stream

    def withdraw(self, contact_id: int, agent_ids: tuple[str, ...]) -> None:
        return None

    def hang_up(self, contact_id: int) -> None:
        """The agent ended the conversation: the visitor's widget shows the end (and the rating)."""
        task = asyncio.get_running_loop().create_task(self._ended(contact_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ended(self, contact_id: int) -> None:
        try:
            async with self.sessions() as s:
                thread_id = await s.scalar(select(Interaction.thread_id).where(Interaction.id == contact_id))
        except Exception:
            log.exception("chat %s: the end could not be told to the visitor", contact_id)
            return
        if thread_id is not None:
            self.bus.publish(
                BusMessage(
                    type="ended", data={"contact_id": contact_id}, audience=(chat_audience(thread_id),)
                )
            )

    async def deliver(self, contact_id: int, body: str) -> None:
        """An answer to the visitor from outside the desk (the contract's ``deliver``): queued in the
        outbox like an agent's message, and pushed to the visitor's sockets by :class:`ChatSender`."""
        async with self.sessions.begin() as s:
            await queue_message(s, contact_id, None, body)
