"""Benchmark: the workforce-planning models (minimum staffing and a day plan).

Scenarios (AHT 180 s, target 80 % answered within 20 s):

* ``erlang_c_300_ms``: Erlang C minimum staffing at 300 erlangs (100 calls a minute);
* ``erlang_c_8333_ms``: the same at 8,333 erlangs;
* ``erlang_a_300_ms``: Erlang A minimum staffing at 300 erlangs with a mean patience of 120 s
  (the answer, 276, lies below the traffic);
* ``day_96_ms``: a day plan of 96 fifteen-minute intervals (two daily peaks of 100 calls a
  minute, Erlang C agents with 30 % shrinkage and an 85 % occupancy cap, lines at 1 % blocking
  with 20 s of IVR).
* ``sim_day_s``: one simulated day at 100 calls a minute (about 144,000 calls), exponential
  handling with AHT 180 s, one queue and one skill, through the real routing engine
  (``frontoffice.wfm.simulation``). 100/min × 180 s is 300 erlangs, so 300 agents would make an
  unstable queue; the day uses **309 agents, the Erlang C minimum for 80/20** (occupancy 97 %).
  ``floor_sim_day_s`` times a minimal M/M/c simulation written here (an event heap and a FIFO
  line, no routing logic) on the same day, and ``sim_ratio_to_floor`` is their ratio.
  ``engine_only_day_s`` drives the same engine with the least code that can (no statistics, no
  patience, no occupancy): ``engine_share_of_sim_day`` is the part of the day that is the engine's
  own work, so what remains is the simulation's overhead. All three are
  the median thread CPU time of whole days (``*_wall_s``: wall clock); both report their service
  level next to Erlang C's as a sanity check.

Each figure is the median over many repetitions of the time of one call, measured as the thread's
CPU time so that other load on the machine does not inflate it; ``*_wall_ms`` gives the wall-clock
medians of the same runs. The baseline is the
textbook search, run here on the same inputs: recompute Erlang C from zero lines for every
candidate N, counting up from N = floor(A) + 1. Both must find the same number of agents
(``same_answers``).

``params.engine`` says whether the routing engine ran compiled (mypyc, the optional build step of
setup.py) or as plain Python; ``FRONTOFFICE_PURE_PYTHON=1`` forces the latter, to compare the two.

Run: ``.venv/bin/python bench/planning.py [--quick]``; the last stdout line is the JSON result.
``--profile`` instead prints where one simulated day spends its time (cProfile, to stdout).
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import json
import math
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frontoffice.domain.routing import (
    COMPILED,
    EVENTS,
    AgentConfig,
    EngineConfig,
    OfferContact,
    QueueConfig,
    RoutingEngine,
)
from frontoffice.wfm import (
    StaffingTarget,
    erlang_a_staffing,
    erlang_c_metrics,
    erlang_c_staffing,
    plan_day,
)
from frontoffice.wfm.simulation import replication_rngs, run_replication, single_queue_scenario

AHT_S = 180.0
PATIENCE_S = 120.0
TARGET = StaffingTarget(0.8, 20.0)
DAY_TARGET = StaffingTarget(0.8, 20.0, max_occupancy=0.85, shrinkage=0.3)
PEAK_CALLS_PER_15_MIN = 1500.0  # 100 calls a minute
SIM_CALLS_PER_S = 100.0 / 60.0
SIM_DAY_S = 86400.0

Metrics = dict[str, float | int | bool]


def median_ms(call: Callable[[], object], repeats: int, batch: int) -> tuple[float, float]:
    """Medians over ``repeats`` batches of the time of one call, in ms: ``(thread CPU, wall)``.

    The thread's CPU time is the reported figure: on a shared machine it does not count the time
    other processes hold the CPU, which wall time does. Wall time is reported next to it.
    """
    call()  # warm up caches and specialisations
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(repeats):
        start_cpu, start_wall = time.thread_time_ns(), time.perf_counter_ns()
        for _ in range(batch):
            call()
        cpu.append((time.thread_time_ns() - start_cpu) / batch / 1e6)
        wall.append((time.perf_counter_ns() - start_wall) / batch / 1e6)
    return statistics.median(cpu), statistics.median(wall)


def reference_erlang_c_agents(traffic: float, aht_s: float, level: float, answer_s: float) -> int:
    """The textbook search: full Erlang B recursion from zero lines for every candidate N."""
    n = math.floor(traffic) + 1
    while True:
        b = 1.0
        for k in range(1, n + 1):
            b = traffic * b / (k + traffic * b)
        c = n * b / (n - traffic * (1.0 - b))
        if 1.0 - c * math.exp(-(n - traffic) * answer_s / aht_s) >= level:
            return n
        n += 1


def day_forecast() -> list[tuple[datetime, float]]:
    """96 quarter-hours: night trickle, a morning and an afternoon peak of 100 calls a minute."""
    midnight = datetime(2026, 3, 2)
    rows: list[tuple[datetime, float]] = []
    for i in range(96):
        hour = i / 4
        shape = math.exp(-(((hour - 11.0) / 2.5) ** 2)) + 0.9 * math.exp(-(((hour - 16.0) / 2.5) ** 2))
        rows.append(
            (midnight + timedelta(minutes=15 * i), float(round(PEAK_CALLS_PER_15_MIN * max(0.02, shape))))
        )
    return rows


def analytic_metrics(quick: bool) -> tuple[Metrics, Metrics]:
    """Erlang C/A staffing and the day plan; returns ``(metrics, baseline)``."""
    repeats = 61 if quick else 601
    metrics: Metrics = {}

    forecast = day_forecast()
    timed: list[tuple[str, Callable[[], object], int, int]] = [
        ("erlang_c_300", lambda: erlang_c_staffing(300.0, AHT_S, TARGET), repeats, 100),
        ("erlang_c_8333", lambda: erlang_c_staffing(8333.0, AHT_S, TARGET), repeats, 10),
        ("erlang_a_300", lambda: erlang_a_staffing(300.0, AHT_S, PATIENCE_S, TARGET), repeats // 3, 3),
        (
            "day_96",
            lambda: plan_day(forecast, AHT_S, DAY_TARGET, interval_s=900, blocking=0.01, ivr_s=20.0),
            repeats // 3,
            3,
        ),
    ]
    for name, call, times, batch in timed:
        metrics[f"{name}_ms"], metrics[f"{name}_wall_ms"] = median_ms(call, times, batch)

    c300 = erlang_c_staffing(300.0, AHT_S, TARGET).agents
    c8333 = erlang_c_staffing(8333.0, AHT_S, TARGET).agents
    a300 = erlang_a_staffing(300.0, AHT_S, PATIENCE_S, TARGET).agents
    day = plan_day(forecast, AHT_S, DAY_TARGET, interval_s=900, blocking=0.01, ivr_s=20.0)
    metrics.update(
        erlang_c_300_agents=c300,
        erlang_c_8333_agents=c8333,
        erlang_a_300_agents=a300,
        day_96_peak_agents=day.peak_agents,
        day_96_lines=day.lines,
    )

    ref300, _ = median_ms(lambda: reference_erlang_c_agents(300.0, AHT_S, 0.8, 20.0), 11 if quick else 41, 3)
    ref8333, _ = median_ms(lambda: reference_erlang_c_agents(8333.0, AHT_S, 0.8, 20.0), 3 if quick else 9, 1)
    same = (
        reference_erlang_c_agents(300.0, AHT_S, 0.8, 20.0) == c300
        and reference_erlang_c_agents(8333.0, AHT_S, 0.8, 20.0) == c8333
    )
    metrics.update(
        reference_erlang_c_300_ms=ref300,
        reference_erlang_c_8333_ms=ref8333,
        speedup_vs_reference_300=ref300 / metrics["erlang_c_300_ms"],
        speedup_vs_reference_8333=ref8333 / metrics["erlang_c_8333_ms"],
        same_answers=same,
    )
    baseline: Metrics = {"erlang_c_300_ms": ref300, "erlang_c_8333_ms": ref8333}
    return metrics, baseline


def floor_mmc_day(rate: float, aht_s: float, agents: int, horizon_s: float, seed: int) -> tuple[int, float]:
    """The floor: a minimal M/M/c simulation (event heap, FIFO line, a count of free agents).

    Returns ``(calls, service level in 20 s)``.
    """
    rng = random.Random(seed)
    expo = rng.expovariate
    mu = 1.0 / aht_s
    push, pop = heapq.heappush, heapq.heappop
    heap: list[tuple[float, int]] = [(expo(rate), 0)]  # (time, 0 arrival / 1 departure)
    line: deque[float] = deque()
    free = agents
    calls = within = 0
    while heap:
        t, kind = pop(heap)
        if kind == 0:
            calls += 1
            following = t + expo(rate)
            if following < horizon_s:
                push(heap, (following, 0))
            if free:
                free -= 1
                within += 1
                push(heap, (t + expo(mu), 1))
            else:
                line.append(t)
        elif line:
            if t - line.popleft() <= 20.0:
                within += 1
            push(heap, (t + expo(mu), 1))
        else:
            free += 1
    return calls, within / calls


def engine_only_day(rate: float, aht_s: float, agents: int, horizon_s: float, seed: int) -> int:
    """The routing engine driven by the least code that can drive it (no statistics, no patience, no
    events: only the decisions come back): how much of ``sim_day_s`` is the engine's own. Returns the
    number of calls."""
    rng = random.Random(seed)
    expo = rng.expovariate
    mu = 1.0 / aht_s
    engine = RoutingEngine(EngineConfig(), rng=random.Random(seed), omit=EVENTS)
    engine.upsert_queue(QueueConfig("main"))
    for i in range(agents):
        engine.upsert_agent(AgentConfig(f"a{i}", queues={"main": 1}, capacity={"voice": 1}))
        engine.agent_login(f"a{i}", 0.0)
    push, pop = heapq.heappush, heapq.heappop
    heap: list[tuple[float, int, str]] = [(expo(rate), 0, "")]
    calls = 0
    while heap:
        t, kind, cid = pop(heap)
        if kind == 0:
            calls += 1
            following = t + expo(rate)
            if following < horizon_s:
                push(heap, (following, 0, ""))
            outs = engine.arrive(str(calls), "voice", "main", t)
        else:
            outs = engine.contact_finished(cid, t)
        for o in outs:
            if type(o) is OfferContact:
                outs.extend(engine.offer_accepted(o.contact_id, o.agent_ids[0], t))
                push(heap, (t + expo(mu), 1, o.contact_id))
        engine.next_deadline()
    return calls


def simulation_metrics(quick: bool) -> tuple[Metrics, Metrics]:
    """One simulated day through the routing engine against the bare M/M/c floor."""
    traffic = SIM_CALLS_PER_S * AHT_S
    agents = erlang_c_staffing(traffic, AHT_S, TARGET).agents  # 309 for 300 Erl at 80/20
    scenario = single_queue_scenario(SIM_CALLS_PER_S, AHT_S, agents, hours=SIM_DAY_S / 3600.0, warmup_s=0.0)
    days = 1 if quick else 3
    sim_cpu: list[float] = []
    sim_wall: list[float] = []
    floor_cpu: list[float] = []
    floor_wall: list[float] = []
    sim_sl: list[float] = []
    floor_sl: list[float] = []
    engine_cpu: list[float] = []
    calls: list[int] = []
    for day in range(days):
        rng, engine_rng = replication_rngs(day, 0)
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        run = run_replication(scenario, rng, engine_rng)
        sim_cpu.append(time.thread_time() - start_cpu)
        sim_wall.append(time.perf_counter() - start_wall)
        calls.append(run.arrivals)
        sim_sl.append(run.measured.answered_within / run.measured.offered)
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        _, sl = floor_mmc_day(SIM_CALLS_PER_S, AHT_S, agents, SIM_DAY_S, day)
        floor_cpu.append(time.thread_time() - start_cpu)
        floor_wall.append(time.perf_counter() - start_wall)
        floor_sl.append(sl)
        start_cpu = time.thread_time()
        engine_only_day(SIM_CALLS_PER_S, AHT_S, agents, SIM_DAY_S, day)
        engine_cpu.append(time.thread_time() - start_cpu)
    sim_s = statistics.median(sim_cpu)
    floor_s = statistics.median(floor_cpu)
    metrics: Metrics = {
        "sim_day_s": sim_s,
        "floor_sim_day_s": floor_s,
        "sim_ratio_to_floor": sim_s / floor_s,
        "sim_day_wall_s": statistics.median(sim_wall),
        "engine_only_day_s": statistics.median(engine_cpu),
        "engine_share_of_sim_day": statistics.median(engine_cpu) / sim_s,
        "floor_sim_day_wall_s": statistics.median(floor_wall),
        "sim_day_calls": round(statistics.mean(calls)),
        "sim_day_agents": agents,
        "sim_day_us_per_call": sim_s / statistics.mean(calls) * 1e6,
        "sim_day_service_level": statistics.mean(sim_sl),
        "floor_day_service_level": statistics.mean(floor_sl),
        "erlang_c_day_service_level": erlang_c_metrics(traffic, agents, AHT_S, 20.0).service_level,
    }
    return metrics, {"floor_sim_day_s": floor_s}


def profile_sim_day() -> None:
    """Print where one simulated day spends its time."""
    traffic = SIM_CALLS_PER_S * AHT_S
    agents = erlang_c_staffing(traffic, AHT_S, TARGET).agents
    scenario = single_queue_scenario(SIM_CALLS_PER_S, AHT_S, agents, hours=SIM_DAY_S / 3600.0, warmup_s=0.0)
    rng, engine_rng = replication_rngs(0, 0)
    profiler = cProfile.Profile()
    profiler.runcall(run_replication, scenario, rng, engine_rng)
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


# Each section measures one part of the planning toolkit and returns (metrics, baseline figures).
SECTIONS: list[Callable[[bool], tuple[Metrics, Metrics]]] = [analytic_metrics, simulation_metrics]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    parser.add_argument("--profile", action="store_true", help="profile one simulated day and stop")
    args = parser.parse_args()
    if args.profile:
        profile_sim_day()
        return

    metrics: Metrics = {}
    baseline: Metrics = {}
    for section in SECTIONS:
        started = time.perf_counter()
        found, reference = section(args.quick)
        metrics.update(found)
        baseline.update(reference)
        print(f"{section.__name__}: {time.perf_counter() - started:.1f} s")
    for key, value in metrics.items():
        print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")

    result = {
        "bench": "planning",
        "quick": args.quick,
        "params": {
            "aht_s": AHT_S,
            "service_level": "80/20",
            "patience_s": PATIENCE_S,
            "day_intervals": 96,
            "day_interval_s": 900,
            "peak_calls_per_min": PEAK_CALLS_PER_15_MIN / 15,
            "sim_calls_per_min": SIM_CALLS_PER_S * 60,
            "sim_agents": metrics.get("sim_day_agents"),
            "sim_day_s": SIM_DAY_S,
            "timer": "median thread CPU time per call (per simulated day for sim_*)",
            "engine": "compiled (mypyc)" if COMPILED else "python",
        },
        "metrics": {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()},
        "baseline": {
            "name": "Erlang B recomputed from zero lines per candidate N; bare M/M/c event loop for the day",
            **baseline,
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
