"""A small client of the Telegram Bot API (https://core.telegram.org/bots/api): the methods a bot
entry point uses, over an injectable ``httpx`` transport and a configurable base URL.

Every method is ``POST {base_url}/bot{token}/{method}``; the answer is ``{"ok": true, "result": ...}``
or ``{"ok": false, "error_code": 429, "description": ..., "parameters": {"retry_after": 5}}``. A 429
is honoured: the call waits ``retry_after`` seconds and tries again (up to ``MAX_RATE_RETRIES``
times, each wait capped by ``MAX_RETRY_AFTER_S``). Files: ``getFile`` gives a ``file_path`` fetched
from ``{base_url}/file/bot{token}/{file_path}``; photos and documents are sent as multipart uploads.

The base URL (a local Bot API server, a mirror) is an administrator's input: requests go only to
public addresses and the networks of ``integrations_allowed_networks``
(:mod:`frontoffice.services.egress`), checked when the entry point is saved and at each connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from frontoffice.services.egress import EgressPolicy, GuardedTransport

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_DOWNLOAD_BYTES",
    "MAX_RATE_RETRIES",
    "MAX_RETRY_AFTER_S",
    "POLL_TIMEOUT_S",
    "BotApi",
    "TelegramError",
]

DEFAULT_BASE_URL = "https://api.telegram.org"
# Long polling: the Bot API holds getUpdates open up to this many seconds when nothing is new.
# 25 s stays under the 30-60 s idle timeouts of proxies and NAT boxes on the way.
POLL_TIMEOUT_S = 25
# The Bot API's download limit for bots is 20 MB (getFile); we refuse anything larger.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
# A 429 is retried this many times in one call; beyond, the outbox's own back-off takes over.
MAX_RATE_RETRIES = 3
# Telegram asks for waits of seconds (per chat: one message a second; a group: 20 a minute); a
# longer wait is not held in one delivery attempt (the outbox retries the message later).
MAX_RETRY_AFTER_S = 60.0
# A request's bound besides a long poll: the API answers in well under a second; uploads of a few MB.
REQUEST_TIMEOUT_S = 60.0


class TelegramError(Exception):
    """The Bot API refused a call: ``error_code`` (400 bad request, 403 blocked by the user, 429 too
    many requests, 5xx) and its ``description``; ``retry_after`` for a 429."""

    error_id = "telegram-api-error"

    def __init__(self, error_code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code, self.description, self.retry_after = error_code, description, retry_after

    @property
    def permanent(self) -> bool:
        """400 (a bad chat id, an empty text) and 403 (the user blocked the bot) will not change."""
        return self.error_code in (400, 403, 404)


class BotApi:
    """The Bot API of one bot (``token``). ``transport``: by default one that reaches public addresses
    only (the channel passes one of the operator's :class:`EgressPolicy`); closed by :meth:`aclose`."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.token = token
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            transport=transport if transport is not None else GuardedTransport(EgressPolicy()),
            timeout=REQUEST_TIMEOUT_S,
        )
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        read_timeout_s: float | None = None,
    ) -> Any:
        """Call ``method``; return its ``result``. Raises :class:`TelegramError`."""
        url = f"{self.base_url}/bot{self.token}/{method}"
        for attempt in range(MAX_RATE_RETRIES + 1):
            if files:
                # Multipart: scalar parameters as form fields, JSON-typed ones serialised.
                data = {k: v if isinstance(v, str) else _json(v) for k, v in (params or {}).items()}
                response = await self._client.post(
                    url, data=data, files=files, timeout=_timeout(read_timeout_s)
                )
            else:
                response = await self._client.post(url, json=params or {}, timeout=_timeout(read_timeout_s))
            try:
                answer = response.json()
            except ValueError:
                raise TelegramError(response.status_code, "not a Bot API answer") from None
            if answer.get("ok"):
                return answer.get("result")
            code = int(answer.get("error_code") or response.status_code)
            retry_after = (answer.get("parameters") or {}).get("retry_after")
            error = TelegramError(code, str(answer.get("description", "")), retry_after)
            if code == 429 and retry_after is not None and attempt < MAX_RATE_RETRIES:
                if float(retry_after) > MAX_RETRY_AFTER_S:
                    raise error
                await self._sleep(float(retry_after))
                continue
            raise error
        raise AssertionError("unreachable")

    async def get_updates(self, offset: int | None) -> list[dict[str, Any]]:
        """Updates from ``offset`` on (long poll of ``POLL_TIMEOUT_S``); only messages."""
        params: dict[str, Any] = {"timeout": POLL_TIMEOUT_S, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        result = await self.call("getUpdates", params, read_timeout_s=POLL_TIMEOUT_S + 10)
        return list(result or [])

    async def set_webhook(self, url: str, secret_token: str) -> None:
        """Have Telegram post the bot's updates (messages only) to ``url`` with header
        ``X-Telegram-Bot-Api-Secret-Token: secret_token``; getUpdates stops working meanwhile."""
        await self.call(
            "setWebhook", {"url": url, "secret_token": secret_token, "allowed_updates": ["message"]}
        )

    async def delete_webhook(self) -> None:
        """Back to getUpdates (pending updates are kept)."""
        await self.call("deleteWebhook", {"drop_pending_updates": False})

    async def download(self, file_id: str) -> tuple[bytes, str]:
        """A file's bytes and its path's last part (getFile, then the file URL)."""
        info = await self.call("getFile", {"file_id": file_id})
        if int(info.get("file_size") or 0) > MAX_DOWNLOAD_BYTES:
            raise TelegramError(400, "file too large to download")
        path = str(info["file_path"])
        response = await self._client.get(f"{self.base_url}/file/bot{self.token}/{path}")
        if response.status_code != 200:
            raise TelegramError(response.status_code, "file download failed")
        return response.content, path.rsplit("/", 1)[-1]

    async def send_message(self, chat_id: int | str, text: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("sendMessage", {"chat_id": chat_id, "text": text})
        return result

    async def send_file(
        self, chat_id: int | str, filename: str, data: bytes, content_type: str, caption: str = ""
    ) -> dict[str, Any]:
        """sendPhoto for an image, sendDocument otherwise (multipart upload)."""
        photo = content_type in ("image/jpeg", "image/png") and len(data) <= 10 * 1024 * 1024
        method, field = ("sendPhoto", "photo") if photo else ("sendDocument", "document")
        params: dict[str, Any] = {"chat_id": str(chat_id)}
        if caption:
            params["caption"] = caption
        result: dict[str, Any] = await self.call(
            method, params, files={field: (filename, data, content_type)}
        )
        return result


def _timeout(seconds: float | None) -> Any:
    # httpx: None would mean "no timeout at all"; without a value the client's default applies.
    return httpx.USE_CLIENT_DEFAULT if seconds is None else seconds


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
