"""The inbound B2BUA (service.py) without sockets: SIP messages in through ``on_message``, what it would
send caught on the endpoint's ``wire``, a fake media backend and a fake ACD side, a clock the test moves.
Races and timeouts that are hard to hit over loopback are exact here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from frontoffice.channels.voice.media import MediaStats
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.sip import (
    Destination,
    Dialog,
    Message,
    NameAddress,
    Request,
    Response,
    Transmit,
    Via,
    authorize_request,
    build_cancel,
    build_offer,
    build_request,
    build_response,
    digest_ha1,
    parse_datagram,
    parse_uri,
    with_direction,
)
from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, NotFound
from frontoffice.services.voice_calls import ConferenceTarget, IvrMenu, SipAccount

SIP_SECRET = "phone-secret-123"
MENU_NUMBER = "+74950000000"  # the entry point with a menu
CARRIER = Destination("192.0.2.1", 5060)
PHONE = Destination("192.0.2.50", 5062)
AGENT_ID = 42
INTERACTION = 7
T1 = 0.5
TIMER_H = 64 * T1  # RFC 3261 §17.2.1


@dataclass
class FakeSession:
    address: str = "198.51.100.1"
    caller_port: int = 40000
    agent_port: int = 40002
    stats: MediaStats = field(default_factory=MediaStats)
    closed: bool = False
    bridged: int = 0
    music: int = 0  # play_hold_music calls
    caller_media: Any = None
    agent_media: Any = None
    caller_signalling_ip: str | None = None
    agent_signalling_ip: str | None = None

    def set_caller(self, media: Any, *, signalling_ip: str | None = None) -> None:
        self.caller_media, self.caller_signalling_ip = media, signalling_ip

    def set_agent(self, media: Any, *, signalling_ip: str | None = None) -> None:
        self.agent_media, self.agent_signalling_ip = media, signalling_ip

    def update_caller(self, media: Any) -> None:
        self.caller_media = media

    def update_agent(self, media: Any) -> None:
        self.agent_media = media

    def play_hold_music(self) -> None:
        self.music += 1

    def play_prompt(self, pcm: bytes) -> None: ...

    def bridge(self) -> None:
        self.bridged += 1

    def record(self, mixed_path: Any, stereo_path: Any = None) -> None: ...

    async def close(self) -> MediaStats:
        self.closed = True
        return self.stats


class FakeMedia:
    """Opens sessions at once, or when ``gate`` is set (to hold the call in its first await)."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.held = asyncio.Event()  # a call is waiting at the gate
        self.sessions: list[FakeSession] = []
        self.conferences: dict[str, set[tuple[int, str]]] = {}  # id: (session's index, side)
        self.recorded_with: list[tuple[int, int]] = []  # (third party's session, the call's) indexes

    def join_conference(self, conference_id: str, session: FakeSession, side: str) -> None:
        self.conferences.setdefault(conference_id, set()).add((self.sessions.index(session), side))

    def leave_conference(self, conference_id: str, session: FakeSession, side: str) -> None:
        self.conferences.get(conference_id, set()).discard((self.sessions.index(session), side))

    def record_with(self, session: FakeSession, recording: FakeSession) -> None:
        self.recorded_with.append((self.sessions.index(session), self.sessions.index(recording)))

    def in_conference(self) -> set[tuple[int, str]]:
        """Every (session index, side) in some conference now."""
        return set().union(*self.conferences.values())

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def open_session(self, on_dtmf: Callable[[str], None]) -> FakeSession:
        if self.gate is not None:
            self.held.set()
            await self.gate.wait()
        session = FakeSession()
        self.sessions.append(session)
        return session


class FakeAcd:
    def __init__(self) -> None:
        self.listeners: list[Callable[[list[r.Output]], None]] = []

    def add_listener(
        self, listener: Callable[[list[r.Output]], None], *, on_every_node: bool = False
    ) -> None:
        self.listeners.append(listener)

    def offer(self, *agent_ids: int) -> None:
        offer = r.OfferContact(str(INTERACTION), tuple(str(a) for a in agent_ids), "1", "voice", 0.0)
        for listener in self.listeners:
            listener([offer])


class FakeVoiceCalls:
    """The ACD side as the B2BUA calls it: records each use case it was asked for."""

    realm = "frontoffice"
    # Outbound calls' records are not used here (no trunks): a stand-in with the names they read.
    contact_center = SimpleNamespace(acd=None, sessions=None, crm=None, interactions=None, clock=None)

    def __init__(self) -> None:
        self.acd = FakeAcd()
        self.account_gate: asyncio.Event | None = None
        self.account_asked = asyncio.Event()  # a look-up is waiting at the gate
        self.steps: list[tuple[str, Any]] = []
        self.legs: list[dict[str, Any]] = []
        self.accounts: dict[str, int] = {}  # SIP username: agent id (password SIP_SECRET)
        self.signed_out: set[int] = set()  # agents the ACD cannot hand a call to

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def entry_for(self, dialled: str) -> Any:
        """Every number is an entry point; a name (a colleague's extension) is none."""
        if not dialled.lstrip("+").isdigit():
            raise NotFound("No voice entry point for this number", error_id="no-such-entry-point")
        menu = IvrMenu(choices=["1", "2"], timeout_s=30, repeats=0) if dialled == MENU_NUMBER else None
        return SimpleNamespace(entry_point_id=1, ivr=menu)

    async def sip_account(self, username: str) -> Any:
        """The account of ``accounts`` (else none: the digest check fails); held at ``account_gate``
        while it is set."""
        if self.account_gate is not None:
            self.account_asked.set()
            await self.account_gate.wait()
        user_id = self.accounts.get(username)
        if user_id is None:
            return None
        return SipAccount(
            user_id, username, self.realm, {"MD5": digest_ha1("MD5", username, self.realm, SIP_SECRET)}
        )

    async def call_arrived(self, inbound: Any) -> int:
        self.steps.append(("arrived", inbound.call_id))
        self.steps.append(("ivr_choice", inbound.ivr_choice))
        return INTERACTION

    async def call_abandoned(self, interaction_id: int) -> None:
        self.steps.append(("abandoned", interaction_id))

    async def offer_answered(self, interaction_id: int, agent_id: int) -> None:
        self.steps.append(("answered", agent_id))

    async def offer_declined(self, interaction_id: int, agent_id: int) -> None:
        self.steps.append(("declined", agent_id))

    async def call_ended(self, interaction_id: int) -> None:
        self.steps.append(("ended", interaction_id))

    async def annotate(self, interaction_id: int, **attributes: Any) -> None: ...

    async def record_leg(self, interaction_id: int, leg: dict[str, Any], at: datetime) -> None:
        self.legs.append(leg)

    async def caller_language(self, interaction_id: int) -> str | None:
        return None

    async def refer_target(self, user: str) -> tuple[int | None, int | None]:
        if user == "queue-2":
            return 2, None
        return None, self.accounts.get(user)

    def check_transfer_target(self, agent_id: int) -> None:
        if agent_id in self.signed_out:
            raise Conflict("The colleague is not signed in to take calls", error_id="colleague-not-signed-in")

    async def transferred_out(self, interaction_id: int, number: str) -> None:
        self.steps.append(("transferred_out", number))

    async def transfer(self, interaction_id: int, *, queue_id: int | None, agent_id: int | None) -> None:
        """The ACD moves the contact and says so, as the real one does (to an agent: offered to them)."""
        self.steps.append(("transfer", queue_id if agent_id is None else agent_id))
        to_agent = None if agent_id is None else str(agent_id)
        outputs: list[r.Output] = [
            r.ContactTransferred(str(interaction_id), "1", str(queue_id or 1), to_agent, str(AGENT_ID))
        ]
        if to_agent is not None:
            outputs.append(r.OfferContact(str(interaction_id), (to_agent,), "1", "voice", 0.0))
        for listener in self.acd.listeners:
            listener(outputs)


class NoWait:
    """The §14.1 back-off drawn as its lower bound, so the retry follows at the next loop turn."""

    def uniform(self, low: float, high: float) -> float:
        return low


