"""A webhook receiver for tests (loopback, Starlette under uvicorn): records every request as it
arrived (headers, raw body) and answers as told — ``answers`` queues status codes (with an optional
``Retry-After``), ``hold`` makes it wait for the test before answering (a slow or hung receiver)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import free_port, serve_in_task


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None = None

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class WebhookReceiver:
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    # Status codes to answer, in order (then 200); a (status, retry_after) pair adds Retry-After.
    answers: list[int | tuple[int, str]] = field(default_factory=list)
    # While set, requests wait until it is cleared (a slow receiver); released by release().
    hold: bool = False
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> WebhookReceiver:
        app = Starlette(routes=[Route("/hooks", self._receive, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = await serve_in_task(self._server)
        return self

    async def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def release(self) -> None:
        """Let held requests (and later ones) answer."""
        self.hold = False
        self._released.set()

    def types(self, status: int | None = 200) -> list[str]:
        """Event types of the requests answered with ``status`` (None: every request), in order."""
        return [r.event["type"] for r in self.requests if status is None or r.answered == status]

    async def _receive(self, request: Request) -> Response:
        received = Received({k.lower(): v for k, v in request.headers.items()}, await request.body())
        self.requests.append(received)
        if self.hold:
            self._released.clear()
            await self._released.wait()
        answer = self.answers.pop(0) if self.answers else 200
        status, retry_after = answer if isinstance(answer, tuple) else (answer, None)
        received.answered = status
        headers = {"retry-after": retry_after} if retry_after else None
        return PlainTextResponse("ok" if status < 300 else f"receiver says {status}", status, headers=headers)
