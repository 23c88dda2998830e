"""Shared pieces of the voice tests: free ports, a running VoiceService, sipp as a subprocess."""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.media import PythonMediaBackend, RtpPorts
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.registrar import RegistrationLimits
from frontoffice.channels.voice.service import VoiceService
from frontoffice.domain.model import Role
from frontoffice.store.tables import Interaction, InteractionEvent

from ...conftest import free_port, token_headers

SCENARIOS = Path(__file__).parent
API = "/api/v1"
SIP_PASSWORD = "phone-secret-123"
HOST = "127.0.0.1"


def voice_service(
    container: Container, *, media_process: bool = True, rtp_ports: RtpPorts | None = None, **options: Any
) -> VoiceService:
    """A voice service on loopback, on a free port; ``options`` are :class:`VoiceService` keyword
    arguments (trunks, TLS, recordings, limits...). Media runs in a media process, as in production
    (``media_process=False``: in this process, for tests that look inside a session), on any free
    ports or on those of ``rtp_ports``."""
    assert container.voice_calls is not None
    return VoiceService(
        container.voice_calls,
        ProcessMediaBackend(HOST, rtp_ports=rtp_ports)
        if media_process
        else PythonMediaBackend(HOST, rtp_ports=rtp_ports),
        host=HOST,
        port=free_port(),
        secret=b"test-nonce-secret",
        realm=container.voice_calls.realm,
        **options,
    )


def start_voice(
    container: Container, recordings: Path, prompts: dict[str, bytes] | None = None, **limits: float
) -> VoiceService:
    return voice_service(
        container,
        recordings_dir=recordings,
        limits=RegistrationLimits(**limits),  # type: ignore[arg-type]
        prompts=prompts,
    )


@dataclass
class SippResult:
    returncode: int
    output: str


async def run_sipp(
    sipp: str, scenario: str, target: str | None, *args: str, timeout_s: float = 60.0, tail: int = 1500
) -> SippResult:
    """Run one sipp scenario to completion without blocking the event loop our server runs on.

    ``target`` is the remote ``host:port`` for client scenarios, ``None`` for a server (UAS) one.
    ``tail`` characters of sipp's screen are kept (its final statistics need about 5000).
    """
    errors = Path(tempfile.mkstemp(prefix="sipp-", suffix=".log")[1])
    process = await asyncio.create_subprocess_exec(
        sipp,
        "-trace_err",
        "-error_file",
        str(errors),
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        HOST,
        "-mi",
        HOST,
        "-nostdin",
        "-timeout",
        f"{int(timeout_s)}s",
        "-recv_timeout",
        "20000",
        "-mp",
        str(free_port()),
        *args,
        *([target] if target else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout_s + 15)
    assert process.returncode is not None
    return SippResult(process.returncode, _take_log(errors) + out.decode(errors="replace")[-tail:])


def _take_log(path: Path) -> str:
    """sipp's error log says which message was unexpected (its screen only counts failures)."""
    detail = path.read_text(errors="replace")[-4000:] if path.exists() else ""
    path.unlink(missing_ok=True)
    return detail


async def interactions(container: Container) -> list[Interaction]:
    """Every interaction in the store, oldest first."""
    async with container.sessions() as s:
        return list(await s.scalars(select(Interaction).order_by(Interaction.id)))


async def event_types(container: Container, interaction_id: int) -> list[str]:
    """The types of an interaction's events, in the order they were logged."""
    async with container.sessions() as s:
        rows = await s.scalars(
            select(InteractionEvent.type)
            .where(InteractionEvent.interaction_id == interaction_id)
            .order_by(InteractionEvent.id)
        )
        return list(rows)


def _udp_bound(port: int) -> bool:
    """Whether some socket on this machine is bound to UDP ``port`` (read from /proc: probing with a
    bind of our own could take the port from under sipp)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(row.split()[1].endswith(suffix) for row in rows):
            return True
    return False


async def listening(*ports: int, timeout_s: float = 20.0) -> None:
    """Wait until the sipp phones started on ``ports`` have opened their sockets, so that a call placed
    next reaches them (and is not refused by a port nobody listens on yet)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not all(_udp_bound(port) for port in ports):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"sipp did not open UDP ports {ports}")
        await asyncio.sleep(0.02)


