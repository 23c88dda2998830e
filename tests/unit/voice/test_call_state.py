"""The call core (call_state.py): every row of its transition tables, and the races it settles."""

from __future__ import annotations

import pytest

from frontoffice.channels.voice.call_state import (
    CALL_TRANSITIONS,
    EXTENSION_TRANSITIONS,
    LEG_TRANSITIONS,
    REINVITE_TRANSITIONS,
    Action,
    CallEvent,
    CallMachine,
    CallState,
    CallStateError,
    ExtensionAction,
    ExtensionEvent,
    ExtensionMachine,
    ExtensionState,
    LegEvent,
    LegMachine,
    LegState,
    ReinviteEvent,
    ReinviteMachine,
    ReinviteState,
    reinvite_backoff_range,
)


def _call_in(state: CallState) -> CallMachine:
    return CallMachine(state)


def _leg_through(state: LegState) -> LegMachine:
    """A leg brought to ``state`` by legal moves only."""
    leg = LegMachine()
    path = {
        LegState.CALLING: [],
        LegState.RINGING: [LegEvent.PROVISIONAL],
        LegState.CANCELLING: [LegEvent.CANCEL],
        LegState.ANSWERED: [LegEvent.ANSWERED],
        LegState.ENDED: [LegEvent.FAILED],
    }[state]
    for event in path:
        leg.handle(event)
    assert leg.state is state
    return leg


def _reinvite_through(state: ReinviteState) -> ReinviteMachine:
    machine = ReinviteMachine()
    path = {
        ReinviteState.IDLE: [],
        ReinviteState.PENDING: [ReinviteEvent.SEND],
        ReinviteState.BACKING_OFF: [ReinviteEvent.SEND, ReinviteEvent.GLARE],
    }[state]
    for event in path:
        machine.handle(event)
    return machine


@pytest.mark.parametrize(("state", "event"), list(CALL_TRANSITIONS), ids=lambda v: str(v))
def test_every_call_transition_moves_to_its_state_with_its_actions(
    state: CallState, event: CallEvent
) -> None:
    call = _call_in(state)
    actions = call.handle(event)
    transition = CALL_TRANSITIONS[(state, event)]
    assert call.state is transition.next
    assert actions == transition.actions


@pytest.mark.parametrize(("state", "event"), list(LEG_TRANSITIONS), ids=lambda v: str(v))
def test_every_leg_transition_moves_to_its_state_with_its_action(state: LegState, event: LegEvent) -> None:
    leg = _leg_through(state)
    action = leg.handle(event)
    assert leg.state is LEG_TRANSITIONS[(state, event)].next
    assert action == LEG_TRANSITIONS[(state, event)].action


@pytest.mark.parametrize(("state", "event"), list(REINVITE_TRANSITIONS), ids=lambda v: str(v))
def test_every_reinvite_transition_moves_to_its_state_with_its_action(
    state: ReinviteState, event: ReinviteEvent
) -> None:
    machine = _reinvite_through(state)
    action = machine.handle(event)
    assert machine.state is REINVITE_TRANSITIONS[(state, event)].next
    assert action == REINVITE_TRANSITIONS[(state, event)].action


def _extension_in(state: ExtensionState) -> ExtensionMachine:
    machine = ExtensionMachine()
    path = {
        ExtensionState.RINGING: [],
        ExtensionState.ANSWERED: [ExtensionEvent.BRANCH_ANSWERED],
    }[state]
    for event in path:
        machine.handle(event)
    return machine


@pytest.mark.parametrize(("state", "event"), list(EXTENSION_TRANSITIONS), ids=lambda v: str(v))
def test_every_extension_call_transition_moves_to_its_state_with_its_actions(
    state: ExtensionState, event: ExtensionEvent
) -> None:
    machine = _extension_in(state)
    actions = machine.handle(event)
    assert machine.state is EXTENSION_TRANSITIONS[(state, event)].next
    assert actions == EXTENSION_TRANSITIONS[(state, event)].actions


def test_an_extension_call_answered_by_one_phone_cancels_the_colleagues_other_phones() -> None:
    machine = ExtensionMachine()
    assert machine.handle(ExtensionEvent.BRANCH_ANSWERED) == (
        ExtensionAction.CANCEL_OTHERS,
        ExtensionAction.ANSWER_CALLER,
    )
    with pytest.raises(CallStateError):
        machine.handle(ExtensionEvent.BRANCH_ANSWERED)  # a second winner is an illegal move
    assert machine.state is ExtensionState.ERROR


