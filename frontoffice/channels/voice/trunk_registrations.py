"""Registrations out: trunks whose carrier wants us registered (:class:`~.sip.RegistrationClient`)
are registered at start, refreshed before expiry, retried with back-off and unregistered at stop; their
state is in each :class:`~.trunks.TrunkLine`.
"""

from __future__ import annotations

import asyncio
import logging

from frontoffice.aio import wake_or_timeout

from .endpoint import Endpoint
from .sip import RegistrationClient, Request, Response, parse_uri
from .trunks import Trunk, TrunkLine, TrunkLines

__all__ = ["TrunkRegistrations"]

log = logging.getLogger("frontoffice.voice.trunks")

# Registration timer loop: how long to sleep at most between looks at the clients.
REGISTRATION_TICK_S = 30.0
# On shutdown, how long de-registrations may take before we stop waiting.
UNREGISTER_GRACE_S = 2.0


class TrunkRegistrations:
    """Keeps the registrations of the trunks that register."""

    def __init__(self, endpoint: Endpoint, lines: TrunkLines) -> None:
        self.endpoint = endpoint
        self.lines = lines
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for line in self.lines:
            trunk = line.trunk
            if trunk.registers and trunk.username and trunk.password:
                line.registration = self._registration_client(trunk)
        if any(line.registration is not None for line in self.lines):
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._registration_loop(), name="sip-trunk-registrations")

    async def stop(self) -> None:
        while self._task is not None and not self._task.done():
            # Python 3.11's wait_for swallows a cancel arriving as its wait completes: repeat it.
            self._task.cancel()
            await asyncio.wait([self._task], timeout=0.1)
        waiting: list[asyncio.Future[None]] = []
        for line in self.lines:
            reg = line.registration
            if reg is None:
                continue
            request = reg.unregister()
            if request is not None:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                waiting.append(done)
                self._send_register(line, request, done)
        if waiting:
            await asyncio.wait(waiting, timeout=UNREGISTER_GRACE_S)

    def _registration_client(self, trunk: Trunk) -> RegistrationClient:
        endpoint = self.endpoint
        transport = trunk.sip_transport
        user = trunk.username or "frontoffice"
        contact = endpoint.contact(transport, user)
        domain = trunk.from_domain or trunk.host
        registrar = parse_uri(f"sip:{domain}" + (f":{trunk.port}" if trunk.port != 5060 else ""))
        return RegistrationClient(
            aor=parse_uri(f"sip:{user}@{domain}"),
            registrar=registrar,
            contact=contact,
            via=endpoint.via(transport),
            username=trunk.digest_username or user,
            password=trunk.password or "",
            expires=trunk.register_expires,
            realm=trunk.realm,
        )

    async def _registration_loop(self) -> None:
        while True:
            now = self.endpoint.clock()
            due: list[float] = []
            for line in self.lines:
                reg = line.registration
                if reg is None:
                    continue
                request = reg.poll(now)
                if request is not None:
                    self._send_register(line, request)
                at = reg.next_timer()
                if at is not None:
                    due.append(at)
            wait = min([REGISTRATION_TICK_S, *[max(0.0, at - now) for at in due]])
            self._wake.clear()
            await wake_or_timeout(self._wake, max(wait, 0.01))

    def _send_register(
        self, line: TrunkLine, request: Request, done: asyncio.Future[None] | None = None
    ) -> None:
        reg = line.registration
        assert reg is not None

        def on_response(response: Response | None) -> None:
            now = self.endpoint.clock()
            if response is None:
                reg.on_timeout(now)
                log.warning("trunk %s: REGISTER timed out", line.trunk.name)
            elif response.is_provisional:
                return  # the endpoint keeps telling us until the final answer
            else:
                retry = reg.on_response(response, now)
                if retry is not None:
                    self._send_register(line, retry, done)
                    return
                if reg.last_error and not response.is_success:
                    log.warning("trunk %s: registration failed: %s", line.trunk.name, reg.last_error)
            if done is not None and not done.done():
                done.set_result(None)
            self._wake.set()

        self.endpoint.request(request, self.lines.destination(line.trunk), on_response)
