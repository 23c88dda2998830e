"""Contact-center statistics from the event log: definitions, live figures, batch == incremental."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.metrics import (
    AgentStateRecord,
    InteractionEventRecord,
    MetricsAccumulator,
    MetricsError,
    compute_live_queue_figures,
    compute_report,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
HOUR = T0 + timedelta(hours=1)


def ev(
    interaction: int,
    second: float,
    kind: str,
    queue: int | None = None,
    agent: int | None = None,
    **data: object,
) -> InteractionEventRecord:
    return InteractionEventRecord(
        interaction, T0 + timedelta(seconds=second), kind, queue, agent, 100, "voice", data
    )


def answered(
    i: int, at: float, wait: float, talk: float, wrap: float, queue: int = 1, agent: int = 7, hold: float = 0
):
    return [
        ev(i, at, "queued", queue),
        ev(i, at + 1, "offered", queue, agent),
        ev(i, at + wait, "connected", queue, agent),
        ev(i, at + wait + talk, "wrap_up", queue, agent, hold_s=hold),
        ev(i, at + wait + talk + wrap, "done", queue, agent),
    ]


def abandoned(i: int, at: float, wait: float, queue: int = 1) -> list[InteractionEventRecord]:
    return [ev(i, at, "queued", queue), ev(i, at + wait, "abandoned", queue)]


# The worked example of docs/metrics.md.
EXAMPLE = sorted(
    [
        *answered(1, 0, 8, 180, 30, hold=20),
        *answered(2, 60, 15, 240, 60),
        *answered(3, 120, 45, 300, 0),
        *abandoned(4, 200, 3),
        *abandoned(5, 300, 40),
        *answered(6, 960, 5, 100, 20),  # next quarter hour
    ],
    key=lambda e: e.at,
)


def only_row(report, key=1):  # type: ignore[no-untyped-def]
    rows = [r for r in report.rows if r.key == key]
    assert len(rows) == 1
    return rows[0]


def test_worked_example_from_the_documentation() -> None:
    report = compute_report(EXAMPLE, start=T0, end=HOUR)
    first = report.rows[0]
    assert (first.key, first.interval_start, first.interval_end) == (1, T0, T0 + timedelta(minutes=15))
    f = first.figures
    assert (f.offered, f.answered, f.abandoned, f.short_abandoned) == (5, 3, 2, 1)
    assert f.answered_within_threshold == 2
    assert f.service_level == pytest.approx(2 / 4)
    assert f.asa_s == pytest.approx((8 + 15 + 45) / 3)
    assert f.aht_s == pytest.approx((210 + 300 + 300) / 3)
    assert (f.talk_s, f.hold_s, f.wrap_up_s) == (700, 20, 90)
    assert f.abandonment_rate == pytest.approx(1 / 4)
    assert f.longest_wait_s == 45
    assert report.rows[1].interval_start == T0 + timedelta(minutes=15)
    assert report.rows[1].figures.offered == 1


def test_sl_variants_follow_asterisk_definitions() -> None:
    default = compute_report(EXAMPLE, start=T0, end=HOUR, interval_s=None).rows[0].figures
    sl = (
        compute_report(EXAMPLE, start=T0, end=HOUR, interval_s=None, sl_variant="asterisk_sl").rows[0].figures
    )
    sl2 = (
        compute_report(EXAMPLE, start=T0, end=HOUR, interval_s=None, sl_variant="asterisk_sl2")
        .rows[0]
        .figures
    )
    # 4 answered (3 within 20 s), 2 abandoned (1 short, 1 after 40 s).
    assert default.service_level == pytest.approx(3 / 5)
    assert sl.service_level == pytest.approx(3 / 6)
    assert sl2.service_level == pytest.approx((3 + 1) / 6)


def test_short_abandon_threshold_is_configurable() -> None:
    report = compute_report(EXAMPLE, start=T0, end=HOUR, interval_s=None, short_abandon_s=0)
    f = report.rows[0].figures
    assert f.short_abandoned == 0
    assert f.service_level == pytest.approx(3 / 6)


def test_sl_threshold_is_inclusive() -> None:
    events = answered(1, 0, 20, 10, 0)
    f = compute_report(events, start=T0, end=HOUR).rows[0].figures
    assert f.answered_within_threshold == 1


def test_wait_counts_from_the_first_queued_in_the_queue() -> None:
    events = [
        ev(1, 0, "queued", 1),
        ev(1, 2, "offered", 1, 7),
        ev(1, 17, "offer_timed_out", 1, 7),
        ev(1, 17, "queued", 1),
        ev(1, 18, "offered", 1, 8),
        ev(1, 30, "connected", 1, 8),
    ]
    f = compute_report(events, start=T0, end=HOUR).rows[0].figures
    assert (f.offered, f.answered, f.asa_s) == (1, 1, 30)
    agents = compute_report(events, start=T0, end=HOUR, group_by="agent")
    assert only_row(agents, 7).figures.offers_timed_out == 1
    assert only_row(agents, 8).figures.answered == 1


def test_overflow_counts_in_both_queues_but_once_overall() -> None:
    events = [
        ev(1, 0, "queued", 1),
        ev(1, 60, "overflowed", 1, to_queue_id=2),
        ev(1, 60, "queued", 2),
        ev(1, 70, "connected", 2, 9),
        ev(1, 100, "wrap_up", 2, 9),
        ev(1, 110, "done", 2, 9),
    ]
    by_queue = compute_report(events, start=T0, end=HOUR)
    q1, q2 = only_row(by_queue, 1).figures, only_row(by_queue, 2).figures
    assert (q1.offered, q1.overflowed_out, q1.answered) == (1, 1, 0)
    assert (q2.offered, q2.overflowed_in, q2.answered, q2.asa_s) == (1, 1, 1, 10)
    overall = only_row(compute_report(events, start=T0, end=HOUR, group_by="overall"), None).figures
    assert (overall.offered, overall.answered, overall.asa_s) == (1, 1, 70)
    assert overall.service_level == 0


def test_contacts_are_bucketed_by_queue_entry_time() -> None:
    events = answered(1, 14 * 60 + 50, 30, 60, 0)  # entered at 09:14:50, answered 09:15:20
    rows = compute_report(events, start=T0, end=HOUR).rows
    assert [r.interval_start for r in rows] == [T0]


def test_contacts_entering_before_the_range_are_not_counted() -> None:
    events = answered(1, -30, 40, 60, 0)
    assert compute_report(events, start=T0, end=HOUR).rows == ()


def test_transfer_after_talk_counts_as_handled_and_starts_a_new_contact() -> None:
    events = [
        *answered(1, 0, 5, 0, 0)[:3],
        ev(1, 65, "transferred", 1, 7, to_queue_id=2),
        ev(1, 65, "queued", 2),
        ev(1, 75, "connected", 2, 8),
        ev(1, 135, "wrap_up", 2, 8),
        ev(1, 140, "done", 2, 8),
    ]
    by_queue = compute_report(events, start=T0, end=HOUR)
    q1 = only_row(by_queue, 1).figures
    assert (q1.handled, q1.talk_s, q1.transferred) == (1, 60, 0)
    assert only_row(by_queue, 2).figures.offered == 1
    by_agent = compute_report(events, start=T0, end=HOUR, group_by="agent")
    assert only_row(by_agent, 7).figures.transferred == 1


def test_agent_occupancy_and_utilization() -> None:
    states = [
        AgentStateRecord(7, T0 - timedelta(minutes=5), "available"),
        AgentStateRecord(7, T0 + timedelta(minutes=10), "on_contact"),
        AgentStateRecord(7, T0 + timedelta(minutes=16), "wrap_up"),
        AgentStateRecord(7, T0 + timedelta(minutes=18), "not_ready", "break"),
        AgentStateRecord(7, T0 + timedelta(minutes=25), "available"),
        AgentStateRecord(7, T0 + timedelta(minutes=30), "offline"),
    ]
    report = compute_report([], states, start=T0, end=HOUR, interval_s=None, group_by="agent")
    f = only_row(report, 7).figures
    assert (f.handling_s, f.available_s, f.not_ready_s, f.logged_in_s) == (480, 900, 420, 1800)
    assert f.occupancy == pytest.approx(480 / 1380)
    assert f.utilization == pytest.approx(480 / 1800)
    quarters = compute_report([], states, start=T0, end=HOUR, group_by="agent").rows
    assert [r.figures.logged_in_s for r in quarters] == [900, 900]


def test_open_agent_state_is_counted_up_to_now() -> None:
    states = [AgentStateRecord(7, T0, "available")]
    report = compute_report(
        [], states, start=T0, end=HOUR, interval_s=None, group_by="overall", now=T0 + timedelta(minutes=20)
    )
    assert report.rows[0].figures.available_s == 1200


def test_direct_contacts_count_as_handled_but_not_offered() -> None:
    events = [ev(1, 0, "connected", None, 7), ev(1, 50, "wrap_up", None, 7), ev(1, 60, "done", None, 7)]
    f = only_row(compute_report(events, start=T0, end=HOUR, group_by="agent"), 7).figures
    assert (f.offered, f.answered, f.handled, f.aht_s) == (0, 0, 1, 60)


def test_live_figures_show_waiting_contacts_and_todays_service_level() -> None:
    events = [*EXAMPLE, ev(10, 3000, "queued", 1), ev(11, 3100, "queued", 1), ev(12, 3150, "queued", 2)]
    now = T0 + timedelta(seconds=3200)
    live = compute_live_queue_figures(events, since=T0, now=now)
    assert live[1].waiting == 2
    assert live[1].longest_current_wait_s == 200
    assert (live[1].answered, live[1].abandoned, live[1].offered) == (4, 2, 8)
    assert live[1].service_level == pytest.approx(3 / 5)
    assert live[2].waiting == 1 and live[2].service_level is None


def test_live_figures_count_a_waiting_contact_that_failed_as_failed_not_abandoned() -> None:
    events = [ev(1, 0, "queued", 1), ev(1, 30, "failed", 1, cause="lost_node_failure")]
    live = compute_live_queue_figures(events, since=T0, now=T0 + timedelta(seconds=60))
    assert (live[1].failed, live[1].abandoned, live[1].waiting) == (1, 0, 0)


def test_live_figures_after_restart_equal_the_running_wallboard() -> None:
    now = T0 + timedelta(seconds=1500)
    running = MetricsAccumulator(start=T0, interval_s=None)
    for event in EXAMPLE:
        running.add(event)
    assert running.live_queue_figures(now) == compute_live_queue_figures(EXAMPLE, since=T0, now=now)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2025, 1, 1), "end": HOUR},
        {"start": HOUR, "end": T0},
        {"start": T0, "end": HOUR, "interval_s": 0},
        {"start": T0, "end": HOUR, "group_by": "team"},
        {"start": T0, "end": HOUR, "sl_variant": "sl3"},
        {"start": T0, "end": HOUR, "sl_threshold_s": -1},
    ],
)
def test_invalid_parameters_raise_metrics_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(MetricsError):
        compute_report([], **kwargs)  # type: ignore[arg-type]


# --- batch and incremental agree --------------------------------------------------------------------


@st.composite
def contact(draw: st.DrawFn, interaction: int) -> list[InteractionEventRecord]:
    at = draw(st.integers(-600, 7000))
    queue = draw(st.sampled_from([1, 2, 3]))
    agent = draw(st.sampled_from([7, 8, 9]))
    channel = draw(st.sampled_from(["voice", "chat", "email"]))
    project = draw(st.sampled_from([100, 200, None]))
    t = float(at)
    out: list[tuple[float, str, int | None, int | None, dict[str, object]]] = [(t, "created", None, None, {})]
    out.append((t, "queued", queue, None, {}))
    for _ in range(draw(st.integers(0, 3))):
        step = draw(
            st.sampled_from(
                ["offer_rejected", "offer_timed_out", "requeue", "overflow", "message", "ring_all"]
            )
        )
        t += draw(st.integers(0, 30))
        if step == "overflow":
            new_queue = draw(st.sampled_from([1, 2, 3]))
            out.append((t, "overflowed", queue, None, {"to_queue_id": new_queue}))
            queue = new_queue
            out.append((t, "queued", queue, None, {}))
        elif step == "requeue":
            out.append((t, "queued", queue, None, {}))
        elif step == "message":
            out.append((t, "message", queue, None, {}))
        elif step == "ring_all":
            out.append((t, "offered", queue, None, {"agent_ids": [7, 8, 9]}))
            t += draw(st.integers(0, 20))
            out.append((t, "offer_rejected", queue, None, {"rejected_by": 8}))
            out.append((t, "offer_timed_out", queue, None, {"agent_ids": [7, 9]}))
        else:
            out.append((t, "offered", queue, agent, {}))
            t += draw(st.integers(0, 20))
            out.append((t, step, queue, agent, {}))
    ending = draw(
        st.sampled_from(
            [
                "answer",
                "answer",
                "abandon",
                "fail",
                "wait",
                "transfer_waiting",
                "answer_transfer",
                "move",
                "turned_away",
                "refused_at_the_door",
            ]
        )
    )
    t += draw(st.integers(0, 60))
    if ending in ("answer", "answer_transfer"):
        out.append((t, "offered", queue, agent, {}))
        t += draw(st.integers(0, 10))
        out.append((t, "connected", queue, agent, {}))
        t += draw(st.integers(0, 600))
        if ending == "answer_transfer":
            new_queue = draw(st.sampled_from([1, 2, 3]))
            out.append((t, "transferred", queue, agent, {"to_queue_id": new_queue}))
            out.append((t, "queued", new_queue, None, {}))
            t += draw(st.integers(0, 60))
            out.append((t, "abandoned", new_queue, None, {}))
        else:
            out.append((t, "wrap_up", queue, agent, {"hold_s": draw(st.integers(0, 100))}))
            if draw(st.booleans()):
                t += draw(st.integers(0, 120))
                out.append((t, "done", queue, agent, {}))
    elif ending == "abandon":
        if draw(st.booleans()):
            out.append((t, "offered", queue, agent, {}))
        out.append((t + draw(st.integers(0, 10)), "abandoned", queue, None, {}))
    elif ending == "fail":
        out.append((t, "failed", queue, None, {}))
    elif ending == "transfer_waiting":
        out.append((t, "transferred", queue, None, {"to_queue_id": 3}))
    elif ending == "move":
        new_queue = draw(st.sampled_from([1, 2, 3]))
        out.append((t, "transferred", queue, None, {"from_queue_id": queue, "to_queue_id": new_queue}))
        if new_queue != queue:
            out.append((t, "queued", new_queue, None, {}))
        t += draw(st.integers(0, 60))
        out.append((t, "offered", new_queue, None, {"agent_ids": [agent]}))
        out.append((t, "connected", new_queue, agent, {}))
    elif ending == "turned_away":
        out.append((t, draw(st.sampled_from(["refused", "fallback"])), queue, None, {}))
    elif ending == "refused_at_the_door":
        out[1:] = [(float(at), "refused", queue, None, {"queue_id": queue})]
    return [
        InteractionEventRecord(interaction, T0 + timedelta(seconds=s), kind, q, a, project, channel, data)
        for s, kind, q, a, data in out
    ]


@st.composite
def event_log(draw: st.DrawFn) -> list[InteractionEventRecord]:
    events: list[InteractionEventRecord] = []
    for interaction in range(draw(st.integers(0, 25))):
        events.extend(draw(contact(interaction)))
    direct = draw(st.integers(0, 3))
    for k in range(direct):
        at = T0 + timedelta(seconds=draw(st.integers(0, 3600)))
        events += [
            InteractionEventRecord(1000 + k, at, "connected", None, 8, None, "voice"),
            InteractionEventRecord(1000 + k, at + timedelta(seconds=30), "done", None, 8, None, "voice"),
        ]
    return sorted(events, key=lambda e: e.at)


agent_states = st.lists(
    st.builds(
        AgentStateRecord,
        agent_id=st.sampled_from([7, 8, 9]),
        at=st.integers(-900, 7200).map(lambda s: T0 + timedelta(seconds=s)),
        state=st.sampled_from(["offline", "available", "not_ready", "on_contact", "wrap_up", "ringing"]),
    ),
    max_size=20,
).map(lambda records: sorted(records, key=lambda r: r.at))


@settings(max_examples=200, deadline=None)
@given(
    events=event_log(),
    states=agent_states,
    group_by=st.sampled_from(["queue", "agent", "channel", "project", "overall"]),
    interval_s=st.sampled_from([900, 300, 3600, None]),
    variant=st.sampled_from(["default", "asterisk_sl", "asterisk_sl2"]),
)
def test_incremental_accumulator_agrees_with_batch_report(
    events: list[InteractionEventRecord],
    states: list[AgentStateRecord],
    group_by,
    interval_s,
    variant,  # type: ignore[no-untyped-def]
) -> None:
    end = T0 + timedelta(hours=2)
    batch = compute_report(
        events, states, start=T0, end=end, interval_s=interval_s, group_by=group_by, sl_variant=variant
    )
    accumulator = MetricsAccumulator(
        start=T0, end=end, interval_s=interval_s, group_by=group_by, sl_variant=variant
    )
    for record in states:
        accumulator.add_agent_state(record)
    for event in events:
        accumulator.add(event)
    assert accumulator.report() == batch
    for row in batch.rows:
        f = row.figures
        assert f.short_abandoned <= f.abandoned
        if group_by not in ("agent",):
            assert f.answered + f.abandoned + f.failed <= f.offered + f.overflowed_in
        if f.service_level is not None:
            assert 0 <= f.service_level <= 1
        if f.occupancy is not None:
            assert 0 <= f.occupancy <= 1


@settings(max_examples=100, deadline=None)
@given(events=event_log(), cut=st.integers(0, 7200))
def test_live_figures_recomputed_from_the_log_match_the_running_accumulator(
    events: list[InteractionEventRecord], cut: int
) -> None:
    now = T0 + timedelta(seconds=cut)
    seen = [e for e in events if e.at <= now]
    running = MetricsAccumulator(start=T0, interval_s=None)
    for event in seen:
        running.add(event)
    live = running.live_queue_figures(now)
    assert live == compute_live_queue_figures(seen, since=T0, now=now)
    for figures in live.values():
        assert figures.waiting >= 0
        if figures.longest_current_wait_s is not None:
            assert figures.longest_current_wait_s >= 0
