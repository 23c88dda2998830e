"""Figures that add up: how the log the ACD writes is read (per-agent offers, moves, turned away)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from frontoffice.domain.metrics import (
    GroupBy,
    InteractionEventRecord,
    MetricsAccumulator,
    compute_report,
    local_day_start,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
HOUR = T0 + timedelta(hours=1)


def ev(
    interaction: int,
    second: float,
    kind: str,
    queue: int | None = 1,
    agent: int | None = None,
    **data: object,
) -> InteractionEventRecord:
    return InteractionEventRecord(
        interaction, T0 + timedelta(seconds=second), kind, queue, agent, 100, "chat", data
    )


def agent_figures(events: list[InteractionEventRecord]) -> dict[object, tuple[int, ...]]:
    report = compute_report(events, start=T0, end=HOUR, interval_s=None, group_by="agent")
    return {
        row.key: (
            row.figures.offers,
            row.figures.offers_rejected,
            row.figures.offers_timed_out,
            row.figures.answered,
            row.figures.abandoned,
        )
        for row in report.rows
    }


def test_offers_stored_with_their_agents_in_data_count_for_each_agent() -> None:
    # What the ACD stores: the offered event's agent column is empty, its data names the agents.
    events = [
        ev(1, 0, "queued"),
        ev(1, 1, "offered", agent_ids=[7]),
        ev(1, 5, "offer_rejected", rejected_by=7),
        ev(1, 5, "queued"),
        ev(1, 6, "offered", agent_ids=[8]),
        ev(1, 26, "offer_timed_out", agent_ids=[8]),
        ev(1, 26, "queued"),
        ev(1, 40, "offered", agent_ids=[9]),
        ev(1, 45, "connected", agent=9),
    ]
    assert agent_figures(events) == {7: (1, 1, 0, 0, 0), 8: (1, 0, 1, 0, 0), 9: (1, 0, 0, 1, 0)}


def test_a_ring_all_offer_counts_once_for_every_agent_it_rang() -> None:
    events = [
        ev(1, 0, "queued"),
        ev(1, 1, "offered", agent_ids=[7, 8, 9]),
        ev(1, 3, "offer_rejected", rejected_by=9),
        ev(1, 4, "connected", agent=8),
        ev(1, 4, "offer_withdrawn", agent_ids=[7], reason="answered_elsewhere"),
        ev(2, 10, "queued"),
        ev(2, 11, "offered", agent_ids=[7, 9]),
        ev(2, 31, "offer_timed_out", agent_ids=[7, 9]),
        ev(2, 31, "queued"),
    ]
    assert agent_figures(events) == {7: (2, 0, 1, 0, 0), 8: (1, 0, 0, 1, 0), 9: (2, 1, 1, 0, 0)}


def test_an_abandon_while_ringing_several_agents_counts_against_each_of_them() -> None:
    events = [
        ev(1, 0, "queued"),
        ev(1, 1, "offered", agent_ids=[7, 8]),
        ev(1, 2, "offer_rejected", rejected_by=8),
        ev(1, 9, "abandoned"),
    ]
    assert agent_figures(events) == {7: (1, 0, 0, 0, 1), 8: (1, 1, 0, 0, 0)}


def test_per_agent_figures_of_the_accumulator_equal_the_report() -> None:
    events = [
        ev(1, 0, "queued"),
        ev(1, 1, "offered", agent_ids=[7, 8]),
        ev(1, 2, "offer_rejected", rejected_by=8),
        ev(1, 3, "connected", agent=7),
    ]
    live = MetricsAccumulator(start=T0, end=HOUR, interval_s=None, group_by="agent")
    live.add_many(events)
    batch = compute_report(events, start=T0, end=HOUR, interval_s=None, group_by="agent")
    assert live.report(HOUR).rows == batch.rows


def queue_figures(
    events: list[InteractionEventRecord], group_by: GroupBy = "queue"
) -> dict[object, tuple[int, ...]]:
    report = compute_report(events, start=T0, end=HOUR, interval_s=None, group_by=group_by)
    return {
        row.key: (row.figures.offered, row.figures.answered, row.figures.transferred, row.figures.handled)
        for row in report.rows
    }


# What the ACD logs when a supervisor moves a waiting contact from queue 1 to queue 2 and Olga answers.
MOVED = [
    ev(1, 0, "queued", 1),
    ev(1, 30, "transferred", 1, from_queue_id=1, to_queue_id=2, to_agent_id=None),
    ev(1, 30, "queued", 2),
    ev(1, 31, "offered", 2, agent_ids=[7]),
    ev(1, 40, "connected", 2, agent=7),
    ev(1, 100, "wrap_up", 2, agent=7),
    ev(1, 100, "done", 2, agent=7),
]


def test_a_moved_contact_counts_in_both_queues_and_as_answered_where_it_was_answered() -> None:
    assert queue_figures(MOVED) == {1: (1, 0, 1, 0), 2: (1, 1, 0, 1)}


def test_a_moved_contact_counts_once_overall_with_its_wait_from_the_first_queue() -> None:
    # Offered and answered once; the move itself is still shown (as an overflow is).
    assert queue_figures(MOVED, "overall") == {None: (1, 1, 1, 1)}
    report = compute_report(MOVED, start=T0, end=HOUR, interval_s=None, group_by="overall")
    assert report.rows[0].figures.wait_answered_s == 40


def test_a_contact_moved_to_an_agent_is_answered_in_its_queue() -> None:
    events = [
        ev(1, 0, "queued", 1),
        ev(1, 5, "offered", 1, agent_ids=[8]),
        ev(1, 10, "offer_withdrawn", 1, agent_ids=[8], reason="transferred"),
        ev(1, 10, "transferred", 1, from_queue_id=1, to_queue_id=1, to_agent_id=7),
        ev(1, 11, "offered", 1, agent_ids=[7]),
        ev(1, 15, "connected", 1, agent=7),
        ev(1, 60, "wrap_up", 1, agent=7),
        ev(1, 60, "done", 1, agent=7),
    ]
    assert queue_figures(events) == {1: (1, 1, 0, 1)}
    assert queue_figures(events, "overall") == {None: (1, 1, 0, 1)}
    assert agent_figures(events)[7] == (1, 0, 0, 1, 0)


def turned_away(
    events: list[InteractionEventRecord], group_by: GroupBy = "queue"
) -> dict[object, tuple[int, ...]]:
    report = compute_report(events, start=T0, end=HOUR, interval_s=None, group_by=group_by)
    return {row.key: (row.figures.offered, row.figures.turned_away) for row in report.rows}


def test_a_contact_refused_on_arrival_is_turned_away_not_offered() -> None:
    events = [ev(1, 0, "created", 1), ev(1, 0, "refused", 1, reason="closed")]
    assert turned_away(events) == {1: (0, 1)}
    assert turned_away(events, "overall") == {None: (0, 1)}
    assert turned_away(events, "channel") == {"chat": (0, 1)}


def test_a_contact_handed_to_the_fallback_on_arrival_is_turned_away() -> None:
    events = [ev(1, 0, "created", 1), ev(1, 0, "fallback", 1, action="ticket", reason="no_agents")]
    assert turned_away(events) == {1: (0, 1)}


def test_a_refusal_after_an_overflow_counts_in_the_queue_that_refused_and_once_overall() -> None:
    events = [
        ev(1, 0, "queued", 1),
        ev(1, 60, "overflowed", 1, to_queue_id=2, reason="max_wait"),
        ev(1, 60, "refused", 1, queue_id=2, reason="max_length"),
    ]
    assert turned_away(events) == {1: (1, 0), 2: (0, 1)}
    assert turned_away(events, "overall") == {None: (1, 1)}


def test_a_waiting_contact_turned_away_at_its_maximum_wait_stops_waiting() -> None:
    events = [ev(1, 0, "queued", 1), ev(1, 60, "fallback", 1, action="voicemail", reason="max_wait")]
    assert turned_away(events) == {1: (1, 1)}
    live = MetricsAccumulator(start=T0, interval_s=None)
    live.add_many(events)
    figures = live.live_queue_figures(T0 + timedelta(seconds=61))[1]
    assert (figures.waiting, figures.offered, figures.turned_away) == (0, 1, 1)


def test_today_begins_at_midnight_in_the_sites_time_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    late_utc = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # already 01:30 on the 29th in Moscow
    assert local_day_start(late_utc, moscow) == datetime(2026, 3, 29, tzinfo=moscow)
    assert local_day_start(late_utc, UTC) == datetime(2026, 3, 28, tzinfo=UTC)
