"""The call core: every legal move of a call, its agent legs and its re-INVITEs in one table each.

Sans-IO, as h11's ``_state.py``: no sockets, no asyncio, no clock. The B2BUA (``service.py``) feeds
events in (``CallEvent``: INVITE, CANCEL, ACK timeout, BYE, the agent's answer, agent commands …) and
gets back the next state and the actions to take (``Action``: send 487, BYE a leg, CANCEL a ringing
phone, abandon or end the contact …). A move the table does not hold raises :class:`CallStateError`
and leaves the machine in :attr:`CallState.ERROR` - a call that raised does not limp on.

Each table maps ``(state, event)`` to one preallocated :class:`Transition`, so a move costs one dict
look-up and allocates nothing (the hot path INVITE → queue → offer → 200 → bridge takes five).

State diagram of a call (``docs/voice.md`` draws it)::

    ARRIVING ──menu──▶ MENU ──choice──▶ ARRIVING ──queued──▶ QUEUED ──agent answered──▶ BRIDGED
    BRIDGED ──transferred──▶ QUEUED        BRIDGED ──external answered──▶ EXTERNAL
    ARRIVING/MENU/QUEUED ──CANCEL──▶ ENDED (487)      BRIDGED/EXTERNAL ──BYE/ACK timeout/hang up──▶ ENDED
    QUEUED ──turned away (fallback)──▶ TURNED_AWAY (answered: voicemail or the closed message)
    TURNED_AWAY ──BYE/ACK timeout/hang up──▶ ENDED
    BRIDGED ──third party answered──▶ CONFERENCE ──third party left──▶ BRIDGED
    CONFERENCE ──agent left──▶ HANDED_OVER ──BYE/hang up──▶ ENDED     CONFERENCE ──caller left──▶ ENDED
    BRIDGED ──consulted party answered──▶ CONSULTING ──completed / agent left──▶ REPLACED
    CONSULTING ──cancelled / third party left──▶ BRIDGED
    BRIDGED ──the agent's phone holds / resumes (its re-INVITE)──▶ BRIDGED (music to the caller / relay)
    BRIDGED ──the phone's attended transfer (REFER or INVITE with Replaces)──▶ REPLACED ──BYE──▶ ENDED
    REPLACED ──the ACD committed the contact as the colleague's──▶ REPLACED (NOTIFY 200, BYE the phone)
    REPLACED ──the contact stays with the transferring agent (an external party, a refusal)──▶ HANDED_OVER
    REPLACED ──the colleague's phone holds / resumes (its re-INVITE)──▶ REPLACED (music / the mix again)
    any state with the caller's dialog up ──session refresh due (RFC 4028, we refresh)──▶ the same
    any state with the caller's dialog up ──session expired (RFC 4028 §10)──▶ ENDED (BYE both legs)

A phone's call to a colleague's extension through the B2BUA (the consultation of an attended transfer
from the phone, RFC 5589 §7) has a table of its own (``EXTENSION_TRANSITIONS``)::

    RINGING ──a branch answered──▶ ANSWERED ──BYE (either side), ACK timeout──▶ ENDED
    RINGING ──CANCEL / every branch failed──▶ ENDED      ANSWERED ──replaced (the transfer)──▶ ENDED
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "CALL_TRANSITIONS",
    "EXTENSION_TRANSITIONS",
    "LEG_TRANSITIONS",
    "REINVITE_TRANSITIONS",
    "Action",
    "CallEvent",
    "CallMachine",
    "CallState",
    "CallStateError",
    "ExtensionAction",
    "ExtensionEvent",
    "ExtensionMachine",
    "ExtensionState",
    "ExtensionTransition",
    "LegEvent",
    "LegMachine",
    "LegState",
    "LegTransition",
    "ReinviteEvent",
    "ReinviteMachine",
    "ReinviteState",
    "ReinviteTransition",
    "Transition",
    "reinvite_backoff_range",
]


class CallStateError(Exception):
    """An event the call's state does not allow (the one error of the call core)."""


class CallState(enum.StrEnum):
    """Where the caller's side of a call is."""

    ARRIVING = "arriving"  # INVITE taken, media opening, contact being recorded
    MENU = "menu"  # the IVR menu waits for a digit
    QUEUED = "queued"  # in the ACD queue, music on hold (also a transferred caller waiting again)
    BRIDGED = "bridged"  # an agent's phone answered; media relayed
    EXTERNAL = "external"  # blind-transferred to an external number that answered
    TURNED_AWAY = "turned_away"  # the ACD's fallback: answered for voicemail or the closed message
    CONFERENCE = "conference"  # caller, agent and a third party in the media process's mixer
    CONSULTING = "consulting"  # attended transfer: the caller held, the agent talks to the third party
    # The caller talks to a third party and the contact is over for the center: the agent left a
    # conference, or an attended transfer went to an external number (or to a colleague who could not
    # take the contact).
    HANDED_OVER = "handed_over"
    # An attended transfer handed the caller to a colleague - from the desk (consult, then complete) or
    # from the agent's phone (RFC 5589 §7 / RFC 3891): caller and colleague talk (relayed, see
    # conference.py); the contact is the colleague's in the ACD.
    REPLACED = "replaced"
    ENDED = "ended"
    ERROR = "error"  # the core raised: the call is hung up and forgotten


