"""Source screening: who may call in. An INVITE from a trunk's address is a carrier call (subject to
the trunk's ``max_calls``: 503 with Retry-After beyond it) and may only reach entry points. Any other
source must authenticate with an agent's SIP account (digest, like REGISTER) and have a registered
phone; it may then call an entry point or, through a trunk, an external number.

**Toll-fraud rule**: nothing unauthenticated ever leaves through a trunk - a carrier call to a number
that is not an entry point gets 404, an unauthenticated one 401/403. Known scanners are dropped (and
banned) before the transaction layer sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from typing import Protocol

from frontoffice.domain.exceptions import NotFound

from .call_setup import CallSetup, PendingInvite
from .click_to_call import AgentOutboundCalls
from .endpoint import Endpoint
from .sip import Destination, Request, RequestReceived, SessionDescription
from .trunks import InvalidNumber, TrunkLine, TrunkLines, normalize_number

__all__ = ["InboundCalls", "SourceScreening"]

log = logging.getLogger("frontoffice.voice.trunks")

# RFC 3261 §21.5.4: a 503 may say when to come back; a trunk at its limit frees a slot within a call.
TRUNK_RETRY_AFTER_S = 30


class InboundCalls(Protocol):
    """The inbound B2BUA as screening sees it: it takes calls to entry points and says which it has."""

    def accept_call(self, request: Request, event: RequestReceived, offer: SessionDescription) -> None:
        """Take an INVITE to an entry point as an inbound call (screened and authenticated already)."""

    def live_call_ids(self) -> Collection[str]:
        """Call-IDs of the inbound calls in progress."""

    async def replace_dialog(
        self, pending: PendingInvite, event: RequestReceived, offer: SessionDescription, agent_id: int
    ) -> None:
        """A phone (authenticated, agent ``agent_id``) INVITEs with Replaces (RFC 3891)."""

    async def call_extension(
        self,
        pending: PendingInvite,
        event: RequestReceived,
        offer: SessionDescription,
        caller_agent_id: int,
        callee_agent_id: int,
    ) -> None:
        """A phone (authenticated, agent ``caller_agent_id``) calls a colleague's extension."""


