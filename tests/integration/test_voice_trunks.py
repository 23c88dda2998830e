"""Carrier trunks against real peers on loopback: sipp as the carrier (calling us from an allowed and a
refused address, answering our outbound INVITE behind a digest challenge, a registrar we register at)
and sipp as agents' phones. Linux loopback answers on every 127.x address, so 127.0.0.2 is the carrier
and 127.0.0.1 (or 127.0.0.3) is "somewhere else".
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.registrar import RegistrationLimits
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.sip import RegistrationState, Response, parse_datagram
from frontoffice.channels.voice.trunks import Trunk
from frontoffice.config_trunks import SipTrunk
from frontoffice.store.tables import Interaction

from ..conftest import require_tool
from .sipp.runner import (
    API,
    HOST,
    SIP_PASSWORD,
    VoiceDesk,
    free_port,
    interactions,
    listening,
    phone_args,
    run_sipp,
    voice_service,
)

NUMBER = "+74951234567"
CUSTOMER = "+74957654321"
CARRIER = "127.0.0.2"
ELSEWHERE = "127.0.0.3"
TRUNK_USER = "trunkuser"
TRUNK_PASSWORD = "trunk-secret-1"


def make_trunk(**fields: Any) -> Trunk:
    """A trunk validated the way ``sip_trunks`` in the settings is."""
    values: dict[str, Any] = {
        "name": "carrier",
        "host": CARRIER,
        "port": 5060,
        "username": TRUNK_USER,
        "password": TRUNK_PASSWORD,
        **fields,
    }
    trunk = SipTrunk.model_validate(values)
    dumped = trunk.model_dump()
    dumped["password"] = trunk.password.get_secret_value() if trunk.password else None
    return Trunk.from_settings(dumped)


@pytest.fixture
def trunks() -> list[Trunk]:
    return [make_trunk(port=free_port())]


@pytest.fixture
async def voice(container: Container, tmp_path: Path, trunks: list[Trunk]) -> AsyncIterator[VoiceService]:
    service = voice_service(
        container,
        recordings_dir=tmp_path / "recordings",
        limits=RegistrationLimits(max_failures=3),
        trunks=tuple(trunks),
        region="RU",
    )
    container.voice = service  # the API finds it here
    await service.start()
    yield service
    await service.stop()
    container.voice = None


def carrier_port(voice: VoiceService) -> int:
    return voice.trunking.lines[0].trunk.port


async def _eventually(check: Callable[[], Any], what: str) -> None:
    for _ in range(500):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never happened: {what}")


class RawSip:
    """A bare UDP SIP peer bound to ``host``: sends what the test writes, collects what comes back."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((host, 0))
        self.host = host
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    async def send(self, data: bytes, port: int) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, data, (HOST, port))

    async def final(self, wait_s: float = 5.0) -> Response:
        """The next final response (provisionals are skipped)."""
        loop = asyncio.get_running_loop()
        while True:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), wait_s)
            message = parse_datagram(data)
            if isinstance(message, Response) and message.status >= 200:
                return message

    async def silent(self, seconds: float) -> bool:
        """True when nothing arrives for ``seconds`` (a dropped request)."""
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65535), seconds)
        except TimeoutError:
            return True
        return False

    def invite(self, target_port: int, number: str, *, call_id: str, extra: str = "", cseq: int = 1) -> bytes:
        sdp = (
            f"v=0\r\no=peer 1 1 IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        )
        return (
            f"INVITE sip:{number}@{HOST}:{target_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK-{call_id}-{cseq};rport\r\n"
            f"From: <sip:+74950001111@{self.host}>;tag=t-{call_id}\r\nTo: <sip:{number}@{HOST}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:peer@{self.host}:{self.port}>\r\n{extra}"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
        ).encode()


@pytest.fixture
async def fake_carrier(voice: VoiceService) -> AsyncIterator[RawSip]:
    """Listens where the trunk points: anything arriving here left through the trunk."""
    peer = RawSip(CARRIER)
    peer.sock.close()
    peer.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.sock.setblocking(False)
    peer.sock.bind((CARRIER, carrier_port(voice)))
    yield peer
    peer.close()


# ====================================================================== inbound
async def test_trunk_address_reaches_the_entry_point_and_another_address_gets_403(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("offline", login=False)  # the carrier's call waits (183) and then gives up
    target = f"{HOST}:{voice.port}"
    allowed = await run_sipp(sipp, "caller_abandons.xml", target, "-m", "1", "-s", NUMBER, "-i", CARRIER)
    assert allowed.returncode == 0, allowed.output
    refused = await run_sipp(sipp, "caller_refused.xml", target, "-m", "1", "-s", NUMBER, "-i", ELSEWHERE)
    assert refused.returncode == 0, refused.output
    [call] = await interactions(container)  # only the trunk's call became a contact
    assert call.state == "abandoned"


async def test_trunk_at_its_call_limit_answers_503_with_retry_after(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    trunks: list[Trunk],
) -> None:
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("offline", login=False)
    object.__setattr__(trunks[0], "max_calls", 1)
    first, second = RawSip(CARRIER), RawSip(CARRIER)
    try:
        await first.send(first.invite(voice.port, NUMBER, call_id="limit-1"), voice.port)
        await _eventually(lambda: "limit-1" in voice._calls, "the first call is taken")
        await second.send(second.invite(voice.port, NUMBER, call_id="limit-2"), voice.port)
        busy = await second.final()
        assert busy.status == 503 and busy.headers.get("Retry-After") == "30"
        status = voice.trunking.statuses()[0]
        assert status.active_calls == 1 and status.max_calls == 1
    finally:
        first.close()
        second.close()


# ====================================================================== registration out
async def test_registers_at_the_carrier_with_digest_and_the_api_shows_it(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    port = free_port()
    registrar = asyncio.create_task(
        run_sipp(sipp, "carrier_registrar.xml", None, "-m", "1", "-p", str(port), "-i", CARRIER)
    )
    await asyncio.sleep(0.3)  # the carrier's socket is open before we register
    voice = voice_service(
        container,
        trunks=(make_trunk(port=port, register=True, register_expires=300),),
    )
    container.voice = voice
    await voice.start()
    try:
        result = await registrar
        assert result.returncode == 0, result.output
        await _eventually(lambda: voice.trunking.statuses()[0].registered, "the trunk is registered")
        r = await client.get(f"{API}/voice/trunks", headers=admin_headers)
        assert r.status_code == 200, r.text
        [trunk] = r.json()
        assert trunk["name"] == "carrier" and trunk["registered"] is True
        assert trunk["registration_state"] == "registered" and trunk["last_error"] is None
        assert 0 < trunk["registered_for_s"] <= 120  # the carrier granted 120 s of the 300 asked
        assert trunk["active_calls"] == 0
        r = await client.get(f"{API}/voice/trunks", headers=agent_headers)
        assert r.status_code == 403
    finally:
        await voice.stop()
        container.voice = None


async def test_registration_without_an_answer_shows_the_error(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    voice = voice_service(
        container,
        trunks=(make_trunk(port=free_port(), register=True),),
    )
    container.voice = voice
    await voice.start()
    try:
        reg = voice.trunking.lines[0].registration
        assert reg is not None
        await _eventually(lambda: reg.state is RegistrationState.REGISTERING, "a REGISTER is sent")
        # Nothing listens at the carrier's port: Timer F ends the REGISTER; fire it in simulated time.
        voice.clock = lambda: 1e9
        voice._handle(voice.layer.handle_timer(1e9))
        [status] = voice.trunking.statuses()
        assert not status.registered and status.registration_state == "failed"
        assert status.last_error == "no response (timeout)"
        assert reg.next_timer() == 1e9 + 30  # retried after the back-off
    finally:
        await voice.stop()
        container.voice = None


# ====================================================================== calls out
@pytest.mark.parametrize("scenario", ["carrier_uas.xml", "carrier_uas_sha256.xml"])
async def test_dial_out_answers_the_carriers_challenge_and_hangs_up(
    voice: VoiceService, scenario: str
) -> None:
    sipp = require_tool("sipp")
    carrier = asyncio.create_task(
        run_sipp(sipp, scenario, None, "-m", "1", "-p", str(carrier_port(voice)), "-i", CARRIER)
    )
    await asyncio.sleep(0.3)
    leg = await voice.dial_out("8 (495) 765-43-21")
    assert leg.number == CUSTOMER and leg.trunk == "carrier"
    assert await leg.wait_answered(), (leg.status, leg.reason)
    assert leg.answer is not None and voice.trunking.statuses()[0].active_calls == 1
    leg.hang_up()
    result = await carrier
    assert result.returncode == 0, result.output
    assert leg.state == "ended"
    assert voice.trunking.statuses()[0].active_calls == 0


async def test_dial_out_with_a_wrong_trunk_password_fails_with_the_carriers_403(
    container: Container, tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    port = free_port()
    voice = voice_service(
        container,
        trunks=(make_trunk(port=port, password="not-the-password"),),
    )
    await voice.start()
    try:
        carrier = asyncio.create_task(
            run_sipp(sipp, "carrier_uas.xml", None, "-m", "1", "-p", str(port), "-i", CARRIER, timeout_s=10)
        )
        await asyncio.sleep(0.3)
        leg = await voice.dial_out(CUSTOMER)
        assert not await leg.wait_answered()
        assert leg.state == "failed" and leg.status == 403
        await carrier
    finally:
        await voice.stop()


async def test_click_to_call_rings_the_agent_then_the_customer_and_records_an_outbound_interaction(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    agent_id = await desk.agent("alice")
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Pyotr", "identities": [{"kind": "phone", "value": CUSTOMER}]},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    customer_id = r.json()["id"]
    # Without a registered phone the agent is told so.
    r = await client.post(f"{API}/voice/calls", json={"number": CUSTOMER}, headers=desk.headers["alice"])
    assert r.status_code == 409 and r.json()["error_id"] == "phone-not-registered"
    phone_port = free_port()
    ok = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("alice", SIP_PASSWORD, phone_port)
    )
    assert ok.returncode == 0, ok.output
    r = await client.post(
        f"{API}/voice/calls", json={"number": "not a number"}, headers=desk.headers["alice"]
    )
    assert r.status_code in (400, 422), r.text
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(phone_port)))
    carrier = asyncio.create_task(
        run_sipp(
            sipp, "carrier_uas_hangs_up.xml", None, "-m", "1", "-p", str(carrier_port(voice)), "-i", CARRIER
        )
    )
    await asyncio.sleep(0.3)
    r = await client.post(
        f"{API}/voice/calls",
        json={"number": "84957654321", "customer_id": customer_id},
        headers=desk.headers["alice"],
    )
    assert r.status_code == 202, r.text
    interaction_id = r.json()["interaction_id"]
    # On the call, the agent is out of routing (the ACD offers nothing), and back afterwards.
    await _eventually(
        lambda: _agent(container, agent_id, "not_ready", "outbound_call"), "the agent is busy on the call"
    )
    assert (await carrier).returncode == 0  # the carrier answered, talked and hung up
    assert (await phone).returncode == 0  # the agent's phone rang, answered, got our BYE
    await _eventually(lambda: _state(container, interaction_id, "done"), "the outbound interaction is done")
    await _eventually(lambda: _agent(container, agent_id, "available", None), "the agent is available again")
    [call] = [i for i in await interactions(container) if i.id == interaction_id]
    assert call.direction == "outbound" and call.channel == "voice"
    assert call.agent_id == agent_id and call.customer_id == customer_id
    assert call.to_address == CUSTOMER and call.connected_at is not None
    [recording] = call.attributes["recordings"]  # recorded like an inbound call
    assert await asyncio.to_thread(Path(recording).exists)
    r = await client.get(f"{API}/customers/{customer_id}/timeline", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert interaction_id in [item.get("interaction_id", item.get("id")) for item in r.json()["items"]]


async def _agent(container: Container, agent_id: int, state: str, reason: str | None) -> bool:
    status = container.acd.engine.agent_status(str(agent_id))
    return (status.state, status.reason) == (state, reason)


async def _state(container: Container, interaction_id: int, state: str) -> bool:
    async with container.sessions() as s:
        row = await s.get(Interaction, interaction_id)
        return row is not None and row.state == state


async def test_registered_phone_dials_an_external_number_through_the_trunk(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    agent_id = await desk.agent("bob")
    phone_port = free_port()
    ok = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("bob", SIP_PASSWORD, phone_port)
    )
    assert ok.returncode == 0, ok.output
    carrier = asyncio.create_task(
        run_sipp(sipp, "carrier_uas.xml", None, "-m", "1", "-p", str(carrier_port(voice)), "-i", CARRIER)
    )
    await asyncio.sleep(0.3)
    phone = await run_sipp(
        sipp,
        "phone_dials_out.xml",
        f"{HOST}:{voice.port}",
        *phone_args("bob", SIP_PASSWORD, free_port()),
        "-key",
        "user",
        "bob",
        "-s",
        "84957654321",
        # Phones put the Request-URI in the digest (RFC 7616 §3.4.6); sipp needs telling.
        "-auth_uri",
        f"84957654321@{HOST}:{voice.port}",
    )
    carrier_result = await carrier
    assert phone.returncode == 0, phone.output + carrier_result.output
    assert carrier_result.returncode == 0, carrier_result.output  # it got our BYE when the phone hung up
    await _eventually(lambda: _any_state(container, "done"), "the phone's call is recorded")
    [call] = await interactions(container)
    assert call.direction == "outbound" and call.agent_id == agent_id and call.to_address == CUSTOMER
    assert call.attributes["origin"] == "phone"


async def test_the_carriers_hold_on_a_call_out_is_answered_recvonly(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    # Issue 13, defect 8: the carrier's re-INVITE with a=sendonly used to get our offer (sendrecv) back.
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("bob")
    phone_port = free_port()
    ok = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("bob", SIP_PASSWORD, phone_port)
    )
    assert ok.returncode == 0, ok.output
    carrier = asyncio.create_task(
        run_sipp(
            sipp, "carrier_uas_holds.xml", None, "-m", "1", "-p", str(carrier_port(voice)), "-i", CARRIER
        )
    )
    await listening(carrier_port(voice))
    phone = await run_sipp(
        sipp,
        "phone_dials_out.xml",
        f"{HOST}:{voice.port}",
        *phone_args("bob", SIP_PASSWORD, free_port()),
        "-key",
        "user",
        "bob",
        "-s",
        "84957654321",
        "-auth_uri",
        f"84957654321@{HOST}:{voice.port}",
    )
    carrier_result = await carrier
    assert phone.returncode == 0, phone.output + carrier_result.output
    # The scenario checks that our 200 to its hold says a=recvonly, then gets our BYE.
    assert carrier_result.returncode == 0, carrier_result.output


async def _any_state(container: Container, state: str) -> bool:
    return any(i.state == state for i in await interactions(container))


# ====================================================================== toll fraud and scanners
async def test_no_unauthenticated_invite_ever_leaves_through_the_trunk(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    fake_carrier: RawSip,
) -> None:
    """Toll-fraud rule: carrier calls, strangers and phones without (right) credentials cannot reach an
    external number; the carrier never sees an INVITE."""
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("carol")
    ok = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("carol", SIP_PASSWORD, free_port())
    )
    assert ok.returncode == 0, ok.output
    # 1. From the carrier's own address (trusted for inbound calls only) to an external number: 404.
    from_trunk = RawSip(CARRIER)
    # 2. From the registered phone's address without credentials: challenged, then 403 for bad ones.
    from_phone_host = RawSip(HOST)
    # 3. From an address no phone registered from: 403 straight away.
    stranger = RawSip(ELSEWHERE)
    try:
        await from_trunk.send(from_trunk.invite(voice.port, CUSTOMER, call_id="fraud-1"), voice.port)
        assert (await from_trunk.final()).status == 404
        await from_phone_host.send(
            from_phone_host.invite(voice.port, CUSTOMER, call_id="fraud-2"), voice.port
        )
        challenge = await from_phone_host.final()
        assert challenge.status == 401 and challenge.headers.get("WWW-Authenticate")
        forged = (
            'Authorization: Digest username="carol", realm="frontoffice", nonce="1.2.3", '
            f'uri="sip:{CUSTOMER}@{HOST}:{voice.port}", response="00000000000000000000000000000000", '
            "algorithm=MD5, qop=auth, nc=00000001, cnonce=x\r\n"
        )
        await from_phone_host.send(
            from_phone_host.invite(voice.port, CUSTOMER, call_id="fraud-2", extra=forged, cseq=2), voice.port
        )
        assert (await from_phone_host.final()).status == 403
        await stranger.send(stranger.invite(voice.port, CUSTOMER, call_id="fraud-3"), voice.port)
        assert (await stranger.final()).status == 403
        assert await fake_carrier.silent(1.0), "an unauthenticated INVITE reached the carrier"
        assert await interactions(container) == []
    finally:
        for peer in (from_trunk, from_phone_host, stranger):
            peer.close()


async def test_scanner_user_agent_on_invite_is_dropped_and_banned(voice: VoiceService) -> None:
    scanner = RawSip(ELSEWHERE)
    try:
        await scanner.send(
            scanner.invite(voice.port, "100", call_id="scan-1", extra="User-Agent: friendly-scanner\r\n"),
            voice.port,
        )
        assert await scanner.silent(0.5)
        assert voice.registrar.is_banned(ELSEWHERE, voice.clock())
    finally:
        scanner.close()


async def test_repeated_refused_invites_ban_the_address(voice: VoiceService) -> None:
    prober = RawSip(ELSEWHERE)
    try:
        for n in range(3):  # max_failures=3 in this fixture
            await prober.send(prober.invite(voice.port, f"10{n}", call_id=f"probe-{n}"), voice.port)
            assert (await prober.final()).status == 403
        assert voice.registrar.is_banned(ELSEWHERE, voice.clock())
        # A new socket (the old one still gets the 403s retransmitted, as it never ACKed).
        again = RawSip(ELSEWHERE)
        await again.send(again.invite(voice.port, "200", call_id="probe-x"), voice.port)
        assert await again.silent(0.5)
        again.close()
    finally:
        prober.close()


async def test_click_to_call_with_baresip_as_the_agents_phone(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    """A real softphone: baresip registers, auto-answers our call, hears the carrier through the relay."""
    from .test_voice_baresip import baresip_phone

    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    agent_id = await desk.agent("softphone")
    confdir = tmp_path / "baresip"
    async with baresip_phone(confdir, "softphone", voice.port):
        await _eventually(lambda: voice.registrar.bindings(agent_id, voice.clock()), "baresip registered")
        carrier = asyncio.create_task(
            run_sipp(
                sipp,
                "carrier_uas_hangs_up.xml",
                None,
                "-m",
                "1",
                "-p",
                str(carrier_port(voice)),
                "-i",
                CARRIER,
            )
        )
        await asyncio.sleep(0.3)
        r = await client.post(
            f"{API}/voice/calls", json={"number": CUSTOMER}, headers=desk.headers["softphone"]
        )
        assert r.status_code == 202, r.text
        interaction_id = r.json()["interaction_id"]
        result = await carrier
        assert result.returncode == 0, result.output + (confdir / "baresip.log").read_text(errors="replace")
        await _eventually(lambda: _state(container, interaction_id, "done"), "the call is done")
    [call] = await interactions(container)
    assert call.direction == "outbound" and call.agent_id == agent_id and call.customer_id is not None