class CallEvent(enum.StrEnum):
    MENU_STARTED = "menu_started"
    MENU_DONE = "menu_done"
    QUEUED = "queued"  # the ACD holds the contact
    AGENT_CONNECTED = "agent_connected"  # the agent's 200 is committed as the offer's answer
    BACK_TO_QUEUE = "back_to_queue"  # transferred (API / REFER) to a queue or agent
    EXTERNAL_ANSWERED = "external_answered"
    CANCEL = "cancel"  # RFC 3261 §9.2: the caller gave up before the final answer
    REFUSED = "refused"  # we answer the INVITE with a failure (404, 480, 500 …)
    BYE_CALLER = "bye_caller"  # the caller's BYE
    BYE_AGENT = "bye_agent"  # the agent's phone's BYE
    BYE_EXTERNAL = "bye_external"
    ACK_TIMEOUT = "ack_timeout"  # RFC 3261 §13.3.1.4 / Timer H: our 2xx was never ACKed
    HANG_UP = "hang_up"  # agent command (desk), or shutdown
    ACD_FINISHED = "acd_finished"  # the ACD ended the contact while the call was up
    TURNED_AWAY = "turned_away"  # the ACD's fallback action (voicemail, closed message) for a waiting call
    CONFERENCE_JOINED = "conference_joined"  # the third party the agent brought in answered
    CONSULT_ANSWERED = "consult_answered"  # the party the agent consults (caller held) answered
    TRANSFER_COMPLETED = "transfer_completed"  # the agent completes the attended transfer (desk)
    CONSULT_ENDED = "consult_ended"  # the agent cancelled the consultation, or the third party hung up
    THIRD_PARTY_LEFT = "third_party_left"  # the conference's third party hung up (BYE / the trunk leg ended)
    # The agent's phone (after an attended transfer, REPLACED: the colleague's) holds the caller with its
    # own re-INVITE (a=sendonly / inactive).
    AGENT_HELD = "agent_held"
    AGENT_RESUMED = "agent_resumed"  # ... and takes the caller back (a=sendrecv)
    # The agent's phone's attended transfer (REFER with Replaces, or the colleague's INVITE with Replaces)
    PHONE_TRANSFERRED = "phone_transferred"
    HANDOVER_DONE = "handover_done"  # the ACD committed the contact as the colleague's
    # The contact stays with the transferring agent (it ends: wrap-up): the other side of the hand-over
    # is an external number, or the ACD could not give it to the colleague (signed out meanwhile).
    CONTACT_STAYED = "contact_stayed"
    # RFC 4028 §10: we are the refresher and half the session interval has passed.
    SESSION_REFRESH_DUE = "session_refresh_due"
    # RFC 4028 §10: the peer refreshes and no refresh came before the interval minus min(32, SE/3) s.
    SESSION_EXPIRED = "session_expired"
    PHONE_REPLACED = "phone_replaced"  # another phone of the agent took the call over (INVITE with Replaces)


class Action(enum.StrEnum):
    """What the adapter does for a move (in the order the transition lists them)."""

    SEND_PROGRESS = "send_progress"  # 183 with our SDP, music on hold
    ANSWER_CALLER = "answer_caller"  # 200 with our SDP (or only re-bridge: the dialog exists)
    BRIDGE = "bridge"
    PLAY_HOLD_MUSIC = "play_hold_music"
    RECORD = "record"
    RESPOND_487 = "respond_487"  # RFC 3261 §9.2: the INVITE ends with 487 after a CANCEL
    RESPOND_FAILURE = "respond_failure"  # the status the refusal carries
    CANCEL_AGENTS = "cancel_agents"  # CANCEL ringing phones, BYE an answered one
    BYE_AGENT = "bye_agent"
    BYE_CALLER = "bye_caller"
    BYE_EXTERNAL = "bye_external"
    ABANDON_CONTACT = "abandon_contact"  # the ACD: the caller left while waiting
    END_CONTACT = "end_contact"  # the ACD: conversation over, wrap-up
    RUN_FALLBACK = "run_fallback"  # voicemail or the closed message (voicemail.py), then hang up
    MIX = "mix"  # caller, agent and third party into one conference of the mixer (conference.py)
    MIX_CONSULTATION = "mix_consultation"  # agent and third party into the mixer; the caller waits
    CALLER_JOINS_MIX = "caller_joins_mix"  # the caller's leg into the mixer (with the third party)
    CALLER_LEAVES_MIX = "caller_leaves_mix"  # the caller's leg out of the mixer (held: the music)
    RESUME_CALLER = "resume_caller"  # off hold: re-INVITE a=sendrecv (RFC 3264 §8.4)
    AGENT_LEAVES_MIX = "agent_leaves_mix"  # the agent's leg out of the conference; the other two go on
    DROP_THIRD_PARTY = "drop_third_party"  # BYE (or CANCEL) the third party, close its media session
    MIX_REPLACEMENT = "mix_replacement"  # the caller and the colleague's leg into a 2-party mix
    # The ACD: the contact moves to the colleague the caller now talks to (connected to them at once),
    # then HANDOVER_DONE; for an external party, or when the ACD cannot, CONTACT_STAYED.
    HAND_OVER_CONTACT = "hand_over_contact"
    RECORD_THIRD_PARTY = "record_third_party"  # the third party's audio joins the call's recording
    REFRESH_SESSION = "refresh_session"  # RFC 4028: UPDATE (or re-INVITE) with Session-Expires
    NOTIFY_TRANSFEROR = "notify_transferor"  # RFC 3515 §2.4.5: NOTIFY sipfrag 200 to the REFER's sender
    BYE_TRANSFEROR = "bye_transferor"  # BYE the transferring phone's consultation dialog
    CLOSE = "close"  # close media, forget the call