def test_a_replaced_extension_call_keeps_its_media_for_the_callers_call() -> None:
    machine = _extension_in(ExtensionState.ANSWERED)
    actions = machine.handle(ExtensionEvent.REPLACED)
    assert ExtensionAction.CLOSE not in actions and ExtensionAction.BYE_CALLEE not in actions
    assert not machine.can(ExtensionEvent.BYE_CALLER)


# ---------------------------------------------------------------- attended transfer from the phone
def test_the_agent_phone_holding_plays_music_to_the_caller_and_its_resume_relays_again() -> None:
    call = CallMachine(CallState.BRIDGED)
    assert call.handle(CallEvent.AGENT_HELD) == (Action.PLAY_HOLD_MUSIC,)
    assert call.handle(CallEvent.AGENT_RESUMED) == (Action.BRIDGE,)
    assert call.state is CallState.BRIDGED


def test_the_phones_attended_transfer_mixes_caller_and_colleague_then_notifies_and_releases_the_phone() -> (
    None
):
    call = CallMachine(CallState.BRIDGED)
    assert call.handle(CallEvent.PHONE_TRANSFERRED) == (
        Action.MIX_REPLACEMENT,
        Action.RECORD_THIRD_PARTY,
        Action.HAND_OVER_CONTACT,
    )
    assert call.state is CallState.REPLACED
    # Only once the ACD committed the hand-over: NOTIFY 200, then BYE to both of the phone's dialogs.
    assert call.handle(CallEvent.HANDOVER_DONE) == (
        Action.NOTIFY_TRANSFEROR,
        Action.BYE_AGENT,
        Action.BYE_TRANSFEROR,
    )
    actions = call.handle(CallEvent.BYE_CALLER)
    assert call.state is CallState.ENDED and Action.END_CONTACT in actions  # the colleague's wrap-up


@pytest.mark.parametrize("state", [s for s in CallState if s is not CallState.BRIDGED])
def test_only_a_bridged_call_can_be_transferred_by_the_phone(state: CallState) -> None:
    assert not CallMachine(state).can(CallEvent.PHONE_TRANSFERRED)


def test_an_illegal_call_move_raises_and_leaves_the_call_in_error() -> None:
    call = CallMachine()
    with pytest.raises(CallStateError):
        call.handle(CallEvent.AGENT_CONNECTED)  # nobody can answer a call that is not queued
    assert call.state is CallState.ERROR and call.is_over
    with pytest.raises(CallStateError):
        call.handle(CallEvent.CANCEL)


def test_an_illegal_leg_move_raises() -> None:
    leg = _leg_through(LegState.ENDED)
    with pytest.raises(CallStateError):
        leg.handle(LegEvent.PROVISIONAL)


def test_every_state_but_the_final_ones_has_a_way_out() -> None:
    final = {CallState.ENDED, CallState.ERROR}
    for state in CallState:
        if state not in final:
            assert any(s is state and t.next in final for (s, _), t in CALL_TRANSITIONS.items()), state


def test_a_cancel_right_after_the_invite_ends_the_call_with_487_before_anything_is_queued() -> None:
    call = CallMachine()  # the INVITE just arrived: media not open, contact not recorded
    actions = call.handle(CallEvent.CANCEL)
    assert call.state is CallState.ENDED
    assert Action.RESPOND_487 in actions and Action.CLOSE in actions
    assert not call.can(CallEvent.QUEUED)  # the adapter finds the call over and queues nothing


def test_a_cancel_while_queued_answers_487_cancels_ringing_phones_and_abandons_the_contact() -> None:
    call = CallMachine()
    call.handle(CallEvent.QUEUED)
    actions = call.handle(CallEvent.CANCEL)
    assert actions.index(Action.CANCEL_AGENTS) < actions.index(Action.RESPOND_487)
    assert Action.ABANDON_CONTACT in actions and Action.END_CONTACT not in actions


def test_no_cancel_is_taken_once_the_caller_is_answered() -> None:
    call = CallMachine()
    call.handle(CallEvent.QUEUED)
    call.handle(CallEvent.AGENT_CONNECTED)
    assert not call.is_waiting and not call.can(CallEvent.CANCEL)


def test_a_missing_ack_sends_bye_to_the_caller_and_the_agent() -> None:
    call = CallMachine(CallState.BRIDGED)
    actions = call.handle(CallEvent.ACK_TIMEOUT)
    assert Action.BYE_CALLER in actions and Action.BYE_AGENT in actions and Action.END_CONTACT in actions


