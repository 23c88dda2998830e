"""RFC conformance of the voice channel over loopback (issue 13): sipp as carrier and phones, and a raw
UDP socket sending the exact octets of RFC 4475 torture messages and broken in-dialog requests."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.domain.exceptions import NotFound

from ..conftest import eventually, require_tool
from .sipp.runner import (
    HOST,
    VoiceDesk,
    free_port,
    interactions,
    listening,
    register_phone,
    run_sipp,
    start_voice,
)

NUMBER = "+74951234567"


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings")
    container.voice = service
    await service.start()
    yield service
    await service.stop()
    container.voice = None


def bridged(voice: VoiceService, interaction_id: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return voice.call_state(interaction_id).state == "bridged"
        except NotFound:
            return False

    return check


async def bridged_call(
    sipp: str,
    client: httpx.AsyncClient,
    container: Container,
    admin: dict[str, str],
    voice: VoiceService,
    caller_scenario: str,
) -> tuple[int, str, asyncio.Task[Any], asyncio.Task[Any]]:
    """A carrier call answered by a sipp phone: (interaction id, SIP Call-ID, caller task, phone task)."""
    desk = VoiceDesk(client, container, admin)
    await desk.setup(NUMBER, wrap_up_s=60)
    await desk.agent("alice")
    port = await register_phone(sipp, voice, "alice")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(port)))
    await listening(port)  # the phone's socket is open before the call arrives
    caller = asyncio.create_task(
        run_sipp(sipp, caller_scenario, f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    rows = await eventually(lambda: interactions(container), "the call's interaction")
    interaction_id = int(rows[0].id)
    await eventually(bridged(voice, interaction_id), "the bridge to the agent")
    [row] = await interactions(container)
    return interaction_id, str(row.external_ref), caller, phone


# ---------------------------------------------------------------- defect 3: ACK reusing the branch
async def test_ack_reusing_the_invites_branch_confirms_the_call_and_stops_the_200(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    interaction_id, call_id, caller, phone = await bridged_call(
        sipp, client, container, admin_headers, voice, "caller_ack_reuses_branch.xml"
    )
    # The ACK reached the call: the 200 is no longer retransmitted (before the fix: until 32 s, then BYE).
    await eventually(lambda: not voice.layer.awaiting_ack(call_id, 1), "the 2xx retransmissions stopping")
    voice.hang_up(interaction_id)
    assert (result := await caller).returncode == 0, result.output
    assert (result := await phone).returncode == 0, result.output


# ---------------------------------------------------------------- defect 5: in-dialog CSeq lower than seen
async def test_in_dialog_requests_with_a_lower_cseq_get_500_and_leave_the_call_up(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sipp = require_tool("sipp")
    caplog.set_level(logging.INFO, logger="frontoffice.voice")
    interaction_id, _, caller, phone = await bridged_call(
        sipp, client, container, admin_headers, voice, "caller_stale_cseq.xml"
    )
    # The caller's scenario gets 200 to its re-INVITE (CSeq 3), then 500 to a re-INVITE and to a BYE
    # with CSeq 2; it waits for our BYE, which only comes if the call is still up.
    refusals = await eventually(lambda: refused(caplog, 2), "the stale re-INVITE and BYE being refused")
    assert all(r.exc_info is None for r in refusals)  # one line each, no traceback
    assert voice.call_state(interaction_id).state == "bridged"
    voice.hang_up(interaction_id)
    assert (result := await caller).returncode == 0, result.output
    assert (result := await phone).returncode == 0, result.output


def refused(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    records = [r for r in caplog.records if "CSeq out of order" in r.getMessage()]
    return records if len(records) >= count else []


# ---------------------------------------------------------------- defect 10: answers RFC 3261 §8.2 wants
TORTURE = Path(__file__).parents[1] / "unit" / "sip" / "torture"


class RawPeer(asyncio.DatagramProtocol):
    """A UDP socket that sends exact octets and keeps what comes back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> RawPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=(HOST, 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.put_nowait(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, voice: VoiceService) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, voice.port))

    async def next(self) -> bytes:
        # A guard against a hang, not a timing claim: the answers we wait for come in milliseconds.
        return await asyncio.wait_for(self.received.get(), 5.0)

    async def final(self) -> bytes:
        """The next final response (1xx skipped)."""
        while True:
            data = await self.next()
            if status_of(data) >= 200:
                return data

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def status_of(data: bytes) -> int:
    assert data.startswith(b"SIP/2.0 "), data[:80]
    return int(data[8:11])


def header(data: bytes, name: str) -> str:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return ""