@dataclass(frozen=True, slots=True)
class Transition:
    next: CallState
    actions: tuple[Action, ...] = ()


_A = Action
_WAITING = (CallState.ARRIVING, CallState.MENU, CallState.QUEUED)
# A caller that leaves before the final answer: CANCEL it all. Only a queued caller is a contact the
# ACD holds; an arriving one is not queued yet (the adapter abandons it once its id is known).
_CANCELLED = Transition(CallState.ENDED, (_A.CANCEL_AGENTS, _A.RESPOND_487, _A.ABANDON_CONTACT, _A.CLOSE))
_REFUSED = Transition(CallState.ENDED, (_A.CANCEL_AGENTS, _A.RESPOND_FAILURE, _A.ABANDON_CONTACT, _A.CLOSE))

CALL_TRANSITIONS: dict[tuple[CallState, CallEvent], Transition] = {
    (CallState.ARRIVING, CallEvent.MENU_STARTED): Transition(CallState.MENU, (_A.SEND_PROGRESS,)),
    (CallState.MENU, CallEvent.MENU_DONE): Transition(CallState.ARRIVING),
    (CallState.ARRIVING, CallEvent.QUEUED): Transition(
        CallState.QUEUED, (_A.SEND_PROGRESS, _A.PLAY_HOLD_MUSIC)
    ),
    (CallState.QUEUED, CallEvent.AGENT_CONNECTED): Transition(
        CallState.BRIDGED, (_A.RECORD, _A.BRIDGE, _A.ANSWER_CALLER)
    ),
    (CallState.BRIDGED, CallEvent.BACK_TO_QUEUE): Transition(
        CallState.QUEUED, (_A.BYE_AGENT, _A.PLAY_HOLD_MUSIC)
    ),
    (CallState.BRIDGED, CallEvent.EXTERNAL_ANSWERED): Transition(
        CallState.EXTERNAL, (_A.BYE_AGENT, _A.BRIDGE)
    ),
    **{(state, CallEvent.CANCEL): _CANCELLED for state in _WAITING},
    **{(state, CallEvent.REFUSED): _REFUSED for state in _WAITING},
    # A caller hanging up a transferred call that waits again in the queue (its dialog is up).
    (CallState.QUEUED, CallEvent.BYE_CALLER): Transition(
        CallState.ENDED, (_A.CANCEL_AGENTS, _A.ABANDON_CONTACT, _A.CLOSE)
    ),
    (CallState.QUEUED, CallEvent.HANG_UP): _REFUSED,
    (CallState.ARRIVING, CallEvent.HANG_UP): _REFUSED,
    (CallState.MENU, CallEvent.HANG_UP): _REFUSED,
    (CallState.BRIDGED, CallEvent.BYE_CALLER): Transition(
        CallState.ENDED, (_A.CANCEL_AGENTS, _A.BYE_EXTERNAL, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.BRIDGED, CallEvent.BYE_AGENT): Transition(
        CallState.ENDED, (_A.BYE_CALLER, _A.BYE_EXTERNAL, _A.END_CONTACT, _A.CLOSE)
    ),
    # RFC 3261 §13.3.1.4: no ACK for our 2xx: the UAS confirms and then ends the session with BYE.
    (CallState.BRIDGED, CallEvent.ACK_TIMEOUT): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.BYE_EXTERNAL, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.BRIDGED, CallEvent.HANG_UP): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.BYE_EXTERNAL, _A.END_CONTACT, _A.CLOSE)
    ),
    # The ACD ended the contact (desk "End conversation"): it is in wrap-up already, no END_CONTACT.
    (CallState.BRIDGED, CallEvent.ACD_FINISHED): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.BYE_EXTERNAL, _A.CLOSE)
    ),
    # The ACD finished the contact when the external party answered: no END_CONTACT here.
    (CallState.EXTERNAL, CallEvent.BYE_CALLER): Transition(CallState.ENDED, (_A.BYE_EXTERNAL, _A.CLOSE)),
    (CallState.EXTERNAL, CallEvent.BYE_EXTERNAL): Transition(CallState.ENDED, (_A.BYE_CALLER, _A.CLOSE)),
    (CallState.EXTERNAL, CallEvent.ACK_TIMEOUT): Transition(
        CallState.ENDED, (_A.BYE_CALLER, _A.BYE_EXTERNAL, _A.CLOSE)
    ),
    (CallState.EXTERNAL, CallEvent.HANG_UP): Transition(
        CallState.ENDED, (_A.BYE_CALLER, _A.BYE_EXTERNAL, _A.CLOSE)
    ),
    # The ACD turned a waiting caller away with a fallback action: the contact is finished there
    # already (ticket, callback), so none of the moves out of TURNED_AWAY abandons or ends it.
    (CallState.QUEUED, CallEvent.TURNED_AWAY): Transition(
        CallState.TURNED_AWAY, (_A.CANCEL_AGENTS, _A.ANSWER_CALLER, _A.RUN_FALLBACK)
    ),
    (CallState.TURNED_AWAY, CallEvent.BYE_CALLER): Transition(CallState.ENDED, (_A.CLOSE,)),
    # The flow is over (message left, "#", time limit, closed message played), or shutdown.
    (CallState.TURNED_AWAY, CallEvent.HANG_UP): Transition(CallState.ENDED, (_A.BYE_CALLER, _A.CLOSE)),
    (CallState.TURNED_AWAY, CallEvent.ACK_TIMEOUT): Transition(CallState.ENDED, (_A.BYE_CALLER, _A.CLOSE)),
    # Three-way conference: the third party the agent brought in (a colleague's phone or an external
    # number) answered; the three legs leave the relay for the mixer, each hears the two others.
    (CallState.BRIDGED, CallEvent.CONFERENCE_JOINED): Transition(
        CallState.CONFERENCE, (_A.MIX, _A.RECORD_THIRD_PARTY)
    ),
    # Any party leaving returns the other two to a plain bridge, or ends the call if the caller left.
    (CallState.CONFERENCE, CallEvent.THIRD_PARTY_LEFT): Transition(
        CallState.BRIDGED, (_A.DROP_THIRD_PARTY, _A.BRIDGE)
    ),
    (CallState.CONFERENCE, CallEvent.BYE_CALLER): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    # The agent left: the caller and the third party stay in the mixer, which for two parties is a
    # plain bridge (each hears the other). The contact is handed over as an attended transfer's is
    # (HAND_OVER_CONTACT): a colleague gets it (busy with it, their wrap-up after), an external number
    # leaves it with the agent (CONTACT_STAYED: HANDED_OVER, the agent's wrap-up).
    (CallState.CONFERENCE, CallEvent.BYE_AGENT): Transition(
        CallState.REPLACED, (_A.AGENT_LEAVES_MIX, _A.HAND_OVER_CONTACT)
    ),
    (CallState.CONFERENCE, CallEvent.HANG_UP): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.CONFERENCE, CallEvent.ACK_TIMEOUT): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.CONFERENCE, CallEvent.ACD_FINISHED): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.CLOSE)
    ),
    # Attended (consultative) transfer from the desk: the caller is held, the agent talks to the third
    # party in the mixer; completing it hands the caller over (the agent's leg is released), the agent
    # hanging up completes it too (as PBXs do); cancelling it, or the third party hanging up, returns
    # the agent to the caller.
    # The held caller hears music on hold during the consultation (its leg is not in the mix).
    (CallState.BRIDGED, CallEvent.CONSULT_ANSWERED): Transition(
        CallState.CONSULTING, (_A.MIX_CONSULTATION, _A.RECORD_THIRD_PARTY, _A.PLAY_HOLD_MUSIC)
    ),
    # Completing it hands the contact over exactly as the phone's transfer does (HAND_OVER_CONTACT,
    # then HANDOVER_DONE or CONTACT_STAYED): the caller and the colleague talk at once.
    (CallState.CONSULTING, CallEvent.TRANSFER_COMPLETED): Transition(
        CallState.REPLACED,
        (_A.BYE_AGENT, _A.AGENT_LEAVES_MIX, _A.CALLER_JOINS_MIX, _A.RESUME_CALLER, _A.HAND_OVER_CONTACT),
    ),
    (CallState.CONSULTING, CallEvent.BYE_AGENT): Transition(
        CallState.REPLACED, (_A.AGENT_LEAVES_MIX, _A.CALLER_JOINS_MIX, _A.RESUME_CALLER, _A.HAND_OVER_CONTACT)
    ),
    (CallState.CONSULTING, CallEvent.CONSULT_ENDED): Transition(
        CallState.BRIDGED, (_A.DROP_THIRD_PARTY, _A.BRIDGE, _A.RESUME_CALLER)
    ),
    (CallState.CONSULTING, CallEvent.BYE_CALLER): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.CONSULTING, CallEvent.HANG_UP): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.CONSULTING, CallEvent.ACK_TIMEOUT): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.CONSULTING, CallEvent.ACD_FINISHED): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.CLOSE)
    ),
    # The agent's phone holds the caller itself (its re-INVITE a=sendonly on the agent leg): the caller
    # hears music on hold, not silence; its resume (a=sendrecv) relays again.
    (CallState.BRIDGED, CallEvent.AGENT_HELD): Transition(CallState.BRIDGED, (_A.PLAY_HOLD_MUSIC,)),
    (CallState.BRIDGED, CallEvent.AGENT_RESUMED): Transition(CallState.BRIDGED, (_A.BRIDGE,)),
    # RFC 3891: another phone of the same agent takes the call over (INVITE with Replaces naming the
    # agent leg): the old phone gets BYE, the relay goes on to the new one.
    (CallState.BRIDGED, CallEvent.PHONE_REPLACED): Transition(CallState.BRIDGED, (_A.BYE_AGENT, _A.BRIDGE)),
    # Attended transfer from the phone (RFC 5589 §7): the phone called a colleague through us and
    # REFERs the caller to that dialog (Replaces), or the colleague's phone INVITEs with Replaces. The
    # caller is bridged to the colleague at once; once the ACD has committed the contact as the
    # colleague's, the phone hears NOTIFY 200 and both its dialogs get BYE.
    (CallState.BRIDGED, CallEvent.PHONE_TRANSFERRED): Transition(
        CallState.REPLACED, (_A.MIX_REPLACEMENT, _A.RECORD_THIRD_PARTY, _A.HAND_OVER_CONTACT)
    ),
    (CallState.REPLACED, CallEvent.HANDOVER_DONE): Transition(
        CallState.REPLACED, (_A.NOTIFY_TRANSFEROR, _A.BYE_AGENT, _A.BYE_TRANSFEROR)
    ),
    # The colleague's phone holds the caller it took over (its own re-INVITE on its leg): the caller
    # leaves the two-party mix for the music (the colleague hears silence); its resume brings them back.
    (CallState.REPLACED, CallEvent.AGENT_HELD): Transition(
        CallState.REPLACED, (_A.CALLER_LEAVES_MIX, _A.PLAY_HOLD_MUSIC)
    ),
    (CallState.REPLACED, CallEvent.AGENT_RESUMED): Transition(CallState.REPLACED, (_A.CALLER_JOINS_MIX,)),
    # The SIP transfer happened (the caller talks to the third party); the contact ends with the
    # transferring agent (wrap-up), and the call goes on outside the ACD.
    (CallState.REPLACED, CallEvent.CONTACT_STAYED): Transition(
        CallState.HANDED_OVER, (_A.NOTIFY_TRANSFEROR, _A.BYE_AGENT, _A.BYE_TRANSFEROR, _A.END_CONTACT)
    ),
    # The transferring phone hangs up itself (many do after the 202): the caller and colleague go on.
    (CallState.REPLACED, CallEvent.BYE_AGENT): Transition(CallState.REPLACED, (_A.BYE_TRANSFEROR,)),
    (CallState.REPLACED, CallEvent.BYE_CALLER): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_TRANSFEROR, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE)
    ),
    (CallState.REPLACED, CallEvent.THIRD_PARTY_LEFT): Transition(
        CallState.ENDED,
        (_A.BYE_AGENT, _A.BYE_TRANSFEROR, _A.DROP_THIRD_PARTY, _A.BYE_CALLER, _A.END_CONTACT, _A.CLOSE),
    ),
    **{
        (CallState.REPLACED, event): Transition(
            CallState.ENDED,
            (_A.BYE_AGENT, _A.BYE_TRANSFEROR, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.END_CONTACT, _A.CLOSE),
        )
        for event in (CallEvent.HANG_UP, CallEvent.ACK_TIMEOUT)
    },
    (CallState.REPLACED, CallEvent.ACD_FINISHED): Transition(
        CallState.ENDED, (_A.BYE_AGENT, _A.BYE_TRANSFEROR, _A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.CLOSE)
    ),
    (CallState.HANDED_OVER, CallEvent.BYE_CALLER): Transition(
        CallState.ENDED, (_A.DROP_THIRD_PARTY, _A.CLOSE)
    ),
    (CallState.HANDED_OVER, CallEvent.THIRD_PARTY_LEFT): Transition(
        CallState.ENDED, (_A.DROP_THIRD_PARTY, _A.BYE_CALLER, _A.CLOSE)
    ),
    (CallState.HANDED_OVER, CallEvent.HANG_UP): Transition(
        CallState.ENDED, (_A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.CLOSE)
    ),
    (CallState.HANDED_OVER, CallEvent.ACK_TIMEOUT): Transition(
        CallState.ENDED, (_A.BYE_CALLER, _A.DROP_THIRD_PARTY, _A.CLOSE)
    ),
}