def test_a_queued_caller_turned_away_is_answered_and_hears_the_fallback_flow() -> None:
    call = CallMachine()
    call.handle(CallEvent.QUEUED)
    actions = call.handle(CallEvent.TURNED_AWAY)
    assert call.state is CallState.TURNED_AWAY and not call.is_waiting
    assert actions == (Action.CANCEL_AGENTS, Action.ANSWER_CALLER, Action.RUN_FALLBACK)
    assert not call.can(CallEvent.CANCEL)  # answered: a CANCEL no longer applies


def test_a_caller_hanging_up_during_voicemail_closes_the_call_and_leaves_the_contact_alone() -> None:
    call = CallMachine(CallState.TURNED_AWAY)
    actions = call.handle(CallEvent.BYE_CALLER)
    assert call.state is CallState.ENDED and actions == (Action.CLOSE,)  # the ACD finished the contact


def test_the_end_of_the_fallback_flow_hangs_up_on_the_caller() -> None:
    call = CallMachine(CallState.TURNED_AWAY)
    actions = call.handle(CallEvent.HANG_UP)
    assert call.state is CallState.ENDED and actions == (Action.BYE_CALLER, Action.CLOSE)
    assert Action.ABANDON_CONTACT not in actions and Action.END_CONTACT not in actions


def test_a_turned_away_caller_that_never_acks_the_200_gets_bye() -> None:
    call = CallMachine(CallState.TURNED_AWAY)
    assert call.handle(CallEvent.ACK_TIMEOUT) == (Action.BYE_CALLER, Action.CLOSE)


@pytest.mark.parametrize("state", [CallState.ARRIVING, CallState.MENU, CallState.BRIDGED, CallState.EXTERNAL])
def test_only_a_queued_caller_can_be_turned_away(state: CallState) -> None:
    assert not CallMachine(state).can(CallEvent.TURNED_AWAY)


def test_the_first_phone_to_answer_wins_and_a_late_answer_of_another_is_acked_and_hung_up() -> None:
    winner, loser = LegMachine(), LegMachine()
    winner.handle(LegEvent.PROVISIONAL)
    loser.handle(LegEvent.PROVISIONAL)
    assert winner.handle(LegEvent.ANSWERED) == ""
    assert loser.handle(LegEvent.CANCEL) == "cancel"
    assert loser.handle(LegEvent.ANSWERED) == "ack_bye"  # its 200 crossed our CANCEL
    assert loser.state is LegState.ENDED


def test_a_reinvite_while_ours_is_pending_gets_491_and_ours_is_offered_again_after_the_back_off() -> None:
    machine = ReinviteMachine()
    assert machine.handle(ReinviteEvent.SEND) == "send"
    assert machine.handle(ReinviteEvent.THEIRS) == "reject_491"
    assert machine.handle(ReinviteEvent.GLARE) == "backoff"
    assert machine.handle(ReinviteEvent.THEIRS) == "answer"
    assert machine.handle(ReinviteEvent.BACKOFF_OVER) == "resync"
    assert machine.state is ReinviteState.IDLE


def test_a_second_offer_of_our_own_waits_while_one_is_pending() -> None:
    machine = ReinviteMachine()
    machine.handle(ReinviteEvent.SEND)
    with pytest.raises(CallStateError):
        machine.handle(ReinviteEvent.SEND)  # RFC 3261 §14.1: one re-INVITE at a time


def test_the_back_off_window_depends_on_who_owns_the_call_id() -> None:
    assert reinvite_backoff_range(owns_call_id=True) == (2.1, 4.0)
    assert reinvite_backoff_range(owns_call_id=False) == (0.0, 2.0)


# ---------------------------------------------------------------- three-way conference
def test_a_third_party_answering_puts_the_bridged_call_in_the_mixer() -> None:
    call = CallMachine(CallState.BRIDGED)
    # The third party's audio joins the call's recording (the agent side of it).
    assert call.handle(CallEvent.CONFERENCE_JOINED) == (Action.MIX, Action.RECORD_THIRD_PARTY)
    assert call.state is CallState.CONFERENCE


def test_the_third_party_leaving_the_conference_returns_caller_and_agent_to_a_plain_bridge() -> None:
    call = CallMachine(CallState.CONFERENCE)
    actions = call.handle(CallEvent.THIRD_PARTY_LEFT)
    assert call.state is CallState.BRIDGED
    assert actions.index(Action.DROP_THIRD_PARTY) < actions.index(Action.BRIDGE)


