"""A Telegram Bot API server for tests (loopback, Starlette under uvicorn): the documented methods a
bot entry point uses — getUpdates (offset confirms, long poll with ``timeout``), getFile and the file
URL, sendMessage, sendPhoto and sendDocument (multipart) — with the documented JSON shapes
(https://core.telegram.org/bots/api), and 429 ``retry_after`` on demand."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port, serve_in_task

TOKEN = "123456:TEST-token"


@dataclass
class BotApiDouble:
    token: str = TOKEN
    webhook_calls: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    updates: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    offsets: list[int | None] = field(default_factory=list)
    throttle_next: int = 0  # answer this many send calls with 429 first
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def user_message(self, user_id: int, **content: Any) -> dict[str, Any]:
        """Queue an update with a private-chat message from ``user_id``; returns the message."""
        message_id = next(self._ids)
        message = {
            "message_id": message_id,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Иван",
                "username": "ivan",
                "language_code": "ru",
            },
            "chat": {"id": user_id, "type": "private", "first_name": "Иван"},
            "date": 1767225600,
            **content,
        }
        self.updates.append({"update_id": 1000 + message_id, "message": message})
        self._new.set()
        return message

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method, methods=["POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = await serve_in_task(self._server)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @staticmethod
    def _error(code: int, description: str, **parameters: Any) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return JSONResponse(body, status_code=code)

    async def _method(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.path_params["method"]
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            params: dict[str, Any] = {}
            for key, value in form.multi_items():
                if hasattr(value, "read"):
                    params[key] = {
                        "filename": value.filename,
                        "data": await value.read(),
                        "type": value.content_type,
                    }
                else:
                    params[key] = value
        else:
            params = await request.json() if await request.body() else {}
        if method in ("setWebhook", "deleteWebhook"):
            self.webhook_calls.append({"method": method, **params})
            return JSONResponse({"ok": True, "result": True})
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "getFile":
            file_id = params["file_id"]
            if file_id not in self.files:
                return self._error(400, "Bad Request: invalid file_id")
            return JSONResponse(
                {
                    "ok": True,
                    "result": {
                        "file_id": file_id,
                        "file_unique_id": file_id,
                        "file_size": len(self.files[file_id]),
                        "file_path": f"documents/{file_id}.bin",
                    },
                }
            )
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            if self.throttle_next:
                self.throttle_next -= 1
                return self._error(429, "Too Many Requests: retry after 1", retry_after=1)
            self.sent.append({"method": method, **params})
            chat_id = int(params["chat_id"])
            return JSONResponse(
                {
                    "ok": True,
                    "result": {
                        "message_id": next(self._ids),
                        "date": 1767225600,
                        "chat": {"id": chat_id, "type": "private"},
                    },
                }
            )
        return self._error(404, "Not Found")

    async def _get_updates(self, params: dict[str, Any]) -> Response:
        offset = params.get("offset")
        self.offsets.append(offset)
        if offset is not None:  # confirms every update before it
            self.updates = [u for u in self.updates if u["update_id"] >= int(offset)]
        if not self.updates:
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), min(float(params.get("timeout", 0)), 1.0))
        return JSONResponse({"ok": True, "result": list(self.updates)})

    async def _file(self, request: Request) -> Response:
        file_id = request.path_params["path"].rsplit("/", 1)[-1].removesuffix(".bin")
        if request.path_params["token"] != self.token or file_id not in self.files:
            return Response(status_code=404)
        return Response(self.files[file_id], media_type="application/octet-stream")