# RFC 4028 §10: the session timer of the caller's dialog, in every state where that dialog is up. A
# refresh changes nothing else; an expiry ends the call as a hang-up would (BYE to both legs), ending
# or abandoning the contact where the state still holds it.
_DIALOG_UP = (
    CallState.QUEUED,  # a transferred caller waiting again (the timer is armed only once answered)
    CallState.BRIDGED,
    CallState.EXTERNAL,
    CallState.TURNED_AWAY,
    CallState.CONFERENCE,
    CallState.CONSULTING,
    CallState.HANDED_OVER,
    CallState.REPLACED,
)
_EXPIRED_ENDS = (_A.BYE_AGENT, _A.BYE_TRANSFEROR, _A.BYE_CALLER, _A.BYE_EXTERNAL, _A.DROP_THIRD_PARTY)
CALL_TRANSITIONS.update(
    {(state, CallEvent.SESSION_REFRESH_DUE): Transition(state, (_A.REFRESH_SESSION,)) for state in _DIALOG_UP}
)
CALL_TRANSITIONS.update(
    {
        (CallState.QUEUED, CallEvent.SESSION_EXPIRED): Transition(
            CallState.ENDED, (_A.CANCEL_AGENTS, _A.BYE_CALLER, _A.ABANDON_CONTACT, _A.CLOSE)
        ),
        **{
            (state, CallEvent.SESSION_EXPIRED): Transition(
                CallState.ENDED, (*_EXPIRED_ENDS, _A.END_CONTACT, _A.CLOSE)
            )
            for state in (CallState.BRIDGED, CallState.CONFERENCE, CallState.CONSULTING, CallState.REPLACED)
        },
        **{
            (state, CallEvent.SESSION_EXPIRED): Transition(CallState.ENDED, (*_EXPIRED_ENDS, _A.CLOSE))
            for state in (CallState.EXTERNAL, CallState.TURNED_AWAY, CallState.HANDED_OVER)
        },
    }
)