def test_the_caller_leaving_the_conference_ends_the_call_for_everyone() -> None:
    call = CallMachine(CallState.CONFERENCE)
    actions = call.handle(CallEvent.BYE_CALLER)
    assert call.state is CallState.ENDED
    assert {Action.BYE_AGENT, Action.DROP_THIRD_PARTY, Action.END_CONTACT, Action.CLOSE} <= set(actions)
    assert Action.BYE_CALLER not in actions


def test_the_agent_leaving_a_conference_hands_the_contact_over_and_the_others_talk_on() -> None:
    call = CallMachine(CallState.CONFERENCE)
    actions = call.handle(CallEvent.BYE_AGENT)
    assert call.state is CallState.REPLACED  # the two-party mix is their bridge
    assert actions == (Action.AGENT_LEAVES_MIX, Action.HAND_OVER_CONTACT)
    # An external third party cannot take the contact: it stays with the agent (wrap-up).
    assert Action.END_CONTACT in call.handle(CallEvent.CONTACT_STAYED)
    assert call.state is CallState.HANDED_OVER


@pytest.mark.parametrize("event", [CallEvent.HANG_UP, CallEvent.ACK_TIMEOUT])
def test_hanging_up_a_conference_ends_all_three_legs_and_the_contact(event: CallEvent) -> None:
    call = CallMachine(CallState.CONFERENCE)
    actions = call.handle(event)
    assert call.state is CallState.ENDED
    assert {Action.BYE_AGENT, Action.BYE_CALLER, Action.DROP_THIRD_PARTY, Action.END_CONTACT} <= set(actions)


def test_the_acd_ending_a_conference_hangs_up_all_three_without_ending_the_contact_again() -> None:
    call = CallMachine(CallState.CONFERENCE)
    actions = call.handle(CallEvent.ACD_FINISHED)
    assert {Action.BYE_AGENT, Action.BYE_CALLER, Action.DROP_THIRD_PARTY, Action.CLOSE} <= set(actions)
    assert Action.END_CONTACT not in actions


def test_after_the_agent_left_the_caller_hanging_up_drops_the_third_party() -> None:
    call = CallMachine(CallState.HANDED_OVER)
    assert call.handle(CallEvent.BYE_CALLER) == (Action.DROP_THIRD_PARTY, Action.CLOSE)


def test_after_the_agent_left_the_third_party_hanging_up_sends_bye_to_the_caller() -> None:
    call = CallMachine(CallState.HANDED_OVER)
    actions = call.handle(CallEvent.THIRD_PARTY_LEFT)
    assert call.state is CallState.ENDED and Action.BYE_CALLER in actions
    assert Action.END_CONTACT not in actions  # ended when the agent left


@pytest.mark.parametrize("event", [CallEvent.HANG_UP, CallEvent.ACK_TIMEOUT])
def test_after_the_agent_left_a_hang_up_or_missing_ack_ends_both_remaining_legs(event: CallEvent) -> None:
    call = CallMachine(CallState.HANDED_OVER)
    actions = call.handle(event)
    assert call.state is CallState.ENDED
    assert {Action.BYE_CALLER, Action.DROP_THIRD_PARTY, Action.CLOSE} <= set(actions)


def test_only_a_bridged_call_can_become_a_conference() -> None:
    for state in CallState:
        if state is not CallState.BRIDGED:
            assert not CallMachine(state).can(CallEvent.CONFERENCE_JOINED), state


# ---------------------------------------------------------------- attended (consultative) transfer
def test_the_consulted_party_answering_puts_agent_and_colleague_in_the_mix_and_the_caller_hears_music() -> (
    None
):
    # Issue 13: the held caller heard silence during the desk's consultation.
    call = CallMachine(CallState.BRIDGED)
    assert call.handle(CallEvent.CONSULT_ANSWERED) == (
        Action.MIX_CONSULTATION,
        Action.RECORD_THIRD_PARTY,
        Action.PLAY_HOLD_MUSIC,
    )
    assert call.state is CallState.CONSULTING


def test_completing_the_transfer_releases_the_agent_and_hands_the_contact_over_as_the_phone_does() -> None:
    call = CallMachine(CallState.CONSULTING)
    actions = call.handle(CallEvent.TRANSFER_COMPLETED)
    assert call.state is CallState.REPLACED
    assert actions == (
        Action.BYE_AGENT,
        Action.AGENT_LEAVES_MIX,
        Action.CALLER_JOINS_MIX,
        Action.RESUME_CALLER,
        Action.HAND_OVER_CONTACT,  # the one hand-over, also the phone's (PHONE_TRANSFERRED)
    )
    assert call.handle(CallEvent.HANDOVER_DONE) == (
        Action.NOTIFY_TRANSFEROR,
        Action.BYE_AGENT,
        Action.BYE_TRANSFEROR,
    )
    assert Action.END_CONTACT in call.handle(CallEvent.THIRD_PARTY_LEFT)  # the colleague's wrap-up


