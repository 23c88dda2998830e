"""Steps of setting up a call that the inbound B2BUA and trunking share: digest-checking a phone,
reading an INVITE's SDP offer, answering it with a media session, inviting an agent's phone, and
recording. Each answers the INVITE itself when the step fails, and says so by returning ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontoffice.services.voice_calls import SipAccount, VoiceCalls

from .endpoint import Endpoint
from .media import DtmfHandler, MediaBackend, MediaPortsExhausted, MediaSession
from .offers import sdp_session_id
from .registrar import Binding, Registrar
from .sip import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    AuthOutcome,
    AuthResult,
    NameAddress,
    NegotiatedMedia,
    ProtocolError,
    Request,
    SessionDescription,
    TransactionKey,
    answer_offer,
    answer_reoffer,
    build_offer,
    build_request,
    parse_sdp,
    session_timer_headers,
)

__all__ = ["CallSetup", "PendingInvite", "Quietly", "info_digit"]

# RFC 4733 §3.2 event codes as the legacy INFO bodies name them.
_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def info_digit(request: Request) -> str | None:
    """The DTMF digit of an INFO (``application/dtmf-relay``: ``Signal=5``, Cisco style; or
    ``application/dtmf``: the digit alone), or ``None`` when it carries none."""
    content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    text = request.body.decode("ascii", "replace").strip()
    if content_type == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                text = value.strip()
                break
        else:
            return None
    elif content_type != "application/dtmf":
        return None
    digit = text.upper()
    if digit == "10":
        digit = "*"  # RFC 4733 event codes 10 and 11, as some gateways send them
    elif digit == "11":
        digit = "#"
    return digit if digit in _DTMF_DIGITS else None


# A call refused because every RTP port is in use (RFC 3261 §21.5.4): try again after this long.
MEDIA_PORTS_RETRY_AFTER_S = 10

log = logging.getLogger("frontoffice.voice")

Quietly = Callable[[Coroutine[Any, Any, Any]], Coroutine[Any, Any, None]]
"""Wraps an ACD use case whose failure must not take the call down."""


@dataclass(eq=False, slots=True)
class PendingInvite:
    """A phone's INVITE between its arrival and the call that takes it (digest look-up, entry point
    look-up, media being opened). It is registered before the first await, so a CANCEL that follows
    the INVITE by a millisecond finds it: RFC 3261 §9.2, 200 to the CANCEL and 487 to the INVITE at
    once; the steps still running see ``cancelled`` when they resume and stop (closing what they
    opened)."""

    request: Request
    key: TransactionKey
    cancelled: bool = False


class CallSetup:
    def __init__(
        self,
        endpoint: Endpoint,
        registrar: Registrar,
        calls: VoiceCalls,
        media: MediaBackend,
        *,
        recordings_dir: Path | None = None,
        stereo_recordings: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.registrar = registrar
        self.calls = calls
        self.media = media
        self.recordings_dir = recordings_dir
        self.stereo_recordings = stereo_recordings

    async def authenticate(
        self, request: Request, now: float
    ) -> tuple[str, SipAccount | None, AuthResult, float] | None:
        """Digest-check ``request`` against the SIP account it claims. ``None`` when it was answered
        here (a challenge, a stale one, or 500 when the look-up failed); else the claimed username,
        its account, the verdict and the time it was reached at."""
        endpoint = self.endpoint
        username = self.registrar.claimed_username(request)
        if username is None:
            endpoint.respond_with(self.registrar.challenge(request, now))
            return None
        try:
            account = await self.calls.sip_account(username)
        except Exception:
            log.exception("SIP account look-up failed")
            endpoint.respond(request, 500)
            return None
        now = endpoint.clock()
        result = self.registrar.authenticate(request, now, account.ha1 if account else None, username)
        if result.outcome is AuthOutcome.STALE:
            endpoint.respond_with(self.registrar.challenge(request, now, stale=True))
            return None
        return username, account, result, now

    def sdp_offer(self, request: Request) -> SessionDescription | None:
        """The SDP offer of a new INVITE; ``None`` when it has none we can use (answered 400 or 488)."""
        try:
            offer = parse_sdp(request.body) if request.body else None
        except ProtocolError as exc:
            self.endpoint.respond(request, 400, "Bad SDP")
            log.debug("bad SDP: %s", exc)
            return None
        if offer is None:
            # Offer-less INVITE (RFC 3261 §13.2.1) would need the offer in our 200 and the answer in ACK.
            self.endpoint.respond(request, 488, "SDP offer required")
        return offer

    async def answer_offer(
        self,
        request: Request,
        offer: SessionDescription,
        on_dtmf: DtmfHandler,
        *,
        agent_side: bool = False,
        signalling_ip: str | None = None,
    ) -> tuple[MediaSession, SessionDescription, NegotiatedMedia] | None:
        """Open a media session and answer ``offer`` from its caller side (its agent side for a phone
        that dials out). ``None`` when the offer is unusable: answered (488, or the error's status)
        and the session closed; 503 with Retry-After when every RTP port of the configured range is in
        use. ``signalling_ip``: where the INVITE came from (RTP source latching)."""
        try:
            session = await self.media.open_session(on_dtmf)
        except MediaPortsExhausted as exc:
            log.warning("call %s refused: %s", request.call_id, exc)
            self.endpoint.respond(
                request, 503, extra_headers=[("Retry-After", str(MEDIA_PORTS_RETRY_AFTER_S))]
            )
            return None
        try:
            local_sdp, negotiated = answer_offer(
                offer,
                address=session.address,
                port=session.agent_port if agent_side else session.caller_port,
                session_id=sdp_session_id(request.call_id),
                codecs=(PCMU, PCMA, TELEPHONE_EVENT),
            )
        except ProtocolError as exc:
            await session.close()
            self.endpoint.respond(request, getattr(exc, "status_code", 488))
            return None
        if agent_side:
            session.set_agent(negotiated, signalling_ip=signalling_ip)
        else:
            session.set_caller(negotiated, signalling_ip=signalling_ip)
        return session, local_sdp, negotiated

    def answer_reinvite(
        self,
        request: Request,
        local_sdp: SessionDescription,
        media: MediaSession | None,
        transport: str,
        want: str = "sendrecv",
        *,
        agent_side: bool = False,
    ) -> SessionDescription:
        """Answer a peer's re-INVITE (RFC 3264 §8) and apply it to the caller's (or the agent's) leg of
        ``media`` (none: only answer): a new address or port, a hold or a resume. Returns our SDP as it
        now stands (``local_sdp`` when the offer was refused)."""
        endpoint = self.endpoint
        if not request.body:
            # No offer: ours goes in the 200 and the answer comes in the ACK (RFC 3261 §14.2).
            endpoint.respond_with(endpoint.sdp_response(request, 200, local_sdp, transport))
            return local_sdp
        current = None if media is None else media.agent_media if agent_side else media.caller_media
        try:
            reoffer = answer_reoffer(local_sdp, parse_sdp(request.body), current, want=want)
        except ProtocolError as exc:
            # RFC 3261 §14.2: an offer we cannot accept leaves the session as it was.
            endpoint.respond(request, getattr(exc, "status_code", 488))
            return local_sdp
        if media is not None and reoffer.changes_media:
            (media.update_agent if agent_side else media.update_caller)(reoffer.media)
        endpoint.respond_with(endpoint.sdp_response(request, 200, reoffer.answer, transport))
        return reoffer.answer

    def answer_update(
        self,
        request: Request,
        local_sdp: SessionDescription,
        media: MediaSession | None,
        transport: str,
        want: str = "sendrecv",
        *,
        agent_side: bool = False,
    ) -> SessionDescription:
        """Answer a peer's UPDATE (RFC 3311) in a confirmed dialog: without SDP a plain 200 (a
        session refresh, RFC 4028 §9); with an offer, as a re-INVITE's (:meth:`answer_reinvite`)."""
        if not request.body:
            self.endpoint.respond(request, 200, extra_headers=session_timer_headers(request))
            return local_sdp
        return self.answer_reinvite(request, local_sdp, media, transport, want, agent_side=agent_side)

    def invite_phone(
        self,
        binding: Binding,
        media: MediaSession,
        sdp_key: str,
        codecs: tuple[Any, ...],
        from_addr: NameAddress,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> tuple[SessionDescription, Request]:
        """An INVITE to an agent's registered phone offering the agent side of ``media``."""
        destination = binding.source
        offer = build_offer(
            address=media.address,
            port=media.agent_port,
            session_id=sdp_session_id(sdp_key),
            codecs=codecs,
        )
        invite = build_request(
            "INVITE",
            binding.contact.uri,
            from_addr=from_addr,
            to_addr=NameAddress(binding.contact.uri),
            via=self.endpoint.via(destination.transport),
            contact=self.endpoint.contact(destination.transport),
            body=offer.serialize(),
            content_type="application/sdp",
            extra_headers=extra_headers,
        )
        return offer, invite

    def record_media(self, media: MediaSession, interaction_id: int, quietly: Quietly) -> None:
        """Record ``media`` (when recording is configured): one mixed mono WAV and, if configured, a
        stereo one (caller left, agent right), listed in the interaction's ``recordings`` through
        ``quietly``."""
        if self.recordings_dir is None:
            return
        stem = self.recordings_dir / str(interaction_id)
        files = [Path(f"{stem}.wav")]
        if self.stereo_recordings:
            files.append(Path(f"{stem}-stereo.wav"))
        media.record(files[0], files[1] if len(files) > 1 else None)
        self.endpoint.spawn(quietly(self.calls.annotate(interaction_id, recordings=[str(f) for f in files])))