class CallMachine:
    """The state of one call. ``handle`` returns the actions of the move; an illegal one raises."""

    __slots__ = ("state",)

    def __init__(self, state: CallState = CallState.ARRIVING) -> None:
        self.state = state

    @property
    def is_waiting(self) -> bool:
        """Before the final answer to the caller's INVITE (a CANCEL still applies)."""
        return self.state in _WAITING

    @property
    def is_over(self) -> bool:
        return self.state is CallState.ENDED or self.state is CallState.ERROR

    def can(self, event: CallEvent) -> bool:
        return (self.state, event) in CALL_TRANSITIONS

    def handle(self, event: CallEvent) -> tuple[Action, ...]:
        transition = CALL_TRANSITIONS.get((self.state, event))
        if transition is None:
            was = self.state
            self.state = CallState.ERROR
            raise CallStateError(f"{event.value} is not allowed in state {was.value}")
        self.state = transition.next
        return transition.actions


# ================================================================ agent legs (we are the UAC)
class LegState(enum.StrEnum):
    """One INVITE we send to an agent's phone (one branch of a fork)."""

    CALLING = "calling"  # INVITE sent, nothing back yet
    RINGING = "ringing"  # a provisional came back
    CANCELLING = "cancelling"  # CANCEL sent (RFC 3261 §9.1), waiting for the INVITE's final answer
    ANSWERED = "answered"  # 2xx ACKed: the dialog is up
    ENDED = "ended"  # failed, cancelled or hung up
    ERROR = "error"


