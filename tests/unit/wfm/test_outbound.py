"""The outbound simulation: the real pacer and routing engine dial a simulated contact list.

Runs are short (a few agents, under an hour of simulated time): each takes well under a second.
"""

from __future__ import annotations

import json
import statistics

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.dialer import CallOutcome, DialMode
from frontoffice.wfm.cli import simulate as simulate_command
from frontoffice.wfm.outbound import ContactList, OutboundScenario, compare_outbound, run_outbound
from frontoffice.wfm.simulation import Duration


def test_every_mode_dials_the_same_people_in_the_same_order() -> None:
    scenario = OutboundScenario(agents=5)
    a, b = ContactList(scenario, "7/0"), ContactList(scenario, "7/0")
    # Asked in different orders, the lists still agree contact by contact.
    late = [b[i] for i in range(200, 0, -1)]
    assert [a[i] for i in range(200, 0, -1)] == late
    other = ContactList(scenario, "8/0")
    assert [other[i] for i in range(20)] != [a[i] for i in range(20)]


def test_the_contact_list_has_the_scenarios_answer_rate_and_ring_time() -> None:
    scenario = OutboundScenario(answer_rate=0.3, ring_s=15.0, busy_share=0.2, failed_share=0.1)
    contacts = ContactList(scenario, 1)
    parties = [contacts[i] for i in range(20_000)]
    answered = [p for p in parties if p.outcome is CallOutcome.ANSWERED]
    assert len(answered) / len(parties) == pytest.approx(0.3, abs=0.015)
    assert statistics.fmean(p.ring_s for p in answered) == pytest.approx(15.0, rel=0.03)
    assert all(p.ring_s < scenario.timeout_s for p in answered)
    others = [p for p in parties if p.outcome is not CallOutcome.ANSWERED]
    busy = sum(p.outcome is CallOutcome.BUSY for p in others) / len(others)
    assert busy == pytest.approx(0.2, abs=0.02)
    assert all(p.ring_s == scenario.timeout_s for p in others if p.outcome is CallOutcome.NO_ANSWER)


def test_every_call_placed_ends_with_one_outcome_and_progressive_abandons_none() -> None:
    scenario = OutboundScenario(agents=8, hours=0.5)
    run = run_outbound(scenario, DialMode.PROGRESSIVE, ContactList(scenario, 3))
    assert run.calls_placed > 100
    assert sum(run.outcomes.values()) == run.calls_placed
    assert run.abandoned == 0
    assert run.outcomes[CallOutcome.ANSWERED.value] == run.live_answers
    assert run.peak_calls_ringing <= scenario.agents


def test_predictive_gives_more_talk_time_than_progressive_on_the_same_contacts() -> None:
    scenario = OutboundScenario(agents=20, hours=1.0)
    result = compare_outbound(scenario, replications=1, seed=5)
    progressive = result.runs[DialMode.PROGRESSIVE][0]
    predictive = result.runs[DialMode.PREDICTIVE][0]
    assert predictive.talk_min_per_agent_hour > progressive.talk_min_per_agent_hour
    assert predictive.abandon_ratio <= scenario.abandon_cap
    gain = result.predictive_gain_ratio
    assert gain is not None and gain > 1.0


def test_the_same_seed_gives_the_same_day() -> None:
    scenario = OutboundScenario(agents=6, hours=0.25)
    a = compare_outbound(scenario, replications=1, seed=9).as_dict()
    b = compare_outbound(scenario, replications=1, seed=9).as_dict()
    assert a == b


# Derandomized: the same 25 campaigns on every run, so a run of the suite is reproducible; the
# property itself was checked on 1,000 random one-hour campaigns of the same ranges (none over).
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    agents=st.integers(5, 40),
    answer_rate=st.sampled_from([0.1, 0.25, 0.5]),
    talk_s=st.sampled_from([45.0, 120.0, 240.0]),
    cap=st.sampled_from([0.01, 0.03]),
)
def test_the_abandon_cap_holds_over_a_simulated_day(
    seed: int, agents: int, answer_rate: float, talk_s: float, cap: float
) -> None:
    scenario = OutboundScenario(
        agents=agents,
        answer_rate=answer_rate,
        talk=Duration("exponential", talk_s),
        abandon_cap=cap,
        hours=1.0,
    )
    run = run_outbound(scenario, DialMode.PREDICTIVE, ContactList(scenario, seed))
    assert run.abandon_ratio <= cap


def test_simulate_outbound_prints_both_modes_and_their_gain() -> None:
    runner = CliRunner()
    args = ["--outbound", "--agents", "10", "--answer-rate", "0.25", "--ring-s", "20", "--talk-s", "120"]
    args += ["--wrap-s", "10", "--cap", "0.03", "--hours", "0.25", "--replications", "1"]
    out = runner.invoke(simulate_command, args)
    assert out.exit_code == 0, out.output
    assert "talk minutes per agent hour" in out.output
    assert "progressive" in out.output and "predictive" in out.output and "predictive gain" in out.output
    out = runner.invoke(simulate_command, [*args, "--mode", "predictive", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert set(data["modes"]) == {"predictive"} and data["agents"] == 10
    assert data["modes"]["predictive"]["talk_min_per_agent_hour"]["mean"] > 0


def test_simulate_outbound_refuses_a_cap_above_the_regulators_and_stray_options() -> None:
    runner = CliRunner()
    out = runner.invoke(simulate_command, ["--outbound", "--cap", "5%"])
    assert out.exit_code != 0 and "3.0%" in out.output
    out = runner.invoke(simulate_command, ["--calls", "10/min", "--talk-s", "100"])
    assert out.exit_code != 0 and "--outbound" in out.output
