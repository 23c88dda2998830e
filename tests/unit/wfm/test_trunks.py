"""Trunk sizing: Erlang B on line-holding traffic and M/M/N/K behind the agents."""

from __future__ import annotations

import pytest

from frontoffice.wfm import (
    capacity_for_blocking,
    erlang_a_metrics,
    erlang_b,
    erlang_c_metrics,
    line_traffic,
    lines_for_blocking,
    size_trunks,
)


def test_line_traffic_adds_ivr_queue_and_talk_but_not_wrap_up() -> None:
    # 10 erlangs at AHT 200 s = 0.05 calls/s; a line is held 30 + 12 + (200 - 20) s.
    assert line_traffic(10.0, 200, 12, ivr_s=30, wrap_s=20) == pytest.approx(0.05 * 222)


def test_trunk_plan_uses_erlang_c_waits_by_default() -> None:
    plan = size_trunks(300.0, 180, 310, blocking=0.01, ivr_s=30)
    wait = erlang_c_metrics(300.0, 310, 180).asa_s
    assert plan.queue_wait_s == pytest.approx(wait)
    assert plan.line_traffic == pytest.approx(300.0 / 180 * (30 + wait + 180))
    assert plan.lines == lines_for_blocking(plan.line_traffic, 0.01)
    assert plan.blocking == pytest.approx(erlang_b(plan.line_traffic, plan.lines))
    assert plan.mmnk_positions == capacity_for_blocking(300.0, 310, 0.01)
    assert plan.ivr_ports == lines_for_blocking(300.0 / 180 * 30, 0.01)
    assert plan.mmnk_positions is not None
    assert plan.mmnk_lines == plan.mmnk_positions + plan.ivr_ports
    assert plan.lines_per_agent == pytest.approx(plan.lines / 310)


def test_trunk_plan_with_abandonment_counts_only_answered_talk() -> None:
    plan = size_trunks(50.0, 180, 48, patience_s=60)
    m = erlang_a_metrics(50.0, 48, 180, 60)
    expected = 50.0 / 180 * (m.mean_wait_s + (1 - m.p_abandon) * 180)
    assert plan.line_traffic == pytest.approx(expected)


def test_an_explicit_queue_time_is_used_as_given() -> None:
    plan = size_trunks(20.0, 120, 25, queue_wait_s=45.0)
    assert plan.queue_wait_s == 45.0


def test_too_few_agents_without_patience_is_an_error() -> None:
    with pytest.raises(ValueError):
        size_trunks(30.0, 180, 30)
    plan = size_trunks(30.0, 180, 25, queue_wait_s=120.0)
    assert plan.mmnk_positions is None  # 25 agents cannot keep blocking at 1 % of 30 erlangs


def test_no_traffic_blocks_no_calls() -> None:
    plan = size_trunks(0.0, 180, 5)
    assert plan.lines == 0
    assert plan.blocking == 0.0