def test_the_agent_hanging_up_during_the_consultation_completes_the_transfer() -> None:
    call = CallMachine(CallState.CONSULTING)
    actions = call.handle(CallEvent.BYE_AGENT)
    assert call.state is CallState.REPLACED
    assert Action.CALLER_JOINS_MIX in actions and Action.BYE_AGENT not in actions
    assert Action.HAND_OVER_CONTACT in actions


def test_a_contact_the_colleague_cannot_take_stays_with_the_agent_and_the_call_goes_on() -> None:
    call = CallMachine(CallState.REPLACED)
    actions = call.handle(CallEvent.CONTACT_STAYED)
    assert call.state is CallState.HANDED_OVER and Action.END_CONTACT in actions
    assert Action.END_CONTACT not in call.handle(CallEvent.BYE_CALLER)  # ended once, above


def test_the_consultation_ending_returns_the_agent_to_the_caller() -> None:
    call = CallMachine(CallState.CONSULTING)
    actions = call.handle(CallEvent.CONSULT_ENDED)
    assert call.state is CallState.BRIDGED
    assert actions == (Action.DROP_THIRD_PARTY, Action.BRIDGE, Action.RESUME_CALLER)


def test_the_caller_leaving_during_the_consultation_ends_the_call() -> None:
    call = CallMachine(CallState.CONSULTING)
    actions = call.handle(CallEvent.BYE_CALLER)
    assert call.state is CallState.ENDED
    assert {Action.BYE_AGENT, Action.DROP_THIRD_PARTY, Action.END_CONTACT, Action.CLOSE} <= set(actions)


@pytest.mark.parametrize("event", [CallEvent.HANG_UP, CallEvent.ACK_TIMEOUT, CallEvent.ACD_FINISHED])
def test_hanging_up_during_the_consultation_ends_every_leg(event: CallEvent) -> None:
    call = CallMachine(CallState.CONSULTING)
    actions = call.handle(event)
    assert call.state is CallState.ENDED
    assert {Action.BYE_AGENT, Action.BYE_CALLER, Action.DROP_THIRD_PARTY, Action.CLOSE} <= set(actions)
    assert (Action.END_CONTACT in actions) is (event is not CallEvent.ACD_FINISHED)


# ---------------------------------------------------------------- session timers (RFC 4028 §10)
_DIALOG_UP = [
    CallState.QUEUED,
    CallState.BRIDGED,
    CallState.EXTERNAL,
    CallState.TURNED_AWAY,
    CallState.CONFERENCE,
    CallState.CONSULTING,
    CallState.HANDED_OVER,
    CallState.REPLACED,
]


@pytest.mark.parametrize("state", _DIALOG_UP)
def test_a_session_refresh_changes_nothing_but_sends_the_refresh(state: CallState) -> None:
    call = CallMachine(state)
    assert call.handle(CallEvent.SESSION_REFRESH_DUE) == (Action.REFRESH_SESSION,)
    assert call.state is state


@pytest.mark.parametrize("state", _DIALOG_UP)
def test_an_expired_session_sends_bye_on_both_legs_and_closes_the_call(state: CallState) -> None:
    call = CallMachine(state)
    actions = call.handle(CallEvent.SESSION_EXPIRED)
    assert call.state is CallState.ENDED
    assert {Action.BYE_CALLER, Action.CLOSE} <= set(actions)
    if state is not CallState.QUEUED:
        assert {Action.BYE_AGENT, Action.DROP_THIRD_PARTY} <= set(actions)
    # The contact ends where the call still holds it (wrap-up), and only there.
    holds_contact = state in (
        CallState.BRIDGED,
        CallState.CONFERENCE,
        CallState.CONSULTING,
        CallState.REPLACED,
    )
    assert (Action.END_CONTACT in actions) is holds_contact


@pytest.mark.parametrize("state", [CallState.ARRIVING, CallState.MENU, CallState.ENDED])
def test_no_session_timer_event_is_taken_before_the_dialog_or_after_the_end(state: CallState) -> None:
    call = CallMachine(state)
    with pytest.raises(CallStateError):
        call.handle(CallEvent.SESSION_EXPIRED)
    assert call.state is CallState.ERROR
