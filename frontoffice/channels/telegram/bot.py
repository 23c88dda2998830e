"""A Telegram bot as an entry point: long polling of getUpdates, each message taken in through
:class:`~frontoffice.services.messaging.Messaging`, and the outbox's sender for agents' answers.

Polling (works behind NAT): ``getUpdates(offset)`` returns the updates not confirmed yet; each
message is committed, then the batch's next offset (last ``update_id`` + 1) is saved and sent with
the next call, which confirms the batch to Telegram. A restart resumes from the saved offset: an
update is never lost (Telegram keeps unconfirmed updates for 24 h) and a repeated one is absorbed by
the dedupe on ``<chat id>:<message id>``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from frontoffice.aio import cancel_and_wait
from frontoffice.services.channel_contract import InboundAttachment
from frontoffice.services.egress import EgressPolicy, GuardedTransport, refused_reason
from frontoffice.services.messaging import Messaging
from frontoffice.services.outbox_delivery import Delivery, PermanentFailure, TemporaryFailure

from .bot_api import BotApi, TelegramError

__all__ = ["ERROR_PAUSE_S", "TelegramBot", "TelegramChannel", "TelegramSender", "bot_api_for"]

log = logging.getLogger("frontoffice.telegram")

# After a failed poll (network, 5xx, the database), wait before polling again.
ERROR_PAUSE_S = 5.0


def bot_api_for(
    config: dict[str, Any],
    transport: httpx.AsyncBaseTransport | None = None,
    egress: EgressPolicy | None = None,
) -> BotApi:
    """The Bot API of an entry point's ``config.telegram`` (``token``, optional ``base_url``), reached
    only at the addresses ``egress`` allows (``transport``: a test's own instead)."""
    tg = config.get("telegram") or {}
    if not tg.get("token"):
        raise PermanentFailure("the entry point has no Telegram bot token (config.telegram.token)")
    if transport is None:
        transport = GuardedTransport(egress or EgressPolicy())
    kwargs: dict[str, Any] = {"transport": transport}
    if tg.get("base_url"):
        kwargs["base_url"] = str(tg["base_url"])
    return BotApi(str(tg["token"]), **kwargs)


class TelegramBot:
    """Polls one bot and hands its users' messages to the messaging service."""

    def __init__(self, entry_point_id: int, api: BotApi, messaging: Messaging) -> None:
        self.entry_point_id, self.api, self.messaging = entry_point_id, api, messaging
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"telegram-{self.entry_point_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.api.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Telegram bot of entry point %s: %s", self.entry_point_id, exc)
                await asyncio.sleep(ERROR_PAUSE_S)

    async def poll_once(self) -> int:
        """One getUpdates: take in its messages, save the next offset; return how many updates."""
        offset = await self.messaging.telegram_offset(self.entry_point_id)
        updates = await self.api.get_updates(offset)
        for update in updates:
            message = update.get("message")
            if isinstance(message, dict):
                await self.take_in(message)
        if updates:
            next_offset = max(int(u["update_id"]) for u in updates) + 1
            await self.messaging.save_telegram_offset(self.entry_point_id, next_offset)
        return len(updates)

    async def take_in(self, message: dict[str, Any]) -> None:
        """One Bot API ``Message`` of a private chat; returns after the commit."""
        chat, user = message.get("chat") or {}, message.get("from") or {}
        if chat.get("type") != "private" or not user:
            return  # groups and channels are not customer conversations
        text = str(message.get("text") or message.get("caption") or "")
        files: list[InboundAttachment] = []
        if message.get("photo"):
            largest = max(message["photo"], key=lambda p: int(p.get("file_size") or p.get("width", 0)))
            data, name = await self.api.download(largest["file_id"])
            files.append(await self.messaging.store_file(data, name, "image/jpeg"))
        if message.get("document"):
            doc = message["document"]
            data, name = await self.api.download(doc["file_id"])
            mime = str(doc.get("mime_type") or "application/octet-stream")
            files.append(await self.messaging.store_file(data, str(doc.get("file_name") or name), mime))
        phone = None
        contact = message.get("contact")
        if isinstance(contact, dict) and contact.get("user_id") == user.get("id"):
            # The user's own contact (the "share my phone number" button): link the phone.
            phone = str(contact.get("phone_number") or "")
            phone = phone if phone.startswith("+") else f"+{phone}"
            text = text or f"📞 {phone}"
        if not text and not files:
            return  # stickers, locations...: nothing an agent can answer to yet
        username = user.get("username")
        name = " ".join(x for x in (user.get("first_name"), user.get("last_name")) if x)
        await self.messaging.telegram_received(
            self.entry_point_id,
            user_id=int(user["id"]),
            chat_id=int(chat["id"]),
            message_id=int(message["message_id"]),
            text=text,
            sender=f"@{username}" if username else name,
            first_name=str(user.get("first_name") or ""),
            last_name=str(user.get("last_name") or ""),
            language=user.get("language_code"),
            phone=phone,
            attachments=files,
        )


