"""Erlang A against the M/M/N+M chain solved by linear algebra and the tagged caller's own chain."""

from __future__ import annotations

import math

import pytest

from frontoffice.wfm import erlang_a_metrics, erlang_c_metrics
from tests.unit.wfm.chains import answered_wait, answered_within, erlang_a_chain

# (traffic, agents, θ = AHT/patience, answer time in AHTs). The last two put the most likely
# queue length above 64, so the sums start from their largest term (erlang_a._waiting_sums).
CASES = [
    (5.0, 5, 0.5, 0.3),
    (8.0, 5, 2.0, 0.1),
    (3.0, 6, 0.1, 0.5),
    (10.0, 4, 1.0, 1.0),
    (2.0, 3, 5.0, 0.2),
    (30.0, 4, 0.2, 0.3),
    (40.0, 2, 0.3, 0.5),
]


@pytest.mark.parametrize(("traffic", "agents", "theta", "t"), CASES)
def test_matches_the_birth_death_chain(traffic: float, agents: int, theta: float, t: float) -> None:
    states = 320  # beyond this the chain's mass is below 1e-30 for these cases
    pi = erlang_a_chain(traffic, agents, theta, states)
    waiting = [k for k in range(states - agents) if pi[agents + k] > 1e-30]
    p_wait = math.fsum(pi[agents:])
    p_abandon = theta / traffic * math.fsum((i - agents) * pi[i] for i in range(agents, states))
    sl = math.fsum(pi[:agents]) + math.fsum(
        pi[agents + k] * answered_within(agents, theta, k, t) for k in waiting
    )
    answered_time = math.fsum(pi[agents + k] * answered_wait(agents, theta, k)[1] for k in waiting)
    answered = math.fsum(pi[agents + k] * answered_wait(agents, theta, k)[0] for k in waiting)

    m = erlang_a_metrics(traffic, agents, 1.0, 1.0 / theta, t)
    assert m.p_wait == pytest.approx(p_wait, abs=1e-13)
    assert m.p_abandon == pytest.approx(p_abandon, abs=1e-13)
    assert m.service_level == pytest.approx(sl, abs=1e-13)
    assert m.asa_s == pytest.approx(answered_time / (1.0 - p_abandon), rel=1e-12)
    # Who waits is either answered or hangs up.
    assert 1.0 - m.p_abandon == pytest.approx(1.0 - p_wait + answered, abs=1e-13)
    assert m.service_level_answered == pytest.approx(sl / (1.0 - p_abandon), abs=1e-13)
    assert m.occupancy == pytest.approx(min(1.0, traffic * (1.0 - p_abandon) / agents), abs=1e-13)
    assert m.mean_wait_s == pytest.approx(p_abandon / theta, rel=1e-12)  # Little's law


def test_pyworkforce_erlang_a_case_needs_fewer_agents_than_erlangs() -> None:
    # 300 erlangs, AHT 180 s, patience 120 s, target 80/20: 276 agents meet it.
    assert erlang_a_metrics(300.0, 276, 180, 120, 20).service_level >= 0.8
    assert erlang_a_metrics(300.0, 275, 180, 120, 20).service_level < 0.8


@pytest.mark.parametrize(("traffic", "agents"), [(10.0, 12), (10.0, 14), (250.0, 262)])
def test_tends_to_erlang_c_as_patience_grows(traffic: float, agents: int) -> None:
    c = erlang_c_metrics(traffic, agents, 180, 20)
    for patience, tol in ((1e6, 1e-2), (1e8, 1e-4), (1e10, 1e-6)):
        a = erlang_a_metrics(traffic, agents, 180, patience, 20)
        assert a.p_wait == pytest.approx(c.p_wait, rel=tol)
        assert a.service_level == pytest.approx(c.service_level, rel=tol)
        assert a.asa_s == pytest.approx(c.asa_s, rel=tol)
        assert a.p_abandon < tol
    assert erlang_a_metrics(traffic, agents, 180, math.inf, 20).p_wait == c.p_wait


def test_edges() -> None:
    none = erlang_a_metrics(0.0, 3, 180, 60)
    assert (none.p_wait, none.p_abandon, none.service_level) == (0.0, 0.0, 1.0)
    nobody = erlang_a_metrics(5.0, 0, 180, 60)
    assert (nobody.p_wait, nobody.p_abandon, nobody.service_level) == (1.0, 1.0, 0.0)
    assert nobody.mean_wait_s == 60
    with pytest.raises(ValueError):
        erlang_a_metrics(5.0, 3, 180, 0.0)


@pytest.mark.parametrize(
    ("traffic", "agents", "patience"),
    [(1e6, 500_000, 600.0), (1e6, 999_000, 60.0), (1e6, 1_000_100, 300.0), (0.01, 1, 1e9), (5e5, 1, 30.0)],
)
def test_large_and_tiny_systems_give_probabilities(traffic: float, agents: int, patience: float) -> None:
    m = erlang_a_metrics(traffic, agents, 180, patience, 20)
    for p in (m.p_wait, m.p_abandon, m.service_level, m.service_level_answered, m.occupancy):
        assert 0.0 <= p <= 1.0
    assert m.asa_s >= 0.0 and not math.isnan(m.asa_s)


def test_overloaded_with_long_patience_sheds_the_excess() -> None:
    # Twice the traffic of the agents: half the callers must hang up, whatever the patience.
    m = erlang_a_metrics(1e6, 500_000, 180, 600)
    assert m.p_abandon == pytest.approx(0.5, rel=1e-9)
    assert m.occupancy == pytest.approx(1.0, rel=1e-9)