class LegEvent(enum.StrEnum):
    PROVISIONAL = "provisional"
    ANSWERED = "answered"  # 2xx
    FAILED = "failed"  # a non-2xx final answer or no answer at all (Timer B)
    CANCEL = "cancel"  # we give up on the phone (caller left, offer withdrawn, another phone won)
    BYE_SENT = "bye_sent"
    BYE_RECEIVED = "bye_received"


@dataclass(frozen=True, slots=True)
class LegTransition:
    next: LegState
    # What the adapter does: "cancel" (send CANCEL), "ack_bye" (ACK then BYE a 2xx nobody wants),
    # "bye" (BYE the dialog), "" nothing.
    action: str = ""


LEG_TRANSITIONS: dict[tuple[LegState, LegEvent], LegTransition] = {
    (LegState.CALLING, LegEvent.PROVISIONAL): LegTransition(LegState.RINGING),
    (LegState.RINGING, LegEvent.PROVISIONAL): LegTransition(LegState.RINGING),
    (LegState.CALLING, LegEvent.ANSWERED): LegTransition(LegState.ANSWERED),
    (LegState.RINGING, LegEvent.ANSWERED): LegTransition(LegState.ANSWERED),
    (LegState.CALLING, LegEvent.FAILED): LegTransition(LegState.ENDED),
    (LegState.RINGING, LegEvent.FAILED): LegTransition(LegState.ENDED),
    # RFC 3261 §9.1: CANCEL only a pending INVITE; its final answer (487) still comes.
    (LegState.CALLING, LegEvent.CANCEL): LegTransition(LegState.CANCELLING, "cancel"),
    (LegState.RINGING, LegEvent.CANCEL): LegTransition(LegState.CANCELLING, "cancel"),
    (LegState.CANCELLING, LegEvent.PROVISIONAL): LegTransition(LegState.CANCELLING),
    (LegState.CANCELLING, LegEvent.FAILED): LegTransition(LegState.ENDED),
    (LegState.CANCELLING, LegEvent.CANCEL): LegTransition(LegState.CANCELLING),
    # A 2xx that crossed our CANCEL: the phone answered anyway; ACK it and BYE at once (§15).
    (LegState.CANCELLING, LegEvent.ANSWERED): LegTransition(LegState.ENDED, "ack_bye"),
    (LegState.ANSWERED, LegEvent.CANCEL): LegTransition(LegState.ENDED, "bye"),
    (LegState.ANSWERED, LegEvent.BYE_SENT): LegTransition(LegState.ENDED, "bye"),
    (LegState.ANSWERED, LegEvent.BYE_RECEIVED): LegTransition(LegState.ENDED),
    (LegState.ENDED, LegEvent.CANCEL): LegTransition(LegState.ENDED),
    (LegState.ENDED, LegEvent.BYE_SENT): LegTransition(LegState.ENDED),
    # A late 2xx of a branch that lost the fork (its 487 crossed the phone's answer): ACK + BYE.
    (LegState.ENDED, LegEvent.ANSWERED): LegTransition(LegState.ENDED, "ack_bye"),
}


