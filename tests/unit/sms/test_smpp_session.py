"""The sans-IO SMPP session: bind, window, enquire_link, response timeout, receipts."""

from __future__ import annotations

import pytest

from frontoffice.channels.sms.smpp import (
    Bound,
    CommandId,
    MessageReceived,
    Pdu,
    ReceiptReceived,
    SessionClosed,
    SessionState,
    ShortMessage,
    SmppSession,
    SubmitAnswered,
    WindowFull,
    decode_pdu,
    encode_pdu,
)


def _bound(window: int = 2) -> SmppSession:
    s = SmppSession("esme", "pw", window=window, enquire_link_s=60, response_timeout_s=30)
    s.bind(0.0)
    bind = decode_pdu(s.data_to_send())
    assert bind.command_id == CommandId.BIND_TRANSCEIVER and bind.fields["password"] == "pw"
    events = s.receive_data(
        encode_pdu(Pdu(CommandId.BIND_TRANSCEIVER_RESP, bind.sequence, 0, {"system_id": "SMSC"})), 0.0
    )
    assert events == [Bound("SMSC")]
    return s


def test_the_window_limits_outstanding_submits_and_a_response_frees_a_slot() -> None:
    s = _bound(window=2)
    a = s.submit(ShortMessage(destination_addr="1", short_message=b"a"), 1.0)
    s.submit(ShortMessage(destination_addr="1", short_message=b"b"), 1.0)
    with pytest.raises(WindowFull):
        s.submit(ShortMessage(destination_addr="1", short_message=b"c"), 1.0)
    s.data_to_send()
    events = s.receive_data(encode_pdu(Pdu(CommandId.SUBMIT_SM_RESP, a, 0, {"message_id": "X1"})), 2.0)
    assert events == [SubmitAnswered(a, 0, "X1")] and s.can_submit


def test_a_quiet_link_sends_enquire_link_and_an_unanswered_request_closes_the_session() -> None:
    s = _bound()
    assert s.next_timer() == 60.0
    assert s.handle_timer(60.0) == []
    assert decode_pdu(s.data_to_send()).command_id == CommandId.ENQUIRE_LINK
    assert s.next_timer() == 90.0
    seq = s.submit(ShortMessage(destination_addr="1", short_message=b"a"), 61.0)
    (closed,) = s.handle_timer(90.0)
    assert isinstance(closed, SessionClosed) and closed.unanswered == (seq,)
    assert s.state is SessionState.ERROR


def test_deliver_sm_is_a_message_or_a_receipt_and_an_enquire_link_is_answered() -> None:
    s = _bound()
    mo = ShortMessage(source_addr="79161234567", short_message=b"hi")
    dr = ShortMessage(
        esm_class=0x04,
        short_message=b"id:5A sub:001 dlvrd:001 submit date:x done date:x stat:UNDELIV err:012",
    )
    data = encode_pdu(Pdu(CommandId.DELIVER_SM, 7, message=mo)) + encode_pdu(
        Pdu(CommandId.DELIVER_SM, 8, message=dr)
    )
    data += encode_pdu(Pdu(CommandId.ENQUIRE_LINK, 9))
    e1, e2 = s.receive_data(data[:10], 5.0) + s.receive_data(data[10:], 5.0)
    assert isinstance(e1, MessageReceived) and e1.message.short_message == b"hi"
    assert isinstance(e2, ReceiptReceived) and (e2.receipt.message_id, e2.receipt.outcome) == ("5A", "failed")
    assert decode_pdu(s.data_to_send()).command_id == CommandId.ENQUIRE_LINK_RESP
    s.acknowledge(7)
    assert decode_pdu(s.data_to_send()).command_id == CommandId.DELIVER_SM_RESP


def test_a_refused_bind_and_a_huge_length_are_errors() -> None:
    s = SmppSession("esme", "bad")
    s.bind(0.0)
    seq = decode_pdu(s.data_to_send()).sequence
    (closed,) = s.receive_data(encode_pdu(Pdu(CommandId.BIND_TRANSCEIVER_RESP, seq, 0x0E)), 0.0)
    assert isinstance(closed, SessionClosed) and "0x0e" in closed.reason
    t = _bound()
    (broken,) = t.receive_data(b"\xff\xff\xff\xff" + bytes(12), 1.0)
    assert isinstance(broken, SessionClosed) and t.state is SessionState.ERROR