class SourceScreening:
    """Decides on requests before they become calls: scanners, trunks, authenticated phones."""

    def __init__(
        self,
        endpoint: Endpoint,
        setup: CallSetup,
        lines: TrunkLines,
        inbound: InboundCalls,
        agent_calls: AgentOutboundCalls,
        *,
        region: str,
    ) -> None:
        self.endpoint = endpoint
        self.setup = setup
        self.lines = lines
        self.inbound = inbound
        self.agent_calls = agent_calls
        self.region = region
        self.registrar = setup.registrar
        self.calls = setup.calls
        # Phones' INVITEs being authenticated, by Call-ID (until a call takes them or they are answered).
        self._pending: dict[str, PendingInvite] = {}

    def drop_scanner(self, request: Request, source: Destination) -> bool:
        """True (and the address banned) for a request from a known SIP scanner: SIPVicious & co. probe
        with OPTIONS and INVITE as much as with REGISTER, so every method counts."""
        registrar = self.registrar
        if not registrar.is_scanner(request):
            return False
        registrar.ban(source.host, self.endpoint.clock())
        log.info("SIP scanner at %s banned (%s)", source.host, request.headers.get("User-Agent"))
        return True

    def screen_invite(self, request: Request, event: RequestReceived) -> bool:
        """Decide on a new INVITE: True lets the B2BUA take it as an inbound call (entry points only);
        False means it was answered here (403, 503, a challenge) or is handled here."""
        endpoint = self.endpoint
        if self.agent_calls.handles(request.call_id):
            return False  # a second INVITE of a call we already handle
        line = self.lines.for_source(event.source.host)
        replaces = request.headers.get("Replaces") is not None
        if line is not None and replaces:
            # RFC 3891 §6: only an authenticated phone may take a dialog over; carriers never do here.
            endpoint.respond(request, 403, "Replaces Only From Phones")
            return False
        if line is not None:
            if not line.has_room():
                log.info("trunk %s: at its limit of %s calls, 503", line.trunk.name, line.trunk.max_calls)
                endpoint.respond(request, 503, extra_headers=[("Retry-After", str(TRUNK_RETRY_AFTER_S))])
                return False
            line.inbound.add(request.call_id)
            self._dialled_from_to(line, request)
            return True
        if (
            not self.lines
            and not replaces
            and not request.headers.get_all("Authorization")
            and (
                _is_number(request.uri.user or "")
                or not self.registrar.has_binding_from(event.source.host, endpoint.clock())
            )
        ):
            # No trunk configured: calls to numbers reach entry points from anywhere, as before trunks
            # existed (restrict sources with the firewall or sip_banned_networks); nothing can go out.
            # A call to a name (a colleague's extension) from a registered phone's address is
            # challenged like any phone's call.
            return True
        if request.call_id in self._pending:
            return False  # a second INVITE of a call being authenticated
        # Registered before any await (issue 13, defect 1): a CANCEL right behind the INVITE finds it.
        assert event.transaction is not None
        pending = PendingInvite(request, event.transaction)
        self._pending[request.call_id] = pending
        endpoint.spawn(self._authenticated_invite(pending, event))
        return False

    def claim_cancel(self, event: RequestReceived) -> bool:
        """A CANCEL of a phone's INVITE still being authenticated or set up: RFC 3261 §9.2, 200 to the
        CANCEL and 487 to the INVITE now (same To tag); the set-up stops where it resumes. True if
        it was one."""
        request = event.request
        if request.method != "CANCEL":
            return False
        pending = self._pending.get(request.call_id)
        if pending is None:
            return False
        endpoint = self.endpoint
        if endpoint.accept_cancel(request, event) and not pending.cancelled:
            pending.cancelled = True
            self._pending.pop(request.call_id, None)
            endpoint.respond(pending.request, 487, to_tag=endpoint.to_tag(pending.key))
        return True

    def _dialled_from_to(self, line: TrunkLine, request: Request) -> None:
        """A registered trunk sends calls to our Contact (``sip:<username>@us``) with the number dialled
        in To: make that number the Request-URI user the B2BUA looks up."""
        trunk = line.trunk
        to_user = request.to.uri.user
        if trunk.username and request.uri.user == trunk.username and to_user and to_user != trunk.username:
            request.uri = replace(request.uri, user=to_user)

    async def _authenticated_invite(self, pending: PendingInvite, event: RequestReceived) -> None:
        """An INVITE from outside the trunks: an agent's phone, or someone we refuse."""
        try:
            await self._authenticate_invite(pending, event)
        finally:
            if self._pending.get(pending.request.call_id) is pending:
                del self._pending[pending.request.call_id]

    async def _authenticate_invite(self, pending: PendingInvite, event: RequestReceived) -> None:
        request = pending.request
        endpoint = self.endpoint
        registrar = self.registrar
        now = endpoint.clock()
        source = event.source
        if not registrar.has_binding_from(source.host, now):
            # Neither a trunk nor the address of a registered phone: refused without a challenge, so
            # scanners learn nothing about accounts (and repeated tries get the address banned).
            self._refuse(request, source, "not a trunk and no phone registered from there")
            return
        checked = await self.setup.authenticate(request, now)
        if checked is None or pending.cancelled:
            return  # answered (a challenge, 500), or 487 after a CANCEL
        username, account, result, now = checked
        if not result.ok or account is None:
            self._refuse(request, source, f"bad credentials for {username!r}: {result.reason}")
            return
        if not registrar.bindings(account.user_id, now):
            self._refuse(request, source, f"{username!r} has no registered phone")
            return
        dialled = request.uri.user or ""
        offer = self.setup.sdp_offer(request)
        if offer is None:
            return
        if request.headers.get("Replaces") is not None:
            await self.inbound.replace_dialog(pending, event, offer, account.user_id)
            return
        try:
            await self.calls.entry_for(dialled)
        except NotFound:
            if not _is_number(dialled):
                _, callee = await self.calls.refer_target(dialled)
                if pending.cancelled:
                    return
                if callee is None or callee == account.user_id:
                    endpoint.respond(request, 404, to_tag=endpoint.to_tag(pending.key))
                    return
                # A colleague's extension (extensions.py): every registered phone of theirs rings.
                await self.inbound.call_extension(pending, event, offer, account.user_id, callee)
                return
        else:
            if pending.cancelled:
                return
            # An agent calling one of our own numbers: an inbound call like any other (registered at
            # once by the B2BUA, which answers a CANCEL from here on).
            self._pending.pop(request.call_id, None)
            self.inbound.accept_call(request, event, offer)
            return
        if pending.cancelled:
            return
        try:
            number = normalize_number(dialled, self.region)
        except InvalidNumber:
            endpoint.respond(request, 404)
            return
        await self.agent_calls.phone_dials_out(pending, event, account.user_id, number, offer)

    def _refuse(self, request: Request, source: Destination, why: str) -> None:
        endpoint = self.endpoint
        log.info("INVITE from %s refused: %s", source.host, why)
        if self.registrar.record_failure(source.host, endpoint.clock()):
            log.warning("SIP address %s banned after repeated refused requests", source.host)
        endpoint.respond(request, 403)


def _is_number(user: str) -> bool:
    """A dialled number (digits, an optional ``+``, visual separators) rather than a SIP username."""
    digits = user.lstrip("+").replace("-", "").replace(".", "").replace(" ", "")
    return digits.isdigit()