class LegMachine:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = LegState.CALLING

    @property
    def is_pending(self) -> bool:
        """The INVITE has no final answer yet and we still want it."""
        return self.state is LegState.CALLING or self.state is LegState.RINGING

    def handle(self, event: LegEvent) -> str:
        transition = LEG_TRANSITIONS.get((self.state, event))
        if transition is None:
            was = self.state
            self.state = LegState.ERROR
            raise CallStateError(f"leg: {event.value} is not allowed in state {was.value}")
        self.state = transition.next
        return transition.action


# ================================================================ a phone's call to a colleague's extension
class ExtensionState(enum.StrEnum):
    """A registered phone's INVITE to a colleague's extension (username) through the B2BUA: we are
    the UAS of the calling phone and the UAC of every registered phone of the colleague (a fork)."""

    RINGING = "ringing"  # the colleague's phones are rung (in parallel)
    ANSWERED = "answered"  # one answered: 200 to the calling phone, media relayed
    ENDED = "ended"
    ERROR = "error"


class ExtensionEvent(enum.StrEnum):
    BRANCH_ANSWERED = "branch_answered"  # the first of the colleague's phones answered (2xx)
    ALL_FAILED = "all_failed"  # every branch said no (486, 480, 603, Timer B)
    CANCEL = "cancel"  # the calling phone's CANCEL (RFC 3261 §9.2)
    BYE_CALLER = "bye_caller"  # the calling phone hung up
    BYE_CALLEE = "bye_callee"  # the colleague's phone hung up
    ACK_TIMEOUT = "ack_timeout"  # our 2xx to the calling phone was never ACKed (§13.3.1.4)
    REPLACED = "replaced"  # the attended transfer took the colleague's leg for the caller's call
    HANG_UP = "hang_up"  # shutdown


class ExtensionAction(enum.StrEnum):
    ANSWER_CALLER = "answer_caller"  # 200 with our SDP to the calling phone, relay
    CANCEL_OTHERS = "cancel_others"  # CANCEL the branches that lost (RFC 3261 §16.7 step 10 for forks)
    CANCEL_ALL = "cancel_all"  # CANCEL every ringing branch
    RESPOND_487 = "respond_487"
    RESPOND_FAILURE = "respond_failure"  # the best branch failure (RFC 3261 §16.7 step 6)
    BYE_CALLER = "bye_caller"
    BYE_CALLEE = "bye_callee"
    CLOSE = "close"  # close the media session (not after REPLACED: the caller's call took it)
    FORGET = "forget"  # drop the call's indexes


@dataclass(frozen=True, slots=True)
class ExtensionTransition:
    next: ExtensionState
    actions: tuple[ExtensionAction, ...] = ()


_X = ExtensionAction
_XS = ExtensionState
_XE = ExtensionEvent
EXTENSION_TRANSITIONS: dict[tuple[ExtensionState, ExtensionEvent], ExtensionTransition] = {
    (_XS.RINGING, _XE.BRANCH_ANSWERED): ExtensionTransition(
        _XS.ANSWERED, (_X.CANCEL_OTHERS, _X.ANSWER_CALLER)
    ),
    (_XS.RINGING, _XE.ALL_FAILED): ExtensionTransition(_XS.ENDED, (_X.RESPOND_FAILURE, _X.CLOSE, _X.FORGET)),
    (_XS.RINGING, _XE.CANCEL): ExtensionTransition(
        _XS.ENDED, (_X.CANCEL_ALL, _X.RESPOND_487, _X.CLOSE, _X.FORGET)
    ),
    (_XS.RINGING, _XE.HANG_UP): ExtensionTransition(
        _XS.ENDED, (_X.CANCEL_ALL, _X.RESPOND_FAILURE, _X.CLOSE, _X.FORGET)
    ),
    (_XS.ANSWERED, _XE.BYE_CALLER): ExtensionTransition(_XS.ENDED, (_X.BYE_CALLEE, _X.CLOSE, _X.FORGET)),
    (_XS.ANSWERED, _XE.BYE_CALLEE): ExtensionTransition(_XS.ENDED, (_X.BYE_CALLER, _X.CLOSE, _X.FORGET)),
    **{
        (_XS.ANSWERED, event): ExtensionTransition(
            _XS.ENDED, (_X.BYE_CALLER, _X.BYE_CALLEE, _X.CLOSE, _X.FORGET)
        )
        for event in (_XE.ACK_TIMEOUT, _XE.HANG_UP)
    },
    # The colleague's leg and the media session now belong to the caller's call; the calling phone's
    # dialog is BYEd by that call once the ACD has committed the hand-over (BYE_TRANSFEROR).
    (_XS.ANSWERED, _XE.REPLACED): ExtensionTransition(_XS.ENDED, (_X.FORGET,)),
}