class TelegramSender:
    """The outbox sender of channel ``messenger`` for Telegram bot entry points: the text with
    sendMessage, each file with sendPhoto / sendDocument (multipart)."""

    channel = "messenger"

    def __init__(
        self,
        messaging: Messaging,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.messaging, self.transport, self.egress = messaging, transport, egress

    async def send(self, delivery: Delivery) -> str | None:
        message = delivery.message
        if message is None or message.thread_id is None:
            raise PermanentFailure("the outbox row names no conversation message")
        address = await self.messaging.outbound_address(message.thread_id, "telegram")
        api = bot_api_for(message.entry_point_config, self.transport, self.egress)
        chat: int | str = int(address.to) if address.to.lstrip("-").isdigit() else address.to
        try:
            if message.body.strip():
                await api.send_message(chat, message.body)
            for file in message.attachments:
                await api.send_file(chat, file.filename, file.data, file.content_type)
        except TelegramError as exc:
            if exc.permanent:
                raise PermanentFailure(f"Telegram: {exc}") from None
            raise TemporaryFailure(f"Telegram: {exc}") from None
        except httpx.HTTPError as exc:
            refused = refused_reason(exc)
            if refused is not None:
                # Nothing was sent; retried: the operator may allow the Bot API server's network.
                log.warning("Telegram Bot API %s", refused)
                raise TemporaryFailure(f"telegram-not-allowed: {refused}") from None
            raise TemporaryFailure(f"Telegram: {type(exc).__name__}: {exc}") from None
        finally:
            await api.aclose()
        return None


class TelegramChannel:
    """The bots of the Telegram entry points (``channel`` messenger, ``config.telegram.token``),
    polled while the node runs. :meth:`reload` (after an entry point is created or changed through
    the admin API) starts new bots, restarts changed ones and stops removed ones."""

    def __init__(
        self,
        messaging: Messaging,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.messaging, self.transport, self.egress = messaging, transport, egress
        self.bots: dict[int, TelegramBot] = {}
        self._configs: dict[int, dict[str, Any]] = {}
        # Webhook-mode bots whose setWebhook went through, with the settings it was set with.
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._running = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._running = True
        await self.reload()

    async def webhook_message(
        self, entry_point_id: int, config: dict[str, Any], message: dict[str, Any]
    ) -> None:
        """A message posted to the bot's webhook (``POST /hooks/telegram/{id}``); returns after the
        commit. Files are fetched with the bot's token like in polling."""
        api = bot_api_for(config, self.transport, self.egress)
        try:
            await TelegramBot(entry_point_id, api, self.messaging).take_in(message)
        finally:
            await api.aclose()

    async def _set_webhooks(self, entries: dict[int, dict[str, Any]]) -> None:
        for ep_id, tg in entries.items():
            if self.webhooks.get(ep_id) == tg:
                continue
            api = bot_api_for({"telegram": tg}, self.transport, self.egress)
            try:
                await api.set_webhook(str(tg["webhook_url"]), str(tg["webhook_secret"]))
                self.webhooks[ep_id] = tg
            except (TelegramError, httpx.HTTPError) as exc:  # logged; the next change or start retries
                log.warning("setWebhook for entry point %s failed: %s", ep_id, exc)
            finally:
                await api.aclose()

    async def reload(self) -> None:
        """Bring the polling bots in line with the stored entry points (no-op while stopped)."""
        from frontoffice.domain.model import Channel

        async with self._lock:
            if not self._running:
                return
            wanted: dict[int, dict[str, Any]] = {}
            hooks: dict[int, dict[str, Any]] = {}
            for ep_id, _address, config in await self.messaging.entry_points(Channel.MESSENGER):
                tg = dict(config.get("telegram") or {})
                if tg.get("token") and tg.get("mode", "polling") == "polling":
                    wanted[ep_id] = tg
                elif tg.get("token") and tg.get("webhook_url") and tg.get("webhook_secret"):
                    hooks[ep_id] = tg
            await self._set_webhooks(hooks)
            for ep_id in list(self.webhooks):
                if ep_id not in hooks:
                    self.webhooks.pop(ep_id)
                    if ep_id in wanted:  # back to polling: getUpdates answers 409 while a webhook is set
                        api = bot_api_for({"telegram": wanted[ep_id]}, self.transport, self.egress)
                        try:
                            await api.delete_webhook()
                        except (TelegramError, httpx.HTTPError) as exc:
                            log.warning("deleteWebhook for entry point %s failed: %s", ep_id, exc)
                        finally:
                            await api.aclose()
            for ep_id in list(self.bots):
                if wanted.get(ep_id) != self._configs.get(ep_id):
                    await self.bots.pop(ep_id).stop()
                    self._configs.pop(ep_id, None)
            for ep_id, tg in wanted.items():
                if ep_id not in self.bots:
                    api = bot_api_for({"telegram": tg}, self.transport, self.egress)
                    bot = TelegramBot(ep_id, api, self.messaging)
                    self.bots[ep_id], self._configs[ep_id] = bot, tg
                    await bot.start()

    async def stop(self) -> None:
        async with self._lock:
            self._running = False
            for bot in self.bots.values():
                await bot.stop()
            self.bots.clear()
            self._configs.clear()
