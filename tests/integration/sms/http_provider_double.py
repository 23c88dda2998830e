"""An SMS provider's HTTP API for tests (loopback, Starlette under uvicorn), shaped like SMS.ru's
documented ``GET /sms/send?api_id=&to=&msg=&json=1`` (its JSON reply: ``status``, ``status_code``,
``sms.<number>.status`` / ``sms_id``). ``fail_next`` queues status codes to answer instead."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port, serve_in_task

API_ID = "TEST-API-ID-0001"


@dataclass
class SmsProviderDouble:
    port: int = field(default_factory=free_port)
    sent: list[dict[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms/send"

    async def start(self) -> None:
        app = Starlette(routes=[Route("/sms/send", self._send, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = await serve_in_task(self._server)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _send(self, request: Request) -> Response:
        if self.fail_next:
            code = self.fail_next.pop(0)
            return JSONResponse(
                {"status": "ERROR", "status_code": 220, "status_text": "busy"}, status_code=code
            )
        params = dict(request.query_params)
        if params.get("api_id") != API_ID:
            return JSONResponse({"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"})
        to = params.get("to", "")
        if not to.isdigit():
            return JSONResponse(
                {
                    "status": "OK",
                    "status_code": 100,
                    "sms": {
                        to: {"status": "ERROR", "status_code": 202, "status_text": "Неправильно указан номер"}
                    },
                }
            )
        sms_id = f"000000-{next(self._ids):08d}"
        self.sent.append(
            {"to": to, "msg": params.get("msg", ""), "from": params.get("from", ""), "id": sms_id}
        )
        return JSONResponse(
            {
                "status": "OK",
                "status_code": 100,
                "sms": {to: {"status": "OK", "status_code": 100, "sms_id": sms_id}},
            }
        )
