"""Phones calling a colleague's extension through the B2BUA: the consultation of an attended transfer
from the phone (RFC 5589 §7), or simply one agent calling another.

A registered, digest-authenticated phone INVITEs another agent's SIP username (``sip:bob@us``). Every
registered phone of that agent rings at once (parallel forking, as the ACD's offers do); the first to
answer wins, the others get CANCEL (and a 2xx that crosses the CANCEL is ACKed and BYEd). The calling
phone gets 180 when a branch rings, 200 when one answers, or the best failure (RFC 3261 §16.7 step 6)
when none does. Media: one session, the calling phone on its caller side, the colleague on its agent
side, relayed.

Each such call is an :class:`~.call_state.ExtensionMachine` (one table in ``call_state.py``); each
branch a :class:`~.call_state.LegMachine`. The inbound B2BUA (``service.py``) takes the colleague's
leg and the media session over when the phone completes an attended transfer (:meth:`hand_over`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

from .call_setup import CallSetup, PendingInvite
from .call_state import (
    CallStateError,
    ExtensionAction,
    ExtensionEvent,
    ExtensionMachine,
    ExtensionState,
    LegEvent,
    LegMachine,
    LegState,
)
from .endpoint import Endpoint
from .media import MediaSession
from .offers import codecs_first
from .sip import (
    AckTimeout,
    Destination,
    Dialog,
    NameAddress,
    ProtocolError,
    Request,
    RequestReceived,
    Response,
    SessionDescription,
    TransactionKey,
    apply_answer,
    build_cancel,
    parse_sdp,
)

__all__ = ["ExtensionBranch", "ExtensionCall", "ExtensionCalls"]

log = logging.getLogger("frontoffice.voice.extensions")

# RFC 3261 §16.7 step 6: of the branches' failures the calling phone hears the "best"; 6xx wins
# outright, then the lowest class. With no branch answering at all it hears 480 (§21.4.18).
NO_ANSWER_STATUS = 480


@dataclass(eq=False)
class ExtensionBranch:
    """One INVITE to one registered phone of the called agent."""

    agent_id: int
    invite: Request
    key: TransactionKey
    destination: Destination
    offer: SessionDescription
    core: LegMachine = field(default_factory=LegMachine)
    dialog: Dialog | None = None
    status: int | None = None  # its final answer

    @property
    def call_id(self) -> str:
        return self.invite.call_id


@dataclass(eq=False)
class ExtensionCall:
    """A phone's call to a colleague's extension."""

    invite: Request
    key: TransactionKey
    source: Destination
    local_tag: str
    caller_agent_id: int
    callee_agent_id: int
    media: MediaSession
    local_sdp: SessionDescription
    core: ExtensionMachine = field(default_factory=ExtensionMachine)
    branches: list[ExtensionBranch] = field(default_factory=list)
    answered: ExtensionBranch | None = None
    dialog: Dialog | None = None  # with the calling phone (we are its UAS)
    rang: bool = False

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def state(self) -> ExtensionState:
        return self.core.state


def _best_failure(statuses: list[int]) -> int:
    """RFC 3261 §16.7 step 6: a 6xx if any, else the lowest status class' first answer."""
    if not statuses:
        return NO_ANSWER_STATUS
    six = [s for s in statuses if s >= 600]
    if six:
        return six[0]
    return min(statuses, key=lambda s: s // 100)


class ExtensionCalls:
    """The extension calls of one node (see the module)."""

    def __init__(self, endpoint: Endpoint, setup: CallSetup) -> None:
        self.endpoint = endpoint
        self.setup = setup
        self.registrar = setup.registrar
        self._calls: dict[str, ExtensionCall] = {}  # the calling phone's Call-ID
        self._branches: dict[str, ExtensionCall] = {}  # each branch's Call-ID

    def __len__(self) -> int:
        return len(self._calls)

    # ---------------------------------------------------------------- a new call
    async def call(
        self,
        pending: PendingInvite,
        source: Destination,
        offer: SessionDescription,
        caller_agent_id: int,
        callee_agent_id: int,
    ) -> None:
        """Ring every registered phone of ``callee_agent_id`` for the phone's INVITE (authenticated
        already); 480 when the colleague has no registered phone."""
        request = pending.request
        endpoint = self.endpoint
        now = endpoint.clock()
        bindings = list(self.registrar.bindings(callee_agent_id, now))
        if not bindings:
            endpoint.respond(request, NO_ANSWER_STATUS, to_tag=endpoint.to_tag(pending.key))
            return
        answered = await self.setup.answer_offer(
            request, offer, lambda digit: None, signalling_ip=source.host
        )
        if answered is None:
            return  # answered 488 (and closed) by answer_offer
        media, local_sdp, negotiated = answered
        if pending.cancelled:
            endpoint.spawn(media.close())  # 487 sent meanwhile
            return
        call = ExtensionCall(
            invite=request,
            key=pending.key,
            source=source,
            local_tag=endpoint.to_tag(pending.key),
            caller_agent_id=caller_agent_id,
            callee_agent_id=callee_agent_id,
            media=media,
            local_sdp=local_sdp,
        )
        self._calls[request.call_id] = call
        # The colleague is offered the calling phone's codec first: the relay does not transcode.
        codecs = codecs_first(negotiated.codec)
        caller = request.from_
        for binding in bindings:
            branch_offer, invite = self.setup.invite_phone(
                binding,
                media,
                request.call_id + "-extension",
                codecs,
                NameAddress(caller.uri, caller.display_name),
            )
            holder: list[ExtensionBranch] = []
            key = endpoint.request(invite, binding.source, partial(self._owner, call, holder))
            assert key is not None
            branch = ExtensionBranch(callee_agent_id, invite, key, binding.source, branch_offer)
            holder.append(branch)
            call.branches.append(branch)
            self._branches[invite.call_id] = call

    def _owner(self, call: ExtensionCall, holder: list[ExtensionBranch], response: Response | None) -> None:
        self._branch_response(call, holder[0], response)

    # ---------------------------------------------------------------- the branches' answers
    def _branch_response(
        self, call: ExtensionCall, branch: ExtensionBranch, response: Response | None
    ) -> None:
        endpoint = self.endpoint
        if response is not None and response.is_provisional:
            if branch.core.state is not LegState.ENDED:
                branch.core.handle(LegEvent.PROVISIONAL)
            if response.status in (180, 183) and not call.rang and call.state is ExtensionState.RINGING:
                call.rang = True
                endpoint.respond(call.invite, 180, to_tag=call.local_tag)
            return
        if response is None or not response.is_success:
            branch.status = 408 if response is None else response.status
            if branch.core.state is not LegState.ENDED:
                branch.core.handle(LegEvent.FAILED)
            self._branches.pop(branch.call_id, None)
            if call.state is ExtensionState.RINGING and not any(b.core.is_pending for b in call.branches):
                self._move(call, ExtensionEvent.ALL_FAILED)
            return
        # 2xx: ACK at once (RFC 3261 §13.2.2.4), whatever happens next.
        action = branch.core.handle(LegEvent.ANSWERED)
        branch.dialog = endpoint.ack_answer(branch.invite, response, branch.destination)
        answer = None
        if action == "" and call.state is ExtensionState.RINGING:
            try:
                answer = apply_answer(branch.offer, parse_sdp(response.body))
            except ProtocolError:
                answer = None
        if answer is None:
            # Lost the fork (a CANCEL crossed its 200), or an unusable answer: BYE it (§15).
            if branch.core.state is LegState.ANSWERED:
                branch.core.handle(LegEvent.BYE_SENT)
            endpoint.request(branch.dialog.bye(), branch.destination, None)
            self._branches.pop(branch.call_id, None)
            branch.status = response.status
            if call.state is ExtensionState.RINGING and not any(b.core.is_pending for b in call.branches):
                self._move(call, ExtensionEvent.ALL_FAILED)
            return
        call.answered = branch
        call.media.set_agent(answer, signalling_ip=branch.destination.host)
        self._move(call, ExtensionEvent.BRANCH_ANSWERED)

    # ---------------------------------------------------------------- the core's moves
    def _move(self, call: ExtensionCall, event: ExtensionEvent) -> None:
        endpoint = self.endpoint
        try:
            actions = call.core.handle(event)
        except CallStateError:
            log.exception("extension call %s: illegal move; hanging up", call.call_id)
            actions = (ExtensionAction.CANCEL_ALL, ExtensionAction.BYE_CALLER, ExtensionAction.BYE_CALLEE,
                       ExtensionAction.CLOSE, ExtensionAction.FORGET)  # fmt: skip
        for action in actions:
            if action is ExtensionAction.ANSWER_CALLER:
                call.dialog = endpoint.answer_invite(call.invite, call.local_tag, call.source, call.local_sdp)
                call.media.bridge()
            elif action is ExtensionAction.CANCEL_OTHERS or action is ExtensionAction.CANCEL_ALL:
                for branch in call.branches:
                    if branch is not call.answered or action is ExtensionAction.CANCEL_ALL:
                        self._cancel(branch)
            elif action is ExtensionAction.RESPOND_487:
                endpoint.respond(call.invite, 487, to_tag=call.local_tag)
            elif action is ExtensionAction.RESPOND_FAILURE:
                statuses = [b.status for b in call.branches if b.status is not None]
                endpoint.respond(call.invite, _best_failure(statuses), to_tag=call.local_tag)
            elif action is ExtensionAction.BYE_CALLER:
                if call.dialog is not None:
                    endpoint.request(call.dialog.bye(), call.source, None)
            elif action is ExtensionAction.BYE_CALLEE:
                answered = call.answered
                if (
                    answered is not None
                    and answered.dialog is not None
                    and answered.core.state is LegState.ANSWERED
                ):
                    answered.core.handle(LegEvent.BYE_SENT)
                    endpoint.request(answered.dialog.bye(), answered.destination, None)
            elif action is ExtensionAction.CLOSE:
                endpoint.spawn(call.media.close())
            elif action is ExtensionAction.FORGET:
                if self._calls.get(call.call_id) is call:
                    del self._calls[call.call_id]
                for branch in call.branches:
                    if self._branches.get(branch.call_id) is call and branch.core.state is LegState.ENDED:
                        del self._branches[branch.call_id]
                if call.answered is not None and call.state is ExtensionState.ENDED:
                    self._branches.pop(call.answered.call_id, None)

    def _cancel(self, branch: ExtensionBranch) -> None:
        if branch.core.state is LegState.ENDED:
            return
        action = branch.core.handle(LegEvent.CANCEL)
        if action == "cancel":
            self.endpoint.request(build_cancel(branch.invite), branch.destination, None)
        elif action == "bye" and branch.dialog is not None:
            self.endpoint.request(branch.dialog.bye(), branch.destination, None)

    # ---------------------------------------------------------------- requests within these calls
    def claim_request(self, event: RequestReceived) -> bool:
        """CANCEL, BYE, ACK and re-INVITEs of extension calls (not REFER: the B2BUA's); True if claimed."""
        request = event.request
        method = request.method
        call_id = request.call_id
        endpoint = self.endpoint
        call = self._calls.get(call_id)
        if call is not None:
            if method == "CANCEL":
                if endpoint.accept_cancel(request, event) and call.state is ExtensionState.RINGING:
                    self._move(call, ExtensionEvent.CANCEL)
                return True
            if method == "ACK":
                return True  # for our 2xx: the layer stopped retransmitting it (§13.3.1.4)
            dialog = call.dialog
            if dialog is None or not dialog.matches_request(request):
                return False
            if method == "BYE":
                dialog.receive_request(request)  # DialogError: the endpoint answers 500 (§12.2.2)
                endpoint.respond(request, 200)
                if call.core.can(ExtensionEvent.BYE_CALLER):
                    self._move(call, ExtensionEvent.BYE_CALLER)
                return True
            if method == "INVITE" or method == "UPDATE":
                dialog.receive_request(request)
                answer = self.setup.answer_reinvite if method == "INVITE" else self.setup.answer_update
                call.local_sdp = answer(request, call.local_sdp, call.media, call.source.transport)
                return True
            if method == "INFO":
                dialog.receive_request(request)
                endpoint.respond(request, 200)  # no menu here: a DTMF INFO is taken and ignored
                return True
            return False
        call = self._branches.get(call_id)
        if call is None:
            return False
        branch = next((b for b in call.branches if b.call_id == call_id), None)
        if branch is None or branch.dialog is None or not branch.dialog.matches_request(request):
            return False
        if method == "BYE":
            branch.dialog.receive_request(request)
            endpoint.respond(request, 200)
            if branch.core.state is LegState.ANSWERED:
                branch.core.handle(LegEvent.BYE_RECEIVED)
                if branch is call.answered and call.core.can(ExtensionEvent.BYE_CALLEE):
                    self._move(call, ExtensionEvent.BYE_CALLEE)
            return True
        if method == "INVITE" or method == "UPDATE":
            branch.dialog.receive_request(request)
            answer = self.setup.answer_reinvite if method == "INVITE" else self.setup.answer_update
            branch.offer = answer(
                request, branch.offer, call.media, branch.destination.transport, agent_side=True
            )
            return True
        if method == "INFO":
            branch.dialog.receive_request(request)
            endpoint.respond(request, 200)
            return True
        return False

    def claim_response(self, response: Response) -> bool:
        """A 2xx of a branch retransmitted after its transaction ended: ACK it again (§13.2.2.4)."""
        call = self._branches.get(response.call_id)
        if call is None or response.cseq.method != "INVITE":
            return False
        branch = next((b for b in call.branches if b.call_id == response.call_id), None)
        if branch is not None and branch.dialog is not None:
            self.endpoint.request(branch.dialog.ack(response.cseq.seq), branch.destination, None)
        return True

    def on_ack_timeout(self, event: AckTimeout) -> bool:
        call = self._calls.get(event.call_id)
        if call is None:
            return False
        if call.core.can(ExtensionEvent.ACK_TIMEOUT):
            self._move(call, ExtensionEvent.ACK_TIMEOUT)
        return True

    # ---------------------------------------------------------------- attended transfer
    def by_dialog(self, request: Request) -> ExtensionCall | None:
        """The answered extension call whose calling phone's dialog ``request`` is in."""
        call = self._calls.get(request.call_id)
        if call is None or call.dialog is None or not call.dialog.matches_request(request):
            return None
        return call

    def find(self, call_id: str, tag_a: str, tag_b: str) -> ExtensionCall | None:
        """The answered extension call a Replaces (RFC 3891 §3) names by the calling phone's dialog:
        Call-ID and its two tags, in either order (phones differ in which they call to-tag)."""
        call = self._calls.get(call_id)
        if call is None or call.dialog is None or call.state is not ExtensionState.ANSWERED:
            return None
        if {tag_a, tag_b} != {call.dialog.local_tag, call.dialog.remote_tag}:
            return None
        return call

    def hand_over(self, call: ExtensionCall) -> ExtensionBranch:
        """The attended transfer takes the colleague's answered leg and the media session (its agent
        side): the call is forgotten here, the calling phone's dialog stays up for the B2BUA to BYE."""
        branch = call.answered
        assert branch is not None
        self._move(call, ExtensionEvent.REPLACED)
        self._branches.pop(branch.call_id, None)
        return branch

    def hang_up_all(self) -> None:
        """Shutdown: end every extension call."""
        for call in list(self._calls.values()):
            if call.core.can(ExtensionEvent.HANG_UP):
                self._move(call, ExtensionEvent.HANG_UP)
