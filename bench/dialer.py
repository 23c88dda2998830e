"""Benchmark: the outbound dialler's pacing, progressive against predictive, in the planning simulation.

The issue's case: 50 agents, a 25 % answer rate, 20 s mean ring time before an answer (ring timeout
40 s), 120 s talk (exponential), 10 s wrap-up, the abandon-rate cap at 3 % of answered calls over
the day and the rolling hour. Each replication draws one contact list and both modes dial it
(``frontoffice.wfm.outbound``: the real ``Pacer`` and the real routing engine in simulated time;
the same run, the same contacts — progressive is the baseline run beside predictive).

Metrics (means over the replications of an 8-hour day):

* ``talk_min_per_agent_hour_progressive``, ``talk_min_per_agent_hour_predictive``: talk minutes per
  agent hour over the day;
* ``predictive_gain_ratio``: predictive talk time over progressive's, on the same contacts;
* ``abandon_ratio``: predictive's abandoned / live answered calls over the day (progressive's is 0
  by construction); ``abandon_ratio_max``: the worst replication's;
* ``live_dials_per_s``: dialled calls per second through sipp with the live dialler
  (``bench/campaign_live.py``: a notification campaign of ``--live-calls`` numbers, at most
  ``--live-lines`` calls at once, through a trunk to a sipp UAS that answers every call and hangs up
  after 1.5 s); ``live_failed_setups``: attempts that ended ``failed`` on our side,
  ``live_carrier_failed``: calls sipp counted as failed (e.g. our ACK came too late);
* ``sim_day_cpu_s``: CPU seconds to simulate one mode's day, and ``machine_reference_ms`` (the CPU
  time of a fixed pure-Python workload) to compare it across machines.

Run: ``.venv/bin/python bench/dialer.py [--quick]``; the last stdout line is the JSON result.
``--quick`` runs two replications of four hours instead of five of eight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import machine_reference_ms

from bench.campaign_live import live_dials
from frontoffice.domain.dialer import DialMode
from frontoffice.wfm.outbound import OutboundScenario, compare_outbound
from frontoffice.wfm.simulation import Duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="two replications of four hours")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--live-calls", type=int, default=None, help="numbers dialled live (0: skip)")
    parser.add_argument("--live-lines", type=int, default=60, help="live calls at once")
    args = parser.parse_args()
    hours, replications = (4.0, 2) if args.quick else (8.0, 5)
    scenario = OutboundScenario(
        agents=50,
        answer_rate=0.25,
        ring_s=20.0,
        talk=Duration("exponential", 120.0),
        wrap_s=10.0,
        abandon_cap=0.03,
        hours=hours,
    )
    started = time.process_time()
    result = compare_outbound(scenario, replications=replications, seed=args.seed)
    cpu = time.process_time() - started
    progressive = result.runs[DialMode.PROGRESSIVE]
    predictive = result.runs[DialMode.PREDICTIVE]

    def mean(values: list[float]) -> float:
        return round(math.fsum(values) / len(values), 4)

    gain = result.predictive_gain_ratio
    metrics: dict[str, float | None] = {
        "talk_min_per_agent_hour_progressive": mean([r.talk_min_per_agent_hour for r in progressive]),
        "talk_min_per_agent_hour_predictive": mean([r.talk_min_per_agent_hour for r in predictive]),
        "predictive_gain_ratio": None if gain is None else round(gain, 4),
        "abandon_ratio": mean([r.abandon_ratio for r in predictive]),
        "abandon_ratio_max": round(max(r.abandon_ratio for r in predictive), 4),
        "live_dials_per_s": None,
        "calls_placed_per_day_progressive": mean([float(r.calls_placed) for r in progressive]),
        "calls_placed_per_day_predictive": mean([float(r.calls_placed) for r in predictive]),
        "occupancy_predictive": mean([r.occupancy for r in predictive]),
        "cap_fallback_min_predictive": mean([r.fallback_s / 60.0 for r in predictive]),
        "sim_day_cpu_s": round(cpu / (2 * replications), 3),
        "machine_reference_ms": machine_reference_ms(),
    }
    live_calls = args.live_calls if args.live_calls is not None else (300 if args.quick else 1500)
    if live_calls and shutil.which("sipp"):
        with tempfile.TemporaryDirectory() as tmp:
            live = asyncio.run(live_dials(live_calls, args.live_lines, Path(tmp)))
        metrics["live_dials_per_s"] = live["live_dials_per_s"]
        metrics["live_failed_setups"] = live["failed_setups"]
        metrics["live_carrier_failed"] = live["sipp_failed"]
        metrics["live_server_cpu_ms_per_dial"] = live["server_cpu_ms_per_dial"]
    print(
        f"progressive {mean([r.talk_min_per_agent_hour for r in progressive]):.1f} and predictive "
        f"{mean([r.talk_min_per_agent_hour for r in predictive]):.1f} talk min per agent hour; predictive "
        f"abandons {100 * mean([r.abandon_ratio for r in predictive]):.2f} % "
        f"(worst day {100 * max(r.abandon_ratio for r in predictive):.2f} %)",
        file=sys.stderr,
    )
    report = {
        "bench": "dialer",
        "quick": args.quick,
        "params": {
            "agents": scenario.agents,
            "answer_rate": scenario.answer_rate,
            "ring_s": scenario.ring_s,
            "ring_timeout_s": scenario.timeout_s,
            "talk_s": scenario.talk.mean_s,
            "talk": scenario.talk.kind,
            "wrap_s": scenario.wrap_s,
            "abandon_cap": scenario.abandon_cap,
            "hours": hours,
            "replications": replications,
            "seed": args.seed,
            "live_calls": live_calls,
            "live_lines": args.live_lines,
        },
        "metrics": metrics,
        "baseline": {
            "name": "progressive dialling on the same contact lists",
            "talk_min_per_agent_hour": metrics["talk_min_per_agent_hour_progressive"],
        },
        "notes": []
        if metrics["live_dials_per_s"] is not None
        else ["live_dials_per_s is null: sipp is not installed"],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