def probe(peer: RawPeer) -> bytes:
    return (
        f"OPTIONS sip:probe@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{peer.port};branch=z9hG4bKprobe{peer.port};rport\r\n"
        f"From: <sip:probe@{HOST}>;tag=probe\r\nTo: <sip:probe@{HOST}>\r\n"
        f"Call-ID: probe-{peer.port}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


_own = itertools.count(1)


def own_vector(
    method: str, *headers: str, body: bytes = b"", uri: str = "sip:+74951234567@127.0.0.1"
) -> bytes:
    """A well-formed request of ours, for the §8.2 answers RFC 4475 has no message for."""
    n = next(_own)
    head = (
        f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKown{n}\r\n"
        f"From: <sip:caller@192.0.2.1>;tag=own\r\nTo: <{uri}>\r\nCall-ID: own-{n}\r\n"
        f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\n" + "".join(f"{h}\r\n" for h in headers)
    )
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


# What our server answers to each RFC 4475 message (None: nothing, it is a response) end to end.
TORTURE_ANSWERS: dict[str, int | None] = {
    "wsinv": 481,  # a re-INVITE (To has a tag) of no dialog of ours
    "intmeth": 501,
    "esc01": 404,  # an INVITE to a number without an entry point
    "escnull": 401,  # REGISTER: challenged
    "esc02": 501,
    "lwsdisp": 200,
    "longreq": 404,
    "dblreq": 401,
    "semiuri": 200,
    "transports": 200,
    "mpart01": 405,  # MESSAGE: known, not served; Allow lists what is
    "unreason": None,
    "noreason": None,
    "badinv01": 400,
    "clerr": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "baddate": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": None,
    "insuf": 400,
    "unkscm": 416,
    "novelsc": 416,
    "unksm2": 401,
    "badbranch": 200,
    "multi01": 400,
    "mcl01": 400,
    "ncl": 400,
    "inv2543": 404,
    "cparam01": 401,
    "cparam02": 401,
    "regescrt": 401,
    "zeromf": 200,
}

OWN_VECTORS: dict[str, tuple[bytes, int]] = {
    "unknown option-tag in Require": (own_vector("OPTIONS", "Require: foo, 100rel"), 420),
    "unknown method": (own_vector("FROBNICATE"), 501),
    "known method we do not serve": (own_vector("SUBSCRIBE", "Event: presence"), 405),
    "body of a type we do not read": (
        own_vector("INVITE", "Content-Type: application/isup;version=itu-t92+", body=b"\x01\x00\x49"),
        415,
    ),
    "tel: Request-URI": (own_vector("OPTIONS", uri="tel:+74951234567"), 416),
    "CANCEL requiring an option (not checked: §8.2.2.3)": (own_vector("CANCEL", "Require: foo"), 481),
}


async def answer_over_udp(voice: VoiceService, data: bytes, *, answered: bool = True) -> int | None:
    """Send ``data`` from a fresh socket; the status of its final answer. With ``answered=False``,
    ``None`` when a probe OPTIONS sent right after it is answered first (the server handles datagrams
    in order and answers a malformed one at once), else the status that came instead."""
    peer = await RawPeer.open()
    try:
        peer.send(data, voice)
        if answered:
            try:
                return status_of(await peer.final())
            except TimeoutError:
                return -1  # no answer at all
        peer.send(probe(peer), voice)
        answer = await peer.final()
        return None if header(answer, "Call-ID") == f"probe-{peer.port}" else status_of(answer)
    finally:
        peer.close()


def with_own_branches(vectors: dict[str, bytes]) -> dict[str, bytes]:
    """RFC 4475 reuses a few branches (kdjuw39234 in unkscm, novelsc and quotbal...); sent one after
    the other, the later ones are retransmissions of the first transaction (§17.2.3) and get its
    answer. Each message whose top branch was already used gets the message name added to it."""
    seen: set[bytes] = set()
    out = {}
    for name, data in vectors.items():
        found = re.search(rb"branch=(z9hG4bK[^;,\r ]*)", data)
        if found and found.group(1) in seen:
            data = data.replace(found.group(0), found.group(0) + b"." + name.encode(), 1)
        elif found:
            seen.add(found.group(1))
        out[name] = data
    return out


async def test_every_rfc_4475_message_gets_the_answer_rfc_3261_wants_over_udp(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    await VoiceDesk(client, container, admin_headers).setup(NUMBER)
    assert sorted(TORTURE_ANSWERS) == sorted(p.stem for p in TORTURE.glob("*.dat"))
    vectors = with_own_branches({name: (TORTURE / f"{name}.dat").read_bytes() for name in TORTURE_ANSWERS})
    answers = {
        name: await answer_over_udp(voice, data, answered=TORTURE_ANSWERS[name] is not None)
        for name, data in vectors.items()
    }
    assert answers == TORTURE_ANSWERS


async def test_section_8_2_answers_for_require_method_scheme_and_body_over_udp(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    await VoiceDesk(client, container, admin_headers).setup(NUMBER)
    answers = {what: await answer_over_udp(voice, data) for what, (data, _) in OWN_VECTORS.items()}
    assert answers == {what: status for what, (_, status) in OWN_VECTORS.items()}


async def test_420_lists_the_unsupported_option_tags_and_415_says_what_we_accept(voice: VoiceService) -> None:
    peer = await RawPeer.open()
    try:
        peer.send(own_vector("OPTIONS", "Require: foo, 100rel"), voice)
        answer = await peer.final()
        assert status_of(answer) == 420 and header(answer, "Unsupported") == "foo, 100rel"
        peer.send(own_vector("INVITE", "Content-Type: text/plain", body=b"hello"), voice)
        answer = await peer.final()
        assert status_of(answer) == 415 and header(answer, "Accept") == "application/sdp"
        peer.send((TORTURE / "mismatch01.dat").read_bytes(), voice)
        answer = await peer.final()
        assert answer.startswith(b"SIP/2.0 400 CSeq method does not match Request-Line\r\n")
    finally:
        peer.close()


async def test_a_flood_of_malformed_datagrams_is_counted_rate_limited_and_does_not_stop_service(
    voice: VoiceService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="frontoffice")
    flood = await RawPeer.open()
    garbage, answerable = 500, 200
    try:
        for n in range(garbage):
            flood.send(b"\x16\x03\x01garbage %d\r\n\r\n" % n, voice)
        for _ in range(answerable):
            flood.send((TORTURE / "mismatch01.dat").read_bytes(), voice)
        counts = voice.malformed.counts
        await eventually(
            lambda: counts.unanswerable + counts.answered + counts.rate_limited == garbage + answerable,
            "every datagram of the flood being seen",
        )
        assert counts.unanswerable == garbage
        assert counts.rate_limited > 0  # one source got its budget of answers, not one per datagram
        # Another peer is served as usual.
        assert await answer_over_udp(voice, own_vector("OPTIONS")) == 200
        answers = 0
        while not flood.received.empty():
            assert status_of(flood.received.get_nowait()) == 400
            answers += 1
        assert answers <= counts.answered
    finally:
        flood.close()
    assert not [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.WARNING]


async def test_200_to_cancel_carries_the_to_tag_of_the_invites_responses(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("nobody", login=False)  # no agent: the caller waits in the queue (183)
    peer = await RawPeer.open()
    try:
        media = free_port()
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {media} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        ).encode()
        via = f"SIP/2.0/UDP {HOST}:{peer.port};branch=z9hG4bKcancel1;rport"
        common = (
            f"From: <sip:+74951230000@{HOST}>;tag=c1\r\nTo: <sip:{NUMBER}@{HOST}>\r\n"
            f"Call-ID: cancel-tag-{peer.port}\r\nMax-Forwards: 70\r\n"
        )
        peer.send(
            (
                f"INVITE sip:{NUMBER}@{HOST} SIP/2.0\r\nVia: {via}\r\n{common}CSeq: 1 INVITE\r\n"
                f"Contact: <sip:caller@{HOST}:{peer.port}>\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(sdp)}\r\n\r\n"
            ).encode()
            + sdp,
            voice,
        )
        while status_of(progress := await peer.next()) != 183:
            pass
        peer.send(
            f"CANCEL sip:{NUMBER}@{HOST} SIP/2.0\r\nVia: {via}\r\n{common}CSeq: 1 CANCEL\r\n"
            f"Content-Length: 0\r\n\r\n".encode(),
            voice,
        )
        finals = {}
        while len(finals) < 2:
            data = await peer.final()
            finals[header(data, "CSeq")] = data
        ok, terminated = finals["1 CANCEL"], finals["1 INVITE"]
        assert (status_of(ok), status_of(terminated)) == (200, 487)
        tag = header(progress, "To").split("tag=")[1]
        assert header(ok, "To").split("tag=")[1] == tag
        assert header(terminated, "To").split("tag=")[1] == tag
        to = f"<sip:{NUMBER}@{HOST}>;tag={tag}"
        ack = (
            f"ACK sip:{NUMBER}@{HOST} SIP/2.0\r\nVia: {via}\r\nFrom: <sip:+74951230000@{HOST}>;tag=c1\r\n"
            f"To: {to}\r\nCall-ID: cancel-tag-{peer.port}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        peer.send(ack.encode(), voice)
    finally:
        peer.close()