class ExtensionMachine:
    """The state of one extension call; an illegal move raises :class:`CallStateError`."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ExtensionState.RINGING

    def can(self, event: ExtensionEvent) -> bool:
        return (self.state, event) in EXTENSION_TRANSITIONS

    def handle(self, event: ExtensionEvent) -> tuple[ExtensionAction, ...]:
        transition = EXTENSION_TRANSITIONS.get((self.state, event))
        if transition is None:
            was = self.state
            self.state = ExtensionState.ERROR
            raise CallStateError(f"extension call: {event.value} is not allowed in state {was.value}")
        self.state = transition.next
        return transition.actions


# ================================================================ re-INVITEs of the caller's dialog
class ReinviteState(enum.StrEnum):
    IDLE = "idle"
    PENDING = "pending"  # our re-INVITE waits for its final answer
    BACKING_OFF = "backing_off"  # ours got 491: RFC 3261 §14.1 wait, then offer again


class ReinviteEvent(enum.StrEnum):
    SEND = "send"  # we offer (hold / resume)
    ANSWERED = "answered"  # a final answer other than 491 (or none: the session goes on as before)
    GLARE = "glare"  # 491 Request Pending to ours
    BACKOFF_OVER = "backoff_over"  # the §14.1 timer fired
    THEIRS = "theirs"  # the far end's re-INVITE arrives


@dataclass(frozen=True, slots=True)
class ReinviteTransition:
    next: ReinviteState
    # "send": send our re-INVITE; "backoff": start the §14.1 timer; "resync": offer what the hold
    # state wants now; "answer": answer theirs with 200; "reject_491": RFC 3261 §14.2 - a re-INVITE
    # while ours is pending gets 491.
    action: str


REINVITE_TRANSITIONS: dict[tuple[ReinviteState, ReinviteEvent], ReinviteTransition] = {
    (ReinviteState.IDLE, ReinviteEvent.SEND): ReinviteTransition(ReinviteState.PENDING, "send"),
    (ReinviteState.PENDING, ReinviteEvent.ANSWERED): ReinviteTransition(ReinviteState.IDLE, "resync"),
    (ReinviteState.PENDING, ReinviteEvent.GLARE): ReinviteTransition(ReinviteState.BACKING_OFF, "backoff"),
    (ReinviteState.BACKING_OFF, ReinviteEvent.BACKOFF_OVER): ReinviteTransition(ReinviteState.IDLE, "resync"),
    (ReinviteState.IDLE, ReinviteEvent.THEIRS): ReinviteTransition(ReinviteState.IDLE, "answer"),
    (ReinviteState.PENDING, ReinviteEvent.THEIRS): ReinviteTransition(ReinviteState.PENDING, "reject_491"),
    # While we back off the far end may offer: it is answered; our retry follows when the timer fires.
    (ReinviteState.BACKING_OFF, ReinviteEvent.THEIRS): ReinviteTransition(
        ReinviteState.BACKING_OFF, "answer"
    ),
}


class ReinviteMachine:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ReinviteState.IDLE

    def handle(self, event: ReinviteEvent) -> str:
        transition = REINVITE_TRANSITIONS.get((self.state, event))
        if transition is None:
            raise CallStateError(f"re-INVITE: {event.value} is not allowed in state {self.state.value}")
        self.state = transition.next
        return transition.action


# RFC 3261 §14.1: after a 491 the owner of the Call-ID (who sent the dialog's first INVITE) waits
# 2.1-4 s, in units of 10 ms; the other side waits 0-2 s. The B2BUA is the UAS of the caller's
# dialog, so it waits 0-2 s there and 2.1-4 s on dialogs it started.
_OWNER_BACKOFF_S = (2.1, 4.0)
_NON_OWNER_BACKOFF_S = (0.0, 2.0)


def reinvite_backoff_range(*, owns_call_id: bool) -> tuple[float, float]:
    """The §14.1 window a retry after 491 is drawn from (the caller draws, in steps of 10 ms)."""
    return _OWNER_BACKOFF_S if owns_call_id else _NON_OWNER_BACKOFF_S
