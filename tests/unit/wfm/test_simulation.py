"""The discrete-event simulation: it runs the real routing engine and agrees with the formulas.

Agreement is checked against 99 % Student-t intervals across replications: the run is fixed by its
seed, and the tolerance is the simulation's own statistical uncertainty, not a guess. The sizes are
moderate (10 agents, four hours, 30–40 replications) so the intervals are a few points of service
level wide and the whole file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from frontoffice.domain.routing import QueueConfig
from frontoffice.wfm import StaffingTarget, erlang_a_metrics, erlang_c_metrics, plan_day
from frontoffice.wfm.cli import simulate as simulate_command
from frontoffice.wfm.simulation import (
    AgentGroup,
    ArrivalStream,
    Duration,
    Scenario,
    SimulationTooLarge,
    arrivals_from_forecast,
    replication_rngs,
    roster_from_day_plan,
    run_replication,
    scenario_from_dict,
    simulate,
    single_queue_scenario,
)
from frontoffice.wfm.stats import estimate, t_quantile

MULTI_SKILL = {
    "hours": 4,
    "warmup_s": 900,
    "answer_time_s": 20,
    "queues": [
        {"id": "sales", "skills": {"sales": 1}, "max_wait_s": 30, "overflow": "backup"},
        {"id": "support", "skills": {"support": 1}, "wrap_up_s": 15},
        {"id": "backup"},
    ],
    "agents": [
        {"name": "sales", "count": 5, "skills": {"sales": 5}, "queues": {"sales": 1}},
        {
            "name": "support",
            "count": 12,
            "skills": {"support": 5},
            "queues": {"support": 1},
            "capacity": {"voice": 1, "chat": 3},
        },
        {
            "name": "universal",
            "count": 3,
            "skills": {"sales": 3, "support": 3},
            "queues": {"backup": 1, "support": 2},
        },
    ],
    "arrivals": [
        {"queue": "sales", "rate_per_min": 1.5, "aht_s": 240, "patience_s": 120},
        {"queue": "support", "rate_per_min": 2.0, "aht_s": 300, "patience_s": 180, "priority": 1},
        {
            "queue": "support",
            "channel": "chat",
            "rate_per_min": 1.0,
            "aht_s": 600,
            "handling": "lognormal",
            "handling_cv": 0.8,
        },
    ],
}


def test_t_quantiles_match_the_tables() -> None:
    for df, value in [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (9, 2.2621572), (29, 2.0452296)]:
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-6)
    assert t_quantile(0.995, 39) == pytest.approx(2.7079131, abs=1e-6)
    assert t_quantile(0.975, 10_000) == pytest.approx(1.9602012, abs=1e-6)
    assert t_quantile(0.025, 9) == pytest.approx(-2.2621572, abs=1e-6)
    e = estimate([1.0, 2.0, 3.0, 4.0])
    assert e.mean == 2.5 and e.n == 4
    assert e.half_width == pytest.approx(t_quantile(0.975, 3) * e.std / 2.0)
    assert estimate([5.0]).half_width == math.inf


def test_mmn_without_abandonment_agrees_with_erlang_c() -> None:
    # 8 Erl on 10 agents (80 % occupancy), AHT 60 s, four hours after ten minutes of warm-up.
    scenario = single_queue_scenario(8 / 60, 60.0, 10, hours=4, warmup_s=600)
    result = simulate(scenario, replications=40, seed=7)
    exact = erlang_c_metrics(8.0, 10, 60.0, 20.0)
    overall = result.overall
    assert overall.abandoned.mean == 0.0
    assert overall.service_level.contains(exact.service_level, 0.99)
    assert overall.asa_s.contains(exact.asa_s, 0.99)
    assert result.occupancy.contains(exact.occupancy, 0.99)
    # The tolerance is honest: tight enough that a real disagreement would show.
    assert overall.service_level.half_width < 0.03
    assert result.occupancy.half_width < 0.01


def test_mmn_with_exponential_patience_agrees_with_erlang_a() -> None:
    # 10 Erl on 10 agents: unstable without abandonment, steady with a mean patience of 60 s.
    scenario = single_queue_scenario(10 / 60, 60.0, 10, hours=4, warmup_s=600, patience_s=60.0)
    result = simulate(scenario, replications=30, seed=3)
    exact = erlang_a_metrics(10.0, 10, 60.0, 60.0, 20.0)
    overall = result.overall
    assert overall.service_level.contains(exact.service_level, 0.99)
    assert overall.service_level_answered.contains(exact.service_level_answered, 0.99)
    assert overall.asa_s.contains(exact.asa_s, 0.99)
    assert overall.abandon_rate.contains(exact.p_abandon, 0.99)
    assert result.occupancy.contains(exact.occupancy, 0.99)
    assert overall.abandon_rate.half_width < 0.01


def test_multi_skill_overflow_conserves_contacts_and_moves_them() -> None:
    scenario = scenario_from_dict(MULTI_SKILL)
    result = simulate(scenario, replications=6, seed=11)
    for run in result.runs:
        assert run.arrivals > 0
        assert run.arrivals == run.answered + run.abandoned + run.refused + run.waiting_at_end
        m = run.measured
        assert m.offered == m.answered + m.abandoned + m.refused + m.unresolved
        assert m.offered == sum(q.offered for q in run.queues.values())
    moved = result.overflow_moves[("sales", "backup")]
    assert moved.mean > 0
    # Sales contacts overflowed to backup and were answered there (nobody arrives into backup).
    assert result.answered_in["backup"].mean > 0
    assert "backup" not in result.queues
    assert result.queues["sales"].overflow_rate.mean > 0
    assert result.queues["support"].overflow_rate.mean == 0
    # Every group worked; chat capacity 3 lets support agents hold several chats.
    for name in ("sales", "support", "universal"):
        assert 0.0 < result.group_occupancy[name].mean <= 1.0


def test_overflow_relieves_the_overflowing_queue() -> None:
    base = dict(MULTI_SKILL)
    # Without the rule sales callers wait for sales agents only (max_wait_s without an overflow
    # queue would turn them away instead).
    plain = {"id": "sales", "skills": {"sales": 1}}
    without = {**base, "queues": [plain if q["id"] == "sales" else q for q in base["queues"]]}
    with_overflow = simulate(scenario_from_dict(base), replications=6, seed=5)
    no_overflow = simulate(scenario_from_dict(without), replications=6, seed=5)
    assert not no_overflow.overflow_moves
    # Backup agents take what waited 30 s: fewer sales callers give up.
    relieved = with_overflow.queues["sales"].abandon_rate
    stuck = no_overflow.queues["sales"].abandon_rate
    assert relieved.high < stuck.low


def test_same_seed_same_result_and_replications_differ() -> None:
    scenario = single_queue_scenario(8 / 60, 60.0, 10, hours=1, warmup_s=0)
    a = simulate(scenario, replications=3, seed=42)
    b = simulate(scenario, replications=3, seed=42)
    assert a.runs == b.runs
    assert len({run.arrivals for run in a.runs}) > 1


def test_priorities_serve_the_higher_priority_stream_first() -> None:
    queue = QueueConfig("q")
    scenario = Scenario(
        queues=(queue,),
        agents=(AgentGroup("a", 9, queues={"q": 1}),),
        arrivals=(
            ArrivalStream("q", rate_per_s=4 / 60, handling=Duration("exponential", 60.0), priority=5),
            ArrivalStream(
                "q", rate_per_s=4.5 / 60, handling=Duration("exponential", 60.0), channel="webform"
            ),
        ),
        horizon_s=4 * 3600,
        warmup_s=600,
    )
    runs = [run_replication(scenario, *replication_rngs(1, i)) for i in range(3)]
    assert all(r.arrivals == r.answered + r.abandoned + r.refused + r.waiting_at_end for r in runs)


def test_answer_delay_and_wrap_up_go_through_the_engine_timers() -> None:
    fast = single_queue_scenario(6 / 60, 60.0, 8, hours=2, warmup_s=300)
    slow = Scenario(
        queues=(QueueConfig("main", wrap_up_s=20.0, offer_timeout_s=15.0),),
        agents=fast.agents,
        arrivals=fast.arrivals,
        horizon_s=fast.horizon_s,
        warmup_s=fast.warmup_s,
        answer_delay_s=5.0,
    )
    a = simulate(fast, replications=4, seed=2)
    b = simulate(slow, replications=4, seed=2)
    # Every answer takes at least the ringing time; wrap-up keeps agents busy longer.
    assert b.overall.asa_s.mean >= 5.0
    assert b.occupancy.mean > a.occupancy.mean
    for run in b.runs:
        assert run.arrivals == run.answered + run.abandoned + run.refused + run.waiting_at_end


def test_day_plan_rates_shape_the_arrivals() -> None:
    start = datetime(2026, 3, 2, 8)
    forecast = [(start + timedelta(minutes=30 * i), calls) for i, calls in enumerate([0, 60, 120, 0])]
    stream = arrivals_from_forecast("main", forecast, handling=Duration("exponential", 60.0))
    assert stream.interval_s == 1800
    assert stream.expected_count(0, 4 * 1800) == pytest.approx(180)
    scenario = Scenario(
        (QueueConfig("main"),), (AgentGroup("a", 10, queues={"main": 1}),), (stream,), horizon_s=4 * 1800
    )
    runs = [run_replication(scenario, *replication_rngs(0, i)) for i in range(5)]
    assert 120 < sum(r.arrivals for r in runs) / 5 < 240
    assert scenario_from_dict(
        {
            "queues": [{"id": "main"}],
            "agents": [{"name": "a", "count": 2, "queues": {"main": 1}}],
            "arrivals": [{"queue": "main", "calls_per_interval": [10, 20], "interval_s": 900}],
        }
    ).horizon_s == pytest.approx(1800)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": "red"}, "unknown key"),
        ({"queues": [{"id": "a", "overflow": "nowhere"}]}, "unknown queue"),
        (
            {"queues": [{"id": "sales", "skills": {"sales": 11}}, {"id": "support"}, {"id": "general"}]},
            "outside",
        ),
        ({"arrivals": [{"queue": "sales"}]}, "exactly one of"),
        ({"arrivals": [{"queue": "sales", "rate_per_min": 1, "handling": "weibull"}]}, "handling"),
        ({"agents": [{"name": "x", "count": 1, "queues": {"nope": 1}}]}, "unknown queue"),
        ({"answer_delay_s": 30}, "offer timeout"),
        ({"hours": "many"}, "expected a number"),
    ],
)
def test_bad_scenarios_name_the_problem(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenario_from_dict({**MULTI_SKILL, **patch})


def test_simulate_command_prints_intervals_and_the_formula(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        simulate_command,
        ["--calls", "8/min", "--aht", "60", "--agents", "10", "--hours", "1", "--replications", "3"],
    )
    assert out.exit_code == 0, out.output
    assert "95 % interval" in out.output and "formula" in out.output and "79.0%" in out.output
    scenario = tmp_path / "centre.json"
    scenario.write_text(json.dumps({**MULTI_SKILL, "hours": 1}), encoding="utf-8")
    out = runner.invoke(simulate_command, ["--scenario", str(scenario), "--replications", "2", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["replications"] == 2 and set(data["queues"]) == {"sales", "support"}
    toml = tmp_path / "bad.toml"
    toml.write_text('hours = 1\n[[queues]]\nid = "a"\ncolour = "red"\n', encoding="utf-8")
    out = runner.invoke(simulate_command, ["--scenario", str(toml)])
    assert out.exit_code != 0 and "unknown key" in out.output


def test_an_overflow_circle_is_stopped_by_the_event_budget() -> None:
    scenario = scenario_from_dict(
        {
            "hours": 1,
            "queues": [
                {"id": "a", "max_wait_s": 1, "overflow": "b"},
                {"id": "b", "max_wait_s": 1, "overflow": "a"},
            ],
            "agents": [{"name": "nobody", "count": 0, "queues": {"a": 1}}],
            "arrivals": [{"queue": "a", "rate_per_min": 10}],
        }
    )
    with pytest.raises(SimulationTooLarge, match="round in a circle"):
        simulate(scenario, replications=2, max_events=5_000)
    with pytest.raises(ValueError, match="max_wait_s must be > 0"):
        scenario_from_dict(
            {
                **MULTI_SKILL,
                "queues": [
                    {"id": "sales", "max_wait_s": 0, "overflow": "backup"},
                    {"id": "support"},
                    {"id": "backup"},
                ],
            }
        )


def test_a_roster_puts_agents_on_and_off_duty() -> None:
    def scenario(schedule: tuple[int, ...]) -> Scenario:
        return Scenario(
            (QueueConfig("q"),),
            (AgentGroup("g", 3, queues={"q": 1}, schedule=schedule, schedule_interval_s=1800),),
            (ArrivalStream("q", rate_per_s=2 / 60, handling=Duration("exponential", 60.0)),),
            horizon_s=3 * 1800,
        )

    steady = [run_replication(scenario((3, 3, 3)), *replication_rngs(4, i)) for i in range(3)]
    gap = [run_replication(scenario((3, 0, 3)), *replication_rngs(4, i)) for i in range(3)]
    for run in steady + gap:
        assert run.arrivals == run.answered + run.abandoned + run.refused + run.waiting_at_end
    assert gap[0].agent_s["g"] == 3 * 1800 * 2 and steady[0].agent_s["g"] == 3 * 1800 * 3
    # Nobody answers in the middle half hour: its callers wait for the next shift.
    wait = lambda runs: sum(r.measured.wait_sum_s for r in runs) / sum(r.measured.answered for r in runs)  # noqa: E731
    assert wait(gap) > 10 * wait(steady) and wait(gap) > 60


def test_simulating_a_day_plan_with_its_own_roster() -> None:
    start = datetime(2026, 3, 2, 8)
    calls = [60, 120, 240, 300, 240, 120, 60, 30]
    forecast = [(start + timedelta(minutes=30 * i), float(c)) for i, c in enumerate(calls)]
    plan = plan_day(forecast, 120.0, StaffingTarget(0.8, 20.0))
    group = roster_from_day_plan(plan, "agents", {"main": 1})
    assert group.schedule == tuple(row.agents for row in plan.intervals)
    stream = arrivals_from_forecast("main", forecast, handling=Duration("exponential", 120.0))
    scenario = Scenario((QueueConfig("main"),), (group,), (stream,), horizon_s=plan.interval_s * len(calls))
    result = simulate(scenario, replications=6, seed=2)
    assert result.overall.offered.mean == pytest.approx(sum(calls), rel=0.1)
    # The roster follows the load: occupancy as the plan expects, the service level near its target.
    planned_occupancy = sum(r.traffic for r in plan.intervals) / sum(r.agents for r in plan.intervals)
    assert result.occupancy.contains(planned_occupancy, 0.99)
    assert 0.7 < result.overall.service_level.mean <= 1.0
    data = scenario_from_dict(
        {
            "queues": [{"id": "main"}],
            "agents": [
                {"name": "a", "schedule": [1, 3, 2], "schedule_interval_s": 600, "queues": {"main": 1}}
            ],
            "arrivals": [{"queue": "main", "rate_per_min": 1}],
            "hours": 0.5,
        }
    )
    assert (
        data.agents[0].count == 3 and data.agents[0].on_duty(700) == 3 and data.agents[0].on_duty(5000) == 2
    )


def test_simulate_warns_when_the_queue_never_empties_and_shows_who_is_still_waiting() -> None:
    out = CliRunner().invoke(
        simulate_command,
        ["--calls", "10/min", "--aht", "60", "--agents", "10", "--hours", "1", "--replications", "2"],
    )
    assert out.exit_code == 0, out.output
    assert "warning" in out.output.lower() and "--hours" in out.output
    assert "still waiting at the end" in out.output


def test_simulate_refuses_no_agents() -> None:
    out = CliRunner().invoke(simulate_command, ["--calls", "10/min", "--agents", "0"])
    assert out.exit_code == 2 and "--agents" in out.output


def test_a_simulation_counts_the_contacts_waiting_when_arrivals_stop_and_at_the_end() -> None:
    scenario = single_queue_scenario(10 / 60, 60, 9, hours=1.0)
    result = simulate(scenario, replications=2, seed=1)
    assert result.waiting_at_horizon.mean == sum(r.waiting_at_horizon for r in result.runs) / 2 > 0
    assert result.waiting_at_end.mean == sum(r.waiting_at_end for r in result.runs) / 2
    assert result.as_dict()["waiting_at_horizon"]["mean"] == result.waiting_at_horizon.mean
    undrained = simulate(dataclasses.replace(scenario, drain_s=0.0), replications=2, seed=1)
    assert undrained.waiting_at_end.mean > 0