@dataclass
class Bench:
    voice: VoiceService
    calls: FakeVoiceCalls
    media: FakeMedia
    sent: list[tuple[Message, Destination]]
    clock: list[float]

    def take(self) -> list[tuple[Message, Destination]]:
        out, self.sent[:] = list(self.sent), []
        return out

    def requests(self, method: str, to: Destination | None = None) -> list[Request]:
        return [
            m
            for m, d in self.sent
            if isinstance(m, Request) and m.method == method and (to is None or d == to)
        ]

    def responses(self, status: int, method: str | None = None) -> list[Response]:
        return [
            m
            for m, _ in self.sent
            if isinstance(m, Response) and m.status == status and (method is None or m.cseq.method == method)
        ]

    async def settled(self) -> None:
        """Let the tasks the last message started run to their end (loop turns, no timed sleep)."""
        for _ in range(1000):
            await asyncio.sleep(0)
            if self.voice.is_idle:
                return
        pytest.fail("the B2BUA's tasks did not finish")


@pytest.fixture
async def bench() -> Any:
    calls, media = FakeVoiceCalls(), FakeMedia()
    sent: list[tuple[Message, Destination]] = []
    clock = [1000.0]

    def wire(transmit: Transmit) -> None:
        message = parse_datagram(transmit.data)
        assert isinstance(message, Request | Response)
        sent.append((message, transmit.destination))

    voice = VoiceService(
        calls,  # type: ignore[arg-type]
        media,  # type: ignore[arg-type]
        host="198.51.100.1",
        port=5060,
        secret=b"k",
        realm="frontoffice",
        clock=lambda: clock[0],
        announce_interval_s=None,
        wire=wire,
    )
    voice.backoff_random = NoWait()  # type: ignore[assignment]
    await voice.start()
    yield Bench(voice, calls, media, sent, clock)
    await voice.stop()


def _caller_invite(
    number: str = "+74951234567", extra_headers: list[tuple[str, str]] | None = None
) -> Request:
    sdp = build_offer(address=CARRIER.host, port=30000, session_id="1")
    return build_request(
        "INVITE",
        parse_uri(f"sip:{number}@198.51.100.1"),
        from_addr=NameAddress(parse_uri("sip:+74950001111@192.0.2.1")),
        to_addr=NameAddress(parse_uri(f"sip:{number}@198.51.100.1")),
        via=Via(transport="UDP", host=CARRIER.host, port=CARRIER.port),
        contact=NameAddress(parse_uri("sip:carrier@192.0.2.1:5060")),
        body=sdp.serialize(),
        content_type="application/sdp",
        extra_headers=extra_headers or [],
    )


def _register_phone(
    bench: Bench, user: str = "alice", phone: Destination = PHONE, agent_id: int = AGENT_ID
) -> None:
    register = build_request(
        "REGISTER",
        parse_uri("sip:198.51.100.1"),
        from_addr=NameAddress(parse_uri(f"sip:{user}@198.51.100.1")),
        to_addr=NameAddress(parse_uri(f"sip:{user}@198.51.100.1")),
        via=Via(transport="UDP", host=phone.host, port=phone.port),
        contact=NameAddress(parse_uri(f"sip:{user}@{phone.host}:{phone.port}")),
    )
    assert bench.voice.registrar.register(register, phone, agent_id, user, bench.clock[0]).status == 200


def _answer(
    request: Request, tag: str, at: Destination, extra_headers: list[tuple[str, str]] | None = None
) -> Response:
    sdp = build_offer(address=at.host, port=32000, session_id="2")
    return build_response(
        request,
        200,
        to_tag=tag,
        contact=NameAddress(parse_uri(f"sip:x@{at.host}:{at.port}")),
        body=sdp.serialize(),
        content_type="application/sdp",
        extra_headers=extra_headers or (),
    )


async def _bridged_call(bench: Bench) -> tuple[Request, Response]:
    """A caller queued, rung to the agent's phone, the phone's 200: returns the caller's INVITE and
    our 200 to it (not yet ACKed)."""
    _register_phone(bench)
    invite = _caller_invite()
    bench.voice.on_message(invite, CARRIER)
    await bench.settled()
    assert bench.responses(183)
    bench.calls.acd.offer(AGENT_ID)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.voice.on_message(_answer(to_phone, "phone1", PHONE), PHONE)
    await bench.settled()
    [ok] = bench.responses(200, "INVITE")
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    return invite, ok


async def test_a_cancel_while_the_media_session_opens_ends_the_invite_with_487_and_queues_nothing(
    bench: Bench,
) -> None:
    bench.media.gate = asyncio.Event()  # the call is stuck in its first await
    invite = _caller_invite()
    bench.voice.on_message(invite, CARRIER)
    await bench.media.held.wait()
    bench.voice.on_message(build_cancel(invite), CARRIER)
    assert bench.responses(200, "CANCEL") and bench.responses(487, "INVITE")
    bench.media.gate.set()
    await bench.settled()
    assert bench.calls.steps == []  # never recorded, never queued
    assert bench.media.sessions[0].closed and not bench.voice.live_call_ids()


async def test_a_cancel_while_queued_cancels_the_ringing_phone_and_abandons_the_contact(bench: Bench) -> None:
    _register_phone(bench)
    invite = _caller_invite()
    bench.voice.on_message(invite, CARRIER)
    await bench.settled()
    bench.calls.acd.offer(AGENT_ID)
    assert bench.requests("INVITE", PHONE)
    bench.voice.on_message(build_cancel(invite), CARRIER)
    await bench.settled()
    assert bench.responses(487, "INVITE")
    assert bench.requests("CANCEL", PHONE)
    assert ("abandoned", INTERACTION) in bench.calls.steps


async def test_no_ack_for_our_200_ends_the_call_with_bye_to_the_caller_and_the_phone(bench: Bench) -> None:
    await _bridged_call(bench)
    bench.take()
    bench.clock[0] += TIMER_H + 1
    bench.voice.endpoint.fire_timers(bench.clock[0])
    await bench.settled()
    assert bench.requests("BYE", CARRIER) and bench.requests("BYE", PHONE)
    assert ("ended", INTERACTION) in bench.calls.steps
    caller_leg = next(leg for leg in bench.calls.legs if leg["leg"] == "caller")
    assert caller_leg["cause"] == "ack_timeout"


async def test_a_reinvite_crossing_our_hold_gets_491_and_ours_goes_again_after_491(bench: Bench) -> None:
    invite, ok = await _bridged_call(bench)
    caller = Dialog.from_uac(invite, ok)
    bench.voice.on_message(caller.ack(invite.cseq.seq), CARRIER)
    bench.take()
    bench.voice.hold(INTERACTION)
    [ours] = bench.requests("INVITE", CARRIER)
    theirs, _ = caller.hold(build_offer(address=CARRIER.host, port=30000, session_id="1"))
    bench.voice.on_message(theirs, CARRIER)
    assert [r.cseq.seq for r in bench.responses(491, "INVITE")] == [theirs.cseq.seq]  # RFC 3261 §14.2
    bench.take()
    bench.voice.on_message(build_response(ours, 491), CARRIER)
    assert not bench.voice.call_state(INTERACTION).hold_synced
    for _ in range(100):  # the back-off (drawn as 0 s here) runs out at a coming loop turn
        await asyncio.sleep(0)
        if bench.requests("INVITE", CARRIER):
            break
    [again] = bench.requests("INVITE", CARRIER)
    assert b"a=sendonly" in again.body and again.cseq.seq > ours.cseq.seq
    bench.voice.on_message(_answer(again, "ignored", CARRIER), CARRIER)
    assert bench.requests("ACK", CARRIER)
    state = bench.voice.call_state(INTERACTION)
    assert state.held and state.hold_synced


async def test_the_first_phone_to_answer_wins_and_the_other_phone_is_cancelled(bench: Bench) -> None:
    desk, soft = Destination("192.0.2.60", 5060), Destination("192.0.2.61", 5060)
    _register_phone(bench, phone=desk)
    bench.clock[0] += 10
    _register_phone(bench, phone=soft)
    bench.voice.on_message(_caller_invite(), CARRIER)
    await bench.settled()
    bench.calls.acd.offer(AGENT_ID)
    [to_desk], [to_soft] = bench.requests("INVITE", desk), bench.requests("INVITE", soft)
    assert bench.sent.index((to_soft, soft)) < bench.sent.index((to_desk, desk))  # newest first
    bench.voice.on_message(_answer(to_soft, "soft", soft), soft)
    await bench.settled()
    assert bench.requests("CANCEL", desk) and not bench.requests("CANCEL", soft)
    assert ("answered", AGENT_ID) in bench.calls.steps
    # The desk phone's 200 crossed our CANCEL: it is ACKed and hung up, the call stays bridged.
    late = _answer(to_desk, "desk", desk)
    bench.voice.on_message(late, desk)
    assert bench.requests("ACK", desk) and bench.requests("BYE", desk)
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    # Its 200 again (our ACK was lost): ACKed again (RFC 3261 §13.2.2.4), nothing else changes.
    bench.take()
    bench.voice.on_message(late, desk)
    assert bench.requests("ACK", desk) and not bench.requests("BYE", desk)