async def register_phone(sipp: str, voice: VoiceService, name: str) -> int:
    """Register a sipp phone of SIP account ``name`` (password :data:`SIP_PASSWORD`) from a free local
    port; returns the port, where a phone scenario then answers (:func:`start_phone`)."""
    port = free_port()
    result = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args(name, SIP_PASSWORD, port)
    )
    assert result.returncode == 0, result.output
    return port


async def start_phone(sipp: str, scenario: str, port: int, *args: str) -> asyncio.Task[SippResult]:
    """Start a sipp phone (UAS ``scenario``) on ``port``; returns once its socket is open, so no call
    placed next can miss it. Await the task for its result."""
    task = asyncio.create_task(run_sipp(sipp, scenario, None, "-m", "1", "-p", str(port), *args))
    await listening(port)
    return task


def phone_args(name: str, password: str, port: int) -> list[str]:
    """sipp options for one registration of account ``name`` from local ``port``."""
    return ["-m", "1", "-s", name, "-au", name, "-ap", password, "-p", str(port)]


async def register_phone_bank(sipp: str, target: str, names: list[str], password: str, port: int) -> None:
    """Register every account in ``names`` from one local ``port``, where one sipp UAS then answers
    all their calls (a bank of auto-answering phones). One sipp run per account: sipp 3.6 cannot take
    the digest username from an injection file."""
    for name in names:
        result = await run_sipp(sipp, "register.xml", target, *phone_args(name, password, port))
        assert result.returncode == 0, f"{name}: {result.output}"


def sipp_counts(output: str) -> tuple[int, int]:
    """(successful, failed) calls from sipp's final statistics screen; (0, 0) if it is not there."""
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", output)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", output)
    return (int(ok[-1]) if ok else 0), (int(bad[-1]) if bad else 0)


class VoiceDesk:
    """One queue, a voice entry point and agents with SIP accounts, configured through the API."""

    def __init__(self, client: httpx.AsyncClient, container: Container, admin: dict[str, str]) -> None:
        self.client = client
        self.container = container
        self.admin = admin
        self.queue_id = 0
        self.agent_ids: dict[str, int] = {}
        self.headers: dict[str, dict[str, str]] = {}

    async def setup(self, number: str = "+74951234567", **queue: object) -> None:
        r = await self.client.post(
            f"{API}/queues", json={"name": "Support", "settings": queue}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        self.queue_id = int(r.json()["id"])
        r = await self.client.post(
            f"{API}/entry-points",
            json={
                "name": "Hotline",
                "channel": "voice",
                "address": number,
                "default_queue_id": self.queue_id,
            },
            headers=self.admin,
        )
        assert r.status_code == 201, r.text

    async def agent(self, name: str, *, login: bool = True) -> int:
        headers = await token_headers(self.container, name, Role.AGENT)
        me = (await self.client.get(f"{API}/me", headers=headers)).json()
        r = await self.client.put(
            f"{API}/agents/{me['id']}", json={"queues": {str(self.queue_id): 1}}, headers=self.admin
        )
        assert r.status_code == 200, r.text
        r = await self.client.put(
            f"{API}/agents/{me['id']}/sip",
            json={"username": name, "password": SIP_PASSWORD},
            headers=self.admin,
        )
        assert r.status_code == 200, r.text
        if login:
            r = await self.client.post(f"{API}/agent/login", json={}, headers=headers)
            assert r.status_code == 204, r.text
        self.agent_ids[name] = int(me["id"])
        self.headers[name] = headers
        return int(me["id"])
