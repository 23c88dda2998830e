"""The mapping from engine outputs to row changes and log events, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

from frontoffice.domain import routing as r
from frontoffice.domain.contact_log import RESERVATION, AgentStateRow, RoutedContact, record_outputs

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def contact(contact_id: int, **values: object) -> RoutedContact:
    row = RoutedContact(
        id=contact_id,
        channel="web",
        project_id=None,
        customer_id=None,
        created_at=AT,
        queued_at=None,
        state="new",
        queue_id=1,
        agent_id=None,
        priority=0,
        attributes={},
        route_enqueued_at=None,
        route_seq=None,
        offered_at=None,
        connected_at=None,
        ended_at=None,
        closed_at=None,
        disposition=None,
    )
    for name, value in values.items():
        setattr(row, name, value)
    return row


def status(contact_id: int, state: str, **values: object) -> r.ContactStatus:
    fields: dict[str, object] = {
        "contact_id": str(contact_id),
        "state": state,
        "queue_id": "1",
        "channel": "web",
        "priority": 0,
        "enqueued_at": 100.0,
        "seq": 7,
        "step": 0,
        "is_callback": False,
        "agent_ids": (),
        "target_agent": None,
    }
    fields.update(values)
    return r.ContactStatus(**fields)  # type: ignore[arg-type]


def forgotten(contact_id: str) -> None:
    return None


def test_a_queued_and_offered_contact_logs_each_event_with_the_state_it_had_then() -> None:
    rows = {5: contact(5)}
    log = record_outputs(
        [
            r.ContactQueued("5", "1", 100.0, 7),
            r.OfferContact("5", ("3",), "1", "web", 130.0),
        ],
        AT,
        rows,
        lambda cid: status(int(cid), "offered", agent_ids=("3",)),
    )
    assert [(e["type"], e["state"]) for e in log.events] == [("queued", "queued"), ("offered", "offered")]
    assert log.events[1]["data"] == {"agent_ids": [3], "expires_at": 130.0, "is_callback": False}
    changed = log.contacts[5]
    assert (changed.state, changed.queued_at, changed.offered_at) == ("offered", AT, AT)
    assert (changed.route_enqueued_at, changed.route_seq) == (100.0, 7)


def test_the_rows_given_are_not_changed() -> None:
    rows = {5: contact(5)}
    record_outputs([r.ContactQueued("5", "1", 100.0, 7)], AT, rows, forgotten)
    assert rows[5].state == "new" and rows[5].queued_at is None


def test_a_contact_finished_without_wrap_up_is_done_at_once() -> None:
    rows = {5: contact(5, state="connected", agent_id=3)}
    log = record_outputs([r.ContactFinished("5", "3", "1")], AT, rows, forgotten)
    assert [(e["type"], e["state"]) for e in log.events] == [("wrap_up", "connected"), ("done", "done")]
    assert (log.contacts[5].ended_at, log.contacts[5].closed_at) == (AT, AT)


def test_a_contact_finished_into_wrap_up_stays_open_until_the_wrap_up_ends() -> None:
    rows = {5: contact(5, state="connected", agent_id=3)}
    log = record_outputs(
        [r.ContactFinished("5", "3", "1"), r.WrapUpStarted("3", "5", 160.0)], AT, rows, forgotten
    )
    assert [(e["type"], e["state"]) for e in log.events] == [("wrap_up", "wrap_up")]
    assert log.contacts[5].closed_at is None
    assert log.wrap_up_until == [(3, 160.0)]


def test_the_end_of_a_wrap_up_closes_that_agents_contacts_in_wrap_up_only() -> None:
    rows = {
        6: contact(6, state="wrap_up", agent_id=3),
        5: contact(5, state="wrap_up", agent_id=3),
        8: contact(8, state="wrap_up", agent_id=4),
    }
    log = record_outputs([r.WrapUpEnded("3", early=True)], AT, rows, forgotten)
    assert [(e["interaction_id"], e["type"], e["data"]) for e in log.events] == [
        (5, "done", {"early": True}),
        (6, "done", {"early": True}),
    ]
    assert set(log.contacts) == {5, 6}
    assert log.wrap_up_until == [(3, None)]


def test_a_contact_entering_and_leaving_wrap_up_in_one_batch_is_closed() -> None:
    rows = {5: contact(5, state="connected", agent_id=3)}
    log = record_outputs(
        [r.ContactFinished("5", "3", "1"), r.WrapUpStarted("3", "5", 160.0), r.WrapUpEnded("3", early=True)],
        AT,
        rows,
        forgotten,
    )
    assert [e["type"] for e in log.events] == ["wrap_up", "done"]
    assert log.contacts[5].state == "done"


def test_agent_state_changes_become_agent_rows() -> None:
    log = record_outputs([r.AgentStateChanged("3", "not_ready", "lunch", 90.0, False)], AT, {}, forgotten)
    assert log.agent_states == [AgentStateRow(3, "not_ready", "lunch", 90.0)]
    assert log.events == [] and log.contacts == {}


def test_outputs_about_a_contact_without_a_row_are_skipped() -> None:
    log = record_outputs([r.ContactAbandoned("9", "1", 4.0)], AT, {}, forgotten)
    assert log.events == [] and log.contacts == {}


def test_a_contact_lost_with_its_voice_node_fails_with_the_cause_and_is_not_abandoned() -> None:
    rows = {5: contact(5, state="queued")}
    log = record_outputs([r.ContactAbandoned("5", "1", 4.0, cause="lost_node_failure")], AT, rows, forgotten)
    assert (log.contacts[5].state, log.contacts[5].disposition) == ("failed", "lost_node_failure")
    assert [e["type"] for e in log.events] == ["failed"]
    assert log.events[0]["data"] == {"waited_s": 4.0, "cause": "lost_node_failure"}


def test_a_fallback_fails_the_contact_with_the_action_as_its_disposition() -> None:
    rows = {5: contact(5, state="queued")}
    log = record_outputs([r.FallbackAction("5", "1", "ticket", "closed")], AT, rows, forgotten)
    assert (log.contacts[5].state, log.contacts[5].disposition) == ("failed", "fallback:ticket")
    assert log.events[0]["data"] == {"action": "ticket", "reason": "closed", "queue_id": 1}


def test_a_refused_contact_is_failed_and_its_event_names_the_queue_that_refused_it() -> None:
    rows = {5: contact(5, state="queued")}
    log = record_outputs([r.ContactRefused("5", "2", "max_length")], AT, rows, forgotten)
    assert log.contacts[5].state == "failed"
    assert log.events[0]["data"] == {"reason": "max_length", "queue_id": 2}


def test_a_reservation_the_engine_holds_is_stored_and_dropped_when_it_ends() -> None:
    rows = {5: contact(5, state="queued")}
    reserved = record_outputs(
        [r.ContactTransferred("5", "1", "1", "4", "3")],
        AT,
        rows,
        lambda cid: status(5, "waiting", target_agent="4", target_until=float("inf")),
    )
    assert reserved.contacts[5].attributes[RESERVATION] == {"agent_id": 4, "until": None}
    rows = {5: reserved.contacts[5]}
    released = record_outputs(
        [r.StickyExpired("5", "4")], AT, rows, lambda cid: status(5, "waiting", target_agent=None)
    )
    assert RESERVATION not in released.contacts[5].attributes


def test_contacts_to_sync_take_the_engines_view_even_without_outputs() -> None:
    rows = {5: contact(5, state="offered", queue_id=1, route_seq=1)}
    log = record_outputs([], AT, rows, lambda cid: status(5, "waiting", queue_id="2", seq=9), also_sync=[5])
    assert (log.contacts[5].state, log.contacts[5].queue_id, log.contacts[5].route_seq) == ("queued", 2, 9)
    assert log.events == []