def _phone_dialog(to_phone: Request, answer: Response) -> Dialog:
    """The agent phone's side of our INVITE's dialog (it is the UAS)."""
    return Dialog.from_uas(to_phone, answer, via=Via(transport="UDP", host=PHONE.host, port=PHONE.port))


async def test_a_transfer_back_to_the_queue_releases_the_phone_and_the_caller_waits_again(
    bench: Bench,
) -> None:
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    bench.take()
    transferred = r.ContactTransferred(str(INTERACTION), "1", "2", None, str(AGENT_ID))
    for listener in bench.calls.acd.listeners:
        listener([transferred])
    assert bench.requests("BYE", PHONE) and not bench.requests("BYE", CARRIER)
    assert bench.voice.call_state(INTERACTION).state == "queued"
    # The next agent's answer only re-bridges: the caller was answered long ago (no new 200).
    bench.take()
    bench.calls.acd.offer(AGENT_ID)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.voice.on_message(_answer(to_phone, "phone2", PHONE), PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert not bench.responses(200, "INVITE")


async def test_the_acd_ending_the_contact_hangs_up_both_legs_without_ending_it_twice(bench: Bench) -> None:
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    bench.take()
    finished = r.ContactFinished(str(INTERACTION), str(AGENT_ID), "1")
    for listener in bench.calls.acd.listeners:
        listener([finished])
    await bench.settled()
    assert bench.requests("BYE", CARRIER) and bench.requests("BYE", PHONE)
    assert ("ended", INTERACTION) not in bench.calls.steps  # already in wrap-up in the ACD
    assert not bench.voice.live_call_ids()


async def test_the_agent_hanging_up_ends_the_caller_leg_and_the_contact(bench: Bench) -> None:
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.take()
    phone = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    bench.voice.on_message(phone.bye(), PHONE)
    await bench.settled()
    assert bench.responses(200, "BYE") and bench.requests("BYE", CARRIER)
    assert ("ended", INTERACTION) in bench.calls.steps
    agent_leg = next(leg for leg in bench.calls.legs if leg["leg"] == "agent")
    assert agent_leg["cause"] == "bye_agent"


async def test_the_caller_leg_record_carries_the_stranger_packets_the_relay_dropped(bench: Bench) -> None:
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    bench.media.sessions[0].stats.foreign_packets = 3  # the relay's count when the session closes
    bench.voice.on_message(Dialog.from_uac(invite, ok).bye(), CARRIER)
    await bench.settled()
    by_leg = {leg["leg"]: leg for leg in bench.calls.legs}
    assert by_leg["caller"]["cause"] == "bye_caller" and by_leg["caller"]["foreign_packets"] == 3
    assert by_leg["agent"]["foreign_packets"] is None  # one counter per session: on the caller's leg


async def test_a_refer_from_the_phone_moves_the_call_notifies_the_phone_and_hangs_it_up(bench: Bench) -> None:
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.take()
    phone = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    bench.voice.on_message(phone.refer(parse_uri("sip:queue-2@198.51.100.1")), PHONE)
    await bench.settled()
    assert bench.responses(202, "REFER")  # RFC 3515 §2.4.2
    notifies = bench.requests("NOTIFY", PHONE)
    assert [b"100" in n.body for n in notifies] == [True, False] and b"200" in notifies[1].body
    assert bench.requests("BYE", PHONE) and not bench.requests("BYE", CARRIER)
    assert ("transfer", 2) in bench.calls.steps
    assert bench.voice.call_state(INTERACTION).state == "queued"


async def test_a_phone_that_held_the_caller_and_transferred_them_leaves_no_hold_to_the_next_agent(
    bench: Bench,
) -> None:
    # Linphone's Transfer on a paused call: its hold (re-INVITE a=sendonly) belongs to its own leg.
    # The next agent's phone answers sendrecv, so the caller must be relayed to them, not kept on
    # music on hold with the next agent hearing silence.
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    phone = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    session = bench.media.sessions[0]
    music = session.music
    hold, _ = phone.hold(build_offer(address=PHONE.host, port=32000, session_id="2"))
    bench.voice.on_message(hold, PHONE)
    assert session.music == music + 1  # the caller hears music while held
    bench.voice.on_message(phone.refer(parse_uri("sip:queue-2@198.51.100.1")), PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "queued"
    bench.take()
    bench.calls.acd.offer(AGENT_ID)
    [to_next] = bench.requests("INVITE", PHONE)
    music, bridged = session.music, session.bridged
    bench.voice.on_message(_answer(to_next, "phone2", PHONE), PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert session.bridged == bridged + 1 and session.music == music  # relayed, no music after
    assert not bench.voice.active_call(INTERACTION).phone_held


async def test_a_refer_to_nobody_is_answered_with_a_notify_of_404_and_the_call_stays(bench: Bench) -> None:
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.take()
    phone = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    bench.voice.on_message(phone.refer(parse_uri("sip:nobody@198.51.100.1")), PHONE)
    await bench.settled()
    notifies = bench.requests("NOTIFY", PHONE)
    assert b"404" in notifies[-1].body
    assert not bench.requests("BYE", PHONE)
    assert bench.voice.call_state(INTERACTION).state == "bridged"


# ---------------------------------------------------------------- three-way conference
COLLEAGUE_ID = 43
COLLEAGUE_PHONE = Destination("192.0.2.70", 5060)


async def _conference(bench: Bench) -> tuple[Request, Response, Dialog, Dialog]:
    """A bridged call, the agent brings in a colleague, her phone answers: the caller's INVITE and our
    200, the agent's phone's and the colleague's phone's side of our dialogs."""
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    agent = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    bench.take()
    await bench.voice.conference(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    [to_colleague] = bench.requests("INVITE", COLLEAGUE_PHONE)
    assert bench.voice.call_state(INTERACTION).state == "bridged"  # caller and agent talk meanwhile
    answer = _answer(to_colleague, "bob1", COLLEAGUE_PHONE)
    bench.voice.on_message(answer, COLLEAGUE_PHONE)
    await bench.settled()
    assert bench.requests("ACK", COLLEAGUE_PHONE)  # RFC 3261 §13.2.2.4
    colleague = Dialog.from_uas(
        to_colleague, answer, via=Via(transport="UDP", host=COLLEAGUE_PHONE.host, port=COLLEAGUE_PHONE.port)
    )
    return invite, ok, agent, colleague


async def test_a_conference_puts_caller_agent_and_the_colleague_in_one_mix(bench: Bench) -> None:
    await _conference(bench)
    assert bench.voice.call_state(INTERACTION).state == "conference"
    # Session 0: the caller's and the agent's legs; session 1: the colleague's.
    assert bench.media.in_conference() == {(0, "caller"), (0, "agent"), (1, "agent")}


async def test_the_colleague_leaving_the_conference_returns_caller_and_agent_to_a_plain_bridge(
    bench: Bench,
) -> None:
    _, _, _, colleague = await _conference(bench)
    bridged = bench.media.sessions[0].bridged
    bench.take()
    bench.voice.on_message(colleague.bye(), COLLEAGUE_PHONE)
    await bench.settled()
    assert bench.responses(200, "BYE")
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert bench.media.sessions[0].bridged == bridged + 1 and bench.media.sessions[1].closed
    assert not bench.requests("BYE", CARRIER) and not bench.requests("BYE", PHONE)


async def test_the_agent_leaving_the_conference_hands_the_caller_and_the_contact_to_the_colleague(
    bench: Bench,
) -> None:
    invite, ok, agent, _ = await _conference(bench)
    bench.take()
    bench.voice.on_message(agent.bye(), PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "replaced"
    # As an attended transfer's hand-over: the contact is the colleague's (busy with it), the agent's
    # part of it is over (wrap-up) - not the whole contact in the agent's wrap-up.
    assert bench.calls.steps[-2:] == [("transfer", COLLEAGUE_ID), ("answered", COLLEAGUE_ID)]
    assert ("ended", INTERACTION) not in bench.calls.steps
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}  # the two-party mix
    assert not bench.requests("BYE", CARRIER) and not bench.requests("BYE", COLLEAGUE_PHONE)
    # Then the caller hangs up: the colleague gets BYE, the call is over, the colleague's contact ends.
    bench.voice.on_message(Dialog.from_uac(invite, ok).bye(), CARRIER)
    await bench.settled()
    assert bench.requests("BYE", COLLEAGUE_PHONE) and not bench.voice.live_call_ids()
    assert ("ended", INTERACTION) in bench.calls.steps


async def test_the_colleague_who_took_the_call_over_can_hold_and_resume_the_caller(bench: Bench) -> None:
    await _consulting(bench)
    bench.take()
    bench.voice.complete_transfer(INTERACTION)
    await bench.settled()
    [resume] = bench.requests("INVITE", CARRIER)
    bench.voice.on_message(_answer(resume, "ignored", CARRIER), CARRIER)
    bench.take()
    music = bench.media.sessions[0].music
    bench.voice.hold(INTERACTION)  # from the colleague's desk: the contact is theirs now
    [hold] = bench.requests("INVITE", CARRIER)
    assert b"a=sendonly" in hold.body and bench.voice.call_state(INTERACTION).held
    assert bench.media.sessions[0].music == music + 1  # the caller hears music ...
    assert bench.media.in_conference() == {(1, "agent")}  # ... not the colleague
    bench.voice.on_message(_answer(hold, "ignored", CARRIER), CARRIER)
    bench.take()
    bench.voice.resume(INTERACTION)
    [again] = bench.requests("INVITE", CARRIER)
    assert b"a=sendrecv" in again.body and not bench.voice.call_state(INTERACTION).held
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}  # they talk again


async def test_the_caller_leaving_the_conference_ends_it_for_the_agent_and_the_colleague(
    bench: Bench,
) -> None:
    invite, ok, _, _ = await _conference(bench)
    bench.take()
    bench.voice.on_message(Dialog.from_uac(invite, ok).bye(), CARRIER)
    await bench.settled()
    assert bench.requests("BYE", PHONE) and bench.requests("BYE", COLLEAGUE_PHONE)
    assert ("ended", INTERACTION) in bench.calls.steps
    assert not bench.voice.live_call_ids() and all(s.closed for s in bench.media.sessions)


async def test_a_colleague_who_does_not_answer_leaves_the_call_bridged_as_it_was(bench: Bench) -> None:
    await _bridged_call(bench)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    await bench.voice.conference(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    [to_colleague] = bench.requests("INVITE", COLLEAGUE_PHONE)
    bench.voice.on_message(build_response(to_colleague, 486, to_tag="busy"), COLLEAGUE_PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert bench.media.sessions[1].closed and not bench.media.in_conference()
    # The desk may try again.
    await bench.voice.conference(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    assert len(bench.requests("INVITE", COLLEAGUE_PHONE)) == 2


# ---------------------------------------------------------------- attended transfer from the desk
async def _consulting(bench: Bench) -> tuple[Request, Response, Dialog, Dialog]:
    """A bridged call; the agent consults a colleague (the caller is held), her phone answers."""
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    agent = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    bench.take()
    await bench.voice.consult(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    [hold] = bench.requests("INVITE", CARRIER)  # the caller is held while the colleague rings
    assert b"a=sendonly" in hold.body and bench.voice.call_state(INTERACTION).held
    bench.voice.on_message(_answer(hold, "ignored", CARRIER), CARRIER)
    [to_colleague] = bench.requests("INVITE", COLLEAGUE_PHONE)
    answer = _answer(to_colleague, "bob1", COLLEAGUE_PHONE)
    bench.voice.on_message(answer, COLLEAGUE_PHONE)
    await bench.settled()
    colleague = Dialog.from_uas(
        to_colleague, answer, via=Via(transport="UDP", host=COLLEAGUE_PHONE.host, port=COLLEAGUE_PHONE.port)
    )
    return invite, ok, agent, colleague


async def test_a_consultation_lets_the_agent_talk_to_the_colleague_while_the_caller_waits(
    bench: Bench,
) -> None:
    await _consulting(bench)
    assert bench.voice.call_state(INTERACTION).state == "consulting"
    assert bench.media.in_conference() == {(0, "agent"), (1, "agent")}  # not the caller


async def test_completing_the_attended_transfer_bridges_caller_and_colleague_and_releases_the_agent(
    bench: Bench,
) -> None:
    _, _, _, colleague = await _consulting(bench)
    bench.take()
    bench.voice.complete_transfer(INTERACTION)
    await bench.settled()
    assert bench.requests("BYE", PHONE) and not bench.requests("BYE", COLLEAGUE_PHONE)
    assert bench.voice.call_state(INTERACTION).state == "replaced"
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}
    [resume] = bench.requests("INVITE", CARRIER)  # off hold: the caller talks again
    assert b"a=sendrecv" in resume.body
    # The same hand-over as the phone's: the ACD moves the contact to the colleague, who accepts it
    # at once (busy with it, the interaction names them); the agent's part is over (wrap-up).
    assert bench.calls.steps[-2:] == [("transfer", COLLEAGUE_ID), ("answered", COLLEAGUE_ID)]
    assert ("ended", INTERACTION) not in bench.calls.steps
    # The colleague hangs up: the caller gets BYE, the call is over, the colleague's contact ends.
    bench.voice.on_message(_answer(resume, "ignored", CARRIER), CARRIER)
    bench.take()
    bench.voice.on_message(colleague.bye(), COLLEAGUE_PHONE)
    await bench.settled()
    assert bench.requests("BYE", CARRIER) and not bench.voice.live_call_ids()
    assert ("ended", INTERACTION) in bench.calls.steps
    legs = [(leg["leg"], leg["agent_id"], leg["cause"], leg["transfer"]) for leg in bench.calls.legs]
    assert ("agent", AGENT_ID, "transferred", False) in legs
    assert ("agent", COLLEAGUE_ID, "bye_agent", True) in legs


async def test_completing_a_transfer_to_a_colleague_who_is_signed_out_is_refused_and_changes_nothing(
    bench: Bench,
) -> None:
    await _consulting(bench)
    bench.calls.signed_out.add(COLLEAGUE_ID)
    bench.take()
    with pytest.raises(Conflict) as refused:
        bench.voice.complete_transfer(INTERACTION)
    assert refused.value.error_id == "colleague-not-signed-in"
    await bench.settled()
    assert not bench.sent and bench.voice.call_state(INTERACTION).state == "consulting"
    assert not any(step[0] in ("transfer", "ended") for step in bench.calls.steps)


async def test_the_agent_hanging_up_during_a_consultation_hands_the_caller_to_the_colleague(
    bench: Bench,
) -> None:
    _, _, agent, _ = await _consulting(bench)
    bench.take()
    bench.voice.on_message(agent.bye(), PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "replaced"
    assert bench.calls.steps[-2:] == [("transfer", COLLEAGUE_ID), ("answered", COLLEAGUE_ID)]
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}


async def test_a_colleague_the_acd_cannot_take_the_call_for_leaves_the_contact_with_the_agent(
    bench: Bench,
) -> None:
    # Signed out between the consultation and the agent's hang-up (a BYE cannot be refused): the
    # caller and the colleague go on talking, the contact ends with the transferring agent.
    _, _, agent, _ = await _consulting(bench)

    async def refuse(interaction_id: int, *, queue_id: int | None, agent_id: int | None) -> None:
        raise Conflict("Not possible in the current state", error_id="invalid-transition")

    bench.calls.transfer = refuse  # type: ignore[method-assign]
    bench.voice.on_message(agent.bye(), PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "handed_over"
    assert ("ended", INTERACTION) in bench.calls.steps
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}


async def test_cancelling_the_consultation_hangs_up_the_colleague_and_returns_to_the_caller(
    bench: Bench,
) -> None:
    await _consulting(bench)
    bench.take()
    bench.voice.cancel_consultation(INTERACTION)
    await bench.settled()
    assert bench.requests("BYE", COLLEAGUE_PHONE) and not bench.requests("BYE", PHONE)
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert not bench.media.in_conference() and bench.media.sessions[1].closed
    [resume] = bench.requests("INVITE", CARRIER)
    assert b"a=sendrecv" in resume.body


async def test_cancelling_a_consultation_that_still_rings_cancels_the_colleagues_phone(bench: Bench) -> None:
    await _bridged_call(bench)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    await bench.voice.consult(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    bench.take()
    bench.voice.cancel_consultation(INTERACTION)
    assert bench.requests("CANCEL", COLLEAGUE_PHONE)
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert not bench.voice.call_state(INTERACTION).held


async def test_a_refer_whose_replaces_names_no_dialog_is_notified_481_and_the_caller_stays(
    bench: Bench,
) -> None:
    # RFC 3891 §3 / RFC 5589 §7: the attended transfer names a dialog we do not have: the phone hears
    # 481 as the REFER's outcome, and the caller stays with the agent (no blind move to Refer-To).
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.take()
    phone = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    refer = phone.refer(parse_uri("sip:queue-2@198.51.100.1"))
    refer.headers.set("Refer-To", "<sip:queue-2@198.51.100.1?Replaces=c1%40h%3Bto-tag%3Da%3Bfrom-tag%3Db>")
    bench.voice.on_message(refer, PHONE)
    await bench.settled()
    assert bench.responses(202, "REFER")
    notifies = bench.requests("NOTIFY", PHONE)
    assert b"SIP/2.0 481" in notifies[-1].body
    assert "terminated" in (notifies[-1].headers.get("Subscription-State") or "")
    assert ("transfer", 2) not in bench.calls.steps and not bench.requests("BYE")
    assert bench.voice.call_state(INTERACTION).state == "bridged"


# ---------------------------------------------------------------- attended transfer from the phone
COLLEAGUE_PHONE2 = Destination("192.0.2.71", 5060)


async def _phone_consults(bench: Bench) -> tuple[Request, Response, Dialog, Dialog]:
    """RFC 5589 §7 up to the REFER: a bridged call; the agent's phone holds the caller (its own
    re-INVITE); it calls the colleague's extension (digest-challenged); both of the colleague's
    phones ring, the second answers. Returns the caller's INVITE, our 200, and the agent phone's side
    of its two dialogs (the caller's call, the consultation)."""
    bench.calls.accounts.update(alice=AGENT_ID, bob=COLLEAGUE_ID)
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    agent = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    music = bench.media.sessions[0].music
    hold, _ = agent.hold(build_offer(address=PHONE.host, port=32000, session_id="2"))
    bench.voice.on_message(hold, PHONE)
    [held] = bench.responses(200, "INVITE")[-1:]
    assert b"a=recvonly" in held.body  # RFC 3264 §6.1
    assert bench.media.sessions[0].music == music + 1  # the caller hears music, not silence
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE2, agent_id=COLLEAGUE_ID)
    bench.take()
    sdp = build_offer(address=PHONE.host, port=34000, session_id="3")
    consult = build_request(
        "INVITE",
        parse_uri("sip:bob@198.51.100.1"),
        from_addr=NameAddress(parse_uri("sip:alice@198.51.100.1")),
        to_addr=NameAddress(parse_uri("sip:bob@198.51.100.1")),
        via=Via(transport="UDP", host=PHONE.host, port=PHONE.port),
        contact=NameAddress(parse_uri(f"sip:alice@{PHONE.host}:{PHONE.port}")),
        body=sdp.serialize(),
        content_type="application/sdp",
    )
    bench.voice.on_message(consult, PHONE)
    await bench.settled()
    [challenge] = bench.responses(401, "INVITE")
    consult = authorize_request(consult, challenge, username="alice", password=SIP_SECRET)
    bench.voice.on_message(consult, PHONE)
    await bench.settled()
    [first], [second] = bench.requests("INVITE", COLLEAGUE_PHONE), bench.requests("INVITE", COLLEAGUE_PHONE2)
    bench.voice.on_message(build_response(second, 180, to_tag="bob2"), COLLEAGUE_PHONE2)
    assert bench.responses(180, "INVITE")  # the agent's phone hears ringing
    bench.voice.on_message(_answer(second, "bob2", COLLEAGUE_PHONE2), COLLEAGUE_PHONE2)
    await bench.settled()
    assert bench.requests("CANCEL", COLLEAGUE_PHONE) and bench.requests("ACK", COLLEAGUE_PHONE2)
    [answered] = [m for m in bench.responses(200, "INVITE") if m.call_id == consult.call_id]
    consultation = Dialog.from_uac(consult, answered)
    bench.voice.on_message(consultation.ack(consult.cseq.seq), PHONE)
    bench.voice.on_message(build_response(first, 487, to_tag="bob1"), COLLEAGUE_PHONE)
    bench.take()
    return invite, ok, agent, consultation


def _replaces(dialog: Dialog) -> str:
    """A Refer-To header value for ``dialog`` as the phone sees it (to-tag: the far end's)."""
    value = f"{dialog.call_id};to-tag={dialog.remote_tag};from-tag={dialog.local_tag}"
    return value.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")


async def _assert_handed_over(bench: Bench, notified: Dialog, invite: Request, ok: Response) -> None:
    await bench.settled()
    assert bench.responses(202, "REFER")
    notifies = [n for n in bench.requests("NOTIFY", PHONE) if n.call_id == notified.call_id]
    assert [n.body.split(b"\r\n")[0] for n in notifies] == [b"SIP/2.0 100 Trying", b"SIP/2.0 200 OK"]
    # Both of the transferring phone's dialogs get BYE; the caller and the colleague go on.
    assert len(bench.requests("BYE", PHONE)) == 2 and not bench.requests("BYE", CARRIER)
    assert not bench.requests("BYE", COLLEAGUE_PHONE2)
    assert bench.voice.call_state(INTERACTION).state == "replaced"
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}  # caller + colleague
    # The ACD: the contact is the colleague's now (moved to them and accepted at once).
    assert bench.calls.steps[-2:] == [("transfer", COLLEAGUE_ID), ("answered", COLLEAGUE_ID)]
    # The caller hangs up: the colleague's phone gets BYE and the colleague's contact ends.
    bench.take()
    bench.voice.on_message(Dialog.from_uac(invite, ok).bye(), CARRIER)
    await bench.settled()
    assert bench.requests("BYE", COLLEAGUE_PHONE2) and ("ended", INTERACTION) in bench.calls.steps
    assert not bench.voice.live_call_ids() and all(s.closed for s in bench.media.sessions)
    legs = [(leg["leg"], leg["agent_id"], leg["cause"], leg["transfer"]) for leg in bench.calls.legs]
    assert ("agent", AGENT_ID, "transferred", False) in legs
    assert ("agent", COLLEAGUE_ID, "bye_caller", True) in legs


async def test_the_phones_refer_on_the_callers_call_replacing_its_consultation_hands_the_caller_over(
    bench: Bench,
) -> None:
    invite, ok, agent, consultation = await _phone_consults(bench)
    refer = agent.refer(parse_uri("sip:bob@198.51.100.1"))
    refer.headers.set("Refer-To", f"<sip:bob@198.51.100.1?Replaces={_replaces(consultation)}>")
    bench.voice.on_message(refer, PHONE)
    await _assert_handed_over(bench, agent, invite, ok)


async def test_the_phones_refer_on_its_consultation_replacing_the_callers_call_hands_the_caller_over(
    bench: Bench,
) -> None:
    invite, ok, agent, consultation = await _phone_consults(bench)
    refer = consultation.refer(parse_uri("sip:caller@198.51.100.1"))
    refer.headers.set("Refer-To", f"<sip:caller@198.51.100.1?Replaces={_replaces(agent)}>")
    bench.voice.on_message(refer, PHONE)
    await _assert_handed_over(bench, consultation, invite, ok)


async def test_the_colleagues_phone_holds_and_resumes_the_caller_it_took_over_in_its_own_session(
    bench: Bench,
) -> None:
    # Found with Linphone: after the phone's attended transfer the colleague's phone pauses the caller
    # (re-INVITE a=sendonly). Its offer belongs to the colleague's media session (the second), not to
    # the caller's; the caller leaves the two-party mix for the music, and the resume brings them back.
    _, _, agent, consultation = await _phone_consults(bench)
    refer = agent.refer(parse_uri("sip:bob@198.51.100.1"))
    refer.headers.set("Refer-To", f"<sip:bob@198.51.100.1?Replaces={_replaces(consultation)}>")
    bench.voice.on_message(refer, PHONE)
    await bench.settled()
    assert bench.voice.call_state(INTERACTION).state == "replaced"
    third = bench.voice.active_call(INTERACTION).third
    assert third is not None and third.leg is not None
    colleague = Dialog.from_uas(
        third.leg.invite,
        _answer(third.leg.invite, "bob2", COLLEAGUE_PHONE2),
        via=Via(transport="UDP", host=COLLEAGUE_PHONE2.host, port=COLLEAGUE_PHONE2.port),
    )
    caller_session, colleague_session = bench.media.sessions[0], bench.media.sessions[1]
    music, agent_media = caller_session.music, caller_session.agent_media
    bench.take()
    hold, _ = colleague.hold(build_offer(address=COLLEAGUE_PHONE2.host, port=36000, session_id="9"))
    bench.voice.on_message(hold, COLLEAGUE_PHONE2)
    [held] = bench.responses(200, "INVITE")
    assert b"a=recvonly" in held.body
    assert colleague_session.agent_media.direction == "recvonly"  # the colleague's own session ...
    assert colleague_session.agent_media.remote_port == 36000
    assert caller_session.agent_media is agent_media  # ... not the caller's
    assert caller_session.music == music + 1 and bench.media.in_conference() == {(1, "agent")}
    assert bench.voice.active_call(INTERACTION).phone_held
    bench.take()
    resume, _ = colleague.resume(build_offer(address=COLLEAGUE_PHONE2.host, port=36000, session_id="9"))
    bench.voice.on_message(resume, COLLEAGUE_PHONE2)
    [resumed] = bench.responses(200, "INVITE")
    assert b"a=sendrecv" in resumed.body and colleague_session.agent_media.direction == "sendrecv"
    assert bench.media.in_conference() == {(0, "caller"), (1, "agent")}  # they talk again
    assert not bench.voice.active_call(INTERACTION).phone_held
    assert bench.voice.call_state(INTERACTION).state == "replaced"


async def test_the_phones_attended_transfer_to_a_signed_out_colleague_is_notified_480_and_changes_nothing(
    bench: Bench,
) -> None:
    _, _, agent, consultation = await _phone_consults(bench)
    bench.calls.signed_out.add(COLLEAGUE_ID)
    refer = agent.refer(parse_uri("sip:bob@198.51.100.1"))
    refer.headers.set("Refer-To", f"<sip:bob@198.51.100.1?Replaces={_replaces(consultation)}>")
    bench.voice.on_message(refer, PHONE)
    await bench.settled()
    notifies = [n for n in bench.requests("NOTIFY", PHONE) if n.call_id == agent.call_id]
    assert [n.body.split(b"\r\n")[0] for n in notifies] == [
        b"SIP/2.0 100 Trying",
        b"SIP/2.0 480 Temporarily Unavailable",
    ]
    assert not bench.requests("BYE") and bench.voice.call_state(INTERACTION).state == "bridged"
    assert not any(step[0] == "transfer" for step in bench.calls.steps)


async def test_the_agent_phone_taking_the_caller_off_hold_relays_again(bench: Bench) -> None:
    _, _, agent, consultation = await _phone_consults(bench)
    bench.voice.on_message(consultation.bye(), PHONE)  # the consultation ends
    await bench.settled()
    assert bench.requests("BYE", COLLEAGUE_PHONE2)
    bridged = bench.media.sessions[0].bridged
    resume, _ = agent.resume(build_offer(address=PHONE.host, port=32000, session_id="2"))
    bench.voice.on_message(resume, PHONE)
    assert bench.media.sessions[0].bridged == bridged + 1
    assert bench.voice.call_state(INTERACTION).state == "bridged"


async def test_a_phones_cancel_while_its_digest_account_is_looked_up_ends_the_invite_with_487(
    bench: Bench,
) -> None:
    # Issue 13, defect 1 for phones: the CANCEL used to find no call (200, then nothing) while the
    # phone's SIP account was being looked up, and the call went ahead.
    _register_phone(bench)
    bench.calls.account_gate = asyncio.Event()
    sdp = build_offer(address=PHONE.host, port=31000, session_id="9")
    invite = build_request(
        "INVITE",
        parse_uri("sip:+74951234567@198.51.100.1"),
        from_addr=NameAddress(parse_uri("sip:alice@198.51.100.1")),
        to_addr=NameAddress(parse_uri("sip:+74951234567@198.51.100.1")),
        via=Via(transport="UDP", host=PHONE.host, port=PHONE.port),
        contact=NameAddress(parse_uri(f"sip:alice@{PHONE.host}:{PHONE.port}")),
        body=sdp.serialize(),
        content_type="application/sdp",
        extra_headers=[
            (
                "Authorization",
                'Digest username="alice", realm="frontoffice", nonce="n", '
                'uri="sip:+74951234567@198.51.100.1", response="00000000000000000000000000000000"',
            )
        ],
    )
    bench.voice.on_message(invite, PHONE)
    await bench.calls.account_asked.wait()  # the look-up is under way
    bench.voice.on_message(build_cancel(invite), PHONE)
    [cancel_ok] = bench.responses(200, "CANCEL")
    [ended] = bench.responses(487, "INVITE")
    assert cancel_ok.to.tag == ended.to.tag  # RFC 3261 §9.2
    bench.calls.account_gate.set()
    await bench.settled()
    assert not bench.responses(403) and bench.calls.steps == [] and not bench.media.sessions


@pytest.mark.parametrize("consult", [True, False], ids=["consultation", "conference"])
async def test_a_consultation_or_conference_rings_every_phone_of_the_colleague_and_the_first_wins(
    bench: Bench, consult: bool
) -> None:
    # Issue 13: only the colleague's newest phone rang; now all ring (parallel forking).
    await _bridged_call(bench)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE2, agent_id=COLLEAGUE_ID)
    bench.take()
    start = bench.voice.consult if consult else bench.voice.conference
    await start(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    [first], [second] = bench.requests("INVITE", COLLEAGUE_PHONE), bench.requests("INVITE", COLLEAGUE_PHONE2)
    if consult:
        [hold] = bench.requests("INVITE", CARRIER)
        bench.voice.on_message(_answer(hold, "ignored", CARRIER), CARRIER)
    bench.voice.on_message(build_response(first, 180, to_tag="bob1"), COLLEAGUE_PHONE)
    bench.voice.on_message(_answer(first, "bob1", COLLEAGUE_PHONE), COLLEAGUE_PHONE)
    await bench.settled()
    assert bench.requests("CANCEL", COLLEAGUE_PHONE2) and not bench.requests("CANCEL", COLLEAGUE_PHONE)
    assert bench.voice.call_state(INTERACTION).state == ("consulting" if consult else "conference")
    # The other phone's 200 crossed the CANCEL: ACKed and hung up; the call goes on with the first.
    bench.voice.on_message(_answer(second, "bob2", COLLEAGUE_PHONE2), COLLEAGUE_PHONE2)
    assert bench.requests("ACK", COLLEAGUE_PHONE2) and bench.requests("BYE", COLLEAGUE_PHONE2)
    assert bench.voice.call_state(INTERACTION).state == ("consulting" if consult else "conference")
    if consult:
        # The held caller hears music while the agent talks to the colleague.
        assert bench.media.sessions[0].music >= 2  # the hold, then the consultation's answer


async def test_every_phone_of_the_colleague_failing_leaves_the_call_as_it_was(bench: Bench) -> None:
    await _bridged_call(bench)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE, agent_id=COLLEAGUE_ID)
    _register_phone(bench, user="bob", phone=COLLEAGUE_PHONE2, agent_id=COLLEAGUE_ID)
    await bench.voice.conference(INTERACTION, ConferenceTarget(agent_id=COLLEAGUE_ID))
    [first], [second] = bench.requests("INVITE", COLLEAGUE_PHONE), bench.requests("INVITE", COLLEAGUE_PHONE2)
    bench.voice.on_message(build_response(first, 486, to_tag="busy"), COLLEAGUE_PHONE)
    await bench.settled()
    assert bench.voice.third_party_media(INTERACTION) is not None  # the other phone still rings
    bench.voice.on_message(build_response(second, 480, to_tag="away"), COLLEAGUE_PHONE2)
    await bench.settled()
    assert bench.voice.third_party_media(INTERACTION) is None
    assert bench.voice.call_state(INTERACTION).state == "bridged" and bench.media.sessions[1].closed


# ---------------------------------------------------------------- INFO, UPDATE, Require (RFC 6086, 3311)
def _in_dialog(dialog: Dialog, method: str, body: bytes = b"", content_type: str | None = None) -> Request:
    return dialog.create_request(method, body=body, content_type=content_type)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/dtmf-relay", b"Signal=2\r\nDuration=160\r\n"), ("application/dtmf", b"2")],
)
async def test_a_dtmf_info_in_the_menu_is_the_callers_choice(
    bench: Bench, content_type: str, body: bytes
) -> None:
    invite = _caller_invite(MENU_NUMBER)
    bench.voice.on_message(invite, CARRIER)
    for _ in range(1000):  # the menu starts at a coming loop turn (and then waits for a digit)
        await asyncio.sleep(0)
        if bench.responses(183):
            break
    [progress] = bench.responses(183)  # the menu plays as early media: INFO comes in the early dialog
    early = Dialog.from_uac(invite, progress)
    bench.voice.on_message(_in_dialog(early, "INFO", body, content_type), CARRIER)
    assert bench.responses(200, "INFO")
    for _ in range(1000):  # the menu task takes the digit at a coming loop turn
        await asyncio.sleep(0)
        if ("ivr_choice", "2") in bench.calls.steps:
            break
    assert ("ivr_choice", "2") in bench.calls.steps


async def test_info_and_update_in_a_bridged_call_are_answered_not_refused(bench: Bench) -> None:
    # Issue 13: INFO and UPDATE got 405.
    invite, ok = await _bridged_call(bench)
    caller = Dialog.from_uac(invite, ok)
    bench.voice.on_message(caller.ack(invite.cseq.seq), CARRIER)
    bench.take()
    bench.voice.on_message(_in_dialog(caller, "INFO", b"Signal=5\r\n", "application/dtmf-relay"), CARRIER)
    assert bench.responses(200, "INFO")  # not in a menu: taken and ignored
    package = _in_dialog(caller, "INFO", b"x", "application/foo")
    package.headers.set("Info-Package", "foo")
    bench.voice.on_message(package, CARRIER)
    assert bench.responses(469, "INFO")  # RFC 6086 §4.2.2
    bench.voice.on_message(_in_dialog(caller, "UPDATE"), CARRIER)
    [refresh] = bench.responses(200, "UPDATE")
    assert not refresh.body  # no offer, no answer (RFC 3311 §5.2)
    hold = with_direction(build_offer(address=CARRIER.host, port=30000, session_id="1"), "sendonly")
    bench.voice.on_message(_in_dialog(caller, "UPDATE", hold.serialize(), "application/sdp"), CARRIER)
    answered = bench.responses(200, "UPDATE")[-1]
    assert b"a=recvonly" in answered.body  # RFC 3264 §6.1, as for a re-INVITE
    assert bench.media.sessions[0].caller_media.direction == "recvonly"
    assert bench.voice.call_state(INTERACTION).state == "bridged"


async def test_require_answers_420_only_for_option_tags_we_do_not_support(bench: Bench) -> None:
    bench.voice.on_message(_caller_invite(extra_headers=[("Require", "100rel, timer")]), CARRIER)
    [refused] = bench.responses(420, "INVITE")
    assert refused.headers.get("Unsupported") == "100rel"
    bench.take()
    invite = _caller_invite(extra_headers=[("Require", "replaces, timer")])
    invite.headers.set("Call-ID", "second-call")
    bench.voice.on_message(invite, CARRIER)
    await bench.settled()
    assert not bench.responses(420) and bench.responses(183, "INVITE")


async def test_a_session_timer_is_answered_with_session_expires_and_a_too_short_one_gets_422(
    bench: Bench,
) -> None:
    short = _caller_invite(extra_headers=[("Supported", "timer"), ("Session-Expires", "30")])
    bench.voice.on_message(short, CARRIER)
    [too_short] = bench.responses(422, "INVITE")
    assert too_short.headers.get("Min-SE") == "90"  # RFC 4028 §8.1
    bench.take()
    _register_phone(bench)
    invite = _caller_invite(extra_headers=[("Supported", "timer"), ("Session-Expires", "1800")])
    invite.headers.set("Call-ID", "timed-call")
    bench.voice.on_message(invite, CARRIER)
    await bench.settled()
    bench.calls.acd.offer(AGENT_ID)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.voice.on_message(_answer(to_phone, "phone1", PHONE), PHONE)
    await bench.settled()
    [ok] = bench.responses(200, "INVITE")
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac"  # RFC 4028 §9: the UAC refreshes
    assert ok.headers.get("Require") == "timer"


# ---------------------------------------------------------------- INVITE with Replaces (RFC 3891)
SOFTPHONE = Destination("192.0.2.51", 5064)


async def _invite_with_replaces(bench: Bench, replaces: str) -> Request:
    """alice's softphone INVITEs with ``Replaces`` and answers our digest challenge."""
    sdp = build_offer(address=SOFTPHONE.host, port=36000, session_id="5")
    invite = build_request(
        "INVITE",
        parse_uri("sip:frontoffice@198.51.100.1"),
        from_addr=NameAddress(parse_uri("sip:alice@198.51.100.1")),
        to_addr=NameAddress(parse_uri("sip:frontoffice@198.51.100.1")),
        via=Via(transport="UDP", host=SOFTPHONE.host, port=SOFTPHONE.port),
        contact=NameAddress(parse_uri(f"sip:alice@{SOFTPHONE.host}:{SOFTPHONE.port}")),
        body=sdp.serialize(),
        content_type="application/sdp",
        extra_headers=[("Replaces", replaces), ("Require", "replaces")],
    )
    bench.voice.on_message(invite, SOFTPHONE)
    await bench.settled()
    [challenge] = bench.responses(401, "INVITE")
    invite = authorize_request(invite, challenge, username="alice", password=SIP_SECRET)
    bench.voice.on_message(invite, SOFTPHONE)
    await bench.settled()
    return invite


async def test_an_invite_with_replaces_from_the_agents_other_phone_takes_the_call_over(bench: Bench) -> None:
    bench.calls.accounts.update(alice=AGENT_ID)
    invite, ok = await _bridged_call(bench)
    bench.voice.on_message(Dialog.from_uac(invite, ok).ack(invite.cseq.seq), CARRIER)
    [to_phone] = bench.requests("INVITE", PHONE)
    desk = _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))
    _register_phone(bench, phone=SOFTPHONE)
    bench.take()
    takeover = await _invite_with_replaces(
        bench, f"{desk.call_id};to-tag={desk.local_tag};from-tag={desk.remote_tag}"
    )
    [answered] = [m for m in bench.responses(200, "INVITE") if m.call_id == takeover.call_id]
    assert bench.requests("BYE", PHONE)  # the desk phone is released
    assert bench.voice.call_state(INTERACTION).state == "bridged"
    assert bench.media.sessions[0].agent_signalling_ip == SOFTPHONE.host  # the relay goes to the softphone
    # The softphone hangs up: the call ends as any agent's hang-up does.
    soft = Dialog.from_uac(takeover, answered)
    bench.voice.on_message(soft.ack(takeover.cseq.seq), SOFTPHONE)
    bench.take()
    bench.voice.on_message(soft.bye(), SOFTPHONE)
    await bench.settled()
    assert bench.requests("BYE", CARRIER) and ("ended", INTERACTION) in bench.calls.steps


async def test_an_invite_with_replaces_naming_no_dialog_gets_481(bench: Bench) -> None:
    bench.calls.accounts.update(alice=AGENT_ID)
    await _bridged_call(bench)
    _register_phone(bench, phone=SOFTPHONE)
    bench.take()
    await _invite_with_replaces(bench, "nobody@h;to-tag=a;from-tag=b")
    assert bench.responses(481, "INVITE")  # RFC 3891 §3
    assert not bench.requests("BYE") and bench.voice.call_state(INTERACTION).state == "bridged"


# ---------------------------------------------------------------- session timers (RFC 4028 §10)
async def _timed_call(bench: Bench, session_expires: str, allow: str) -> tuple[Dialog, Dialog]:
    """A bridged call whose carrier asked for a session timer; returns the caller's dialog (as the
    carrier sees it) and the agent phone's."""
    _register_phone(bench)
    invite = _caller_invite(
        extra_headers=[("Supported", "timer"), ("Session-Expires", session_expires), ("Allow", allow)]
    )
    bench.voice.on_message(invite, CARRIER)
    await bench.settled()
    bench.calls.acd.offer(AGENT_ID)
    [to_phone] = bench.requests("INVITE", PHONE)
    bench.voice.on_message(_answer(to_phone, "phone1", PHONE), PHONE)
    await bench.settled()
    [ok] = bench.responses(200, "INVITE")
    caller = Dialog.from_uac(invite, ok)
    bench.voice.on_message(caller.ack(invite.cseq.seq), CARRIER)
    bench.take()
    return caller, _phone_dialog(to_phone, _answer(to_phone, "phone1", PHONE))


async def test_as_the_refresher_we_send_update_at_half_the_interval_and_the_call_goes_on(
    bench: Bench,
) -> None:
    await _timed_call(bench, "90;refresher=uas", "INVITE, ACK, BYE, CANCEL, UPDATE")
    timer = bench.voice.session_timer(INTERACTION)
    assert timer is not None and timer.we_refresh
    bench.clock[0] += 44
    bench.voice.fire_session_timers(bench.clock[0])
    assert not bench.sent
    bench.clock[0] += 1
    bench.voice.fire_session_timers(bench.clock[0])
    [update] = bench.requests("UPDATE", CARRIER)
    assert update.headers.get("Session-Expires") == "90;refresher=uac" and not update.body
    bench.voice.on_message(
        build_response(update, 200, extra_headers=[("Session-Expires", "90;refresher=uac")]), CARRIER
    )
    refreshed = bench.voice.session_timer(INTERACTION)
    assert refreshed is not None and refreshed.last_refresh == bench.clock[0] and refreshed.we_refresh
    bench.clock[0] += 59  # the first interval's expiry has passed: the refresh moved it
    bench.voice.fire_session_timers(bench.clock[0])
    assert bench.voice.call_state(INTERACTION).state == "bridged" and not bench.requests("BYE")


async def test_a_peer_that_never_allows_update_is_refreshed_with_a_reinvite_of_the_same_sdp(
    bench: Bench,
) -> None:
    await _timed_call(bench, "90;refresher=uas", "INVITE, ACK, BYE, CANCEL")
    bench.clock[0] += 45
    bench.voice.fire_session_timers(bench.clock[0])
    [reinvite] = bench.requests("INVITE", CARRIER)
    assert reinvite.headers.get("Session-Expires") == "90;refresher=uac"
    assert b"a=sendrecv" in reinvite.body
    bench.voice.on_message(_answer(reinvite, "ignored", CARRIER), CARRIER)
    assert bench.requests("ACK", CARRIER)  # RFC 3261 §13.2.2.4


async def test_no_refresh_from_the_peer_before_the_expiry_ends_both_legs_as_session_expired(
    bench: Bench,
) -> None:
    caller, _ = await _timed_call(bench, "90;refresher=uac", "INVITE, ACK, BYE, CANCEL, UPDATE")
    bench.clock[0] += 30
    # The carrier refreshes once (UPDATE without SDP): the expiry moves to 60 s after it.
    update = caller.create_request(
        "UPDATE", extra_headers=[("Session-Expires", "90;refresher=uac"), ("Supported", "timer")]
    )
    bench.voice.on_message(update, CARRIER)
    assert bench.responses(200, "UPDATE")
    bench.clock[0] += 59
    bench.voice.fire_session_timers(bench.clock[0])
    assert not bench.requests("BYE")
    bench.clock[0] += 1  # 90 - min(32, 90/3) = 60 s after the refresh
    bench.voice.fire_session_timers(bench.clock[0])
    await bench.settled()
    assert bench.requests("BYE", CARRIER) and bench.requests("BYE", PHONE)
    assert ("ended", INTERACTION) in bench.calls.steps and not bench.voice.live_call_ids()
    causes = {leg["leg"]: leg["cause"] for leg in bench.calls.legs}
    assert causes == {"caller": "session_expired", "agent": "session_expired"}


async def test_an_unanswered_refresh_ends_the_session(bench: Bench) -> None:
    await _timed_call(bench, "90;refresher=uas", "INVITE, ACK, BYE, CANCEL, UPDATE")
    bench.clock[0] += 45
    bench.voice.fire_session_timers(bench.clock[0])
    [update] = bench.requests("UPDATE", CARRIER)
    bench.voice.on_message(build_response(update, 481), CARRIER)  # RFC 4028 §10: the session is gone
    await bench.settled()
    assert bench.requests("BYE", CARRIER) and bench.requests("BYE", PHONE)
    assert not bench.voice.live_call_ids()


async def _sent_eventually(bench: Bench, method: str) -> list[Request]:
    """The back-off after a 491 is drawn as 0 s here: it runs out at a coming loop turn."""
    for _ in range(100):
        if found := bench.requests(method, CARRIER):
            return found
        await asyncio.sleep(0)
    return []


async def test_a_refreshing_reinvite_that_gets_491_goes_again_after_the_back_off_and_the_call_goes_on(
    bench: Bench,
) -> None:
    await _timed_call(bench, "90;refresher=uas", "INVITE, ACK, BYE, CANCEL")
    bench.clock[0] += 45
    bench.voice.fire_session_timers(bench.clock[0])
    [refresh] = bench.requests("INVITE", CARRIER)
    bench.take()
    bench.voice.on_message(build_response(refresh, 491), CARRIER)  # RFC 3261 §14.1: glare
    [again] = await _sent_eventually(bench, "INVITE")
    assert again.headers.get("Session-Expires") == "90;refresher=uac" and again.cseq.seq > refresh.cseq.seq
    bench.voice.on_message(
        _answer(again, "ignored", CARRIER, extra_headers=[("Session-Expires", "90;refresher=uac")]), CARRIER
    )
    refreshed = bench.voice.session_timer(INTERACTION)
    assert refreshed is not None and refreshed.last_refresh == bench.clock[0]
    bench.clock[0] += 59  # past the first interval's expiry: the retried refresh moved it
    bench.voice.fire_session_timers(bench.clock[0])
    assert bench.voice.call_state(INTERACTION).state == "bridged" and not bench.requests("BYE")


async def test_a_refreshing_update_that_gets_491_goes_again_after_the_back_off(bench: Bench) -> None:
    await _timed_call(bench, "90;refresher=uas", "INVITE, ACK, BYE, CANCEL, UPDATE")
    bench.clock[0] += 45
    bench.voice.fire_session_timers(bench.clock[0])
    [update] = bench.requests("UPDATE", CARRIER)
    bench.take()
    bench.voice.on_message(build_response(update, 491), CARRIER)  # RFC 3311 §5.2
    [again] = await _sent_eventually(bench, "UPDATE")
    assert again.cseq.seq > update.cseq.seq
    bench.voice.on_message(
        build_response(again, 200, extra_headers=[("Session-Expires", "90;refresher=uac")]), CARRIER
    )
    bench.clock[0] += 59  # past the first interval's expiry: the retried refresh moved it
    bench.voice.fire_session_timers(bench.clock[0])
    assert bench.voice.call_state(INTERACTION).state == "bridged" and not bench.requests("BYE")


async def test_a_refresh_due_while_our_hold_is_pending_goes_once_the_hold_is_answered(bench: Bench) -> None:
    await _timed_call(bench, "90;refresher=uas", "INVITE, ACK, BYE, CANCEL")
    bench.clock[0] += 44
    bench.voice.hold(INTERACTION)
    [hold] = bench.requests("INVITE", CARRIER)
    bench.take()
    bench.clock[0] += 1
    bench.voice.fire_session_timers(bench.clock[0])
    assert not bench.requests("INVITE", CARRIER)  # one re-INVITE at a time (RFC 3261 §14.1)
    bench.voice.on_message(_answer(hold, "ignored", CARRIER), CARRIER)
    [refresh] = bench.requests("INVITE", CARRIER)
    assert refresh.headers.get("Session-Expires") == "90;refresher=uac" and b"a=sendonly" in refresh.body


# ---------------------------------------------------------------- recording with a third party
async def test_the_third_party_of_a_consultation_conference_or_hand_over_is_recorded_with_the_call(
    bench: Bench,
) -> None:
    bench.voice.recordings_dir = Path("/nonexistent")  # recording on: the fake media writes nothing
    await _consulting(bench)
    # Session 1 (the colleague's) is recorded in session 0's recording (the customer's call).
    assert bench.media.recorded_with == [(1, 0)]
