"""Benchmark: routing decisions of the ACD engine against a straightforward scanning router.

Scenario: 1,000 agents in 50 queues over 20 skills (voice, one call each, longest idle, FIFO), all agents
busy and 10,000 contacts waiting; then a stream of events alternating "an agent finishes its call" (a
decision: which waiting contact it gets) and "a contact arrives". Every offer is accepted at once.

The same stream goes through a reference router written here, which scans all agents when a contact
arrives and all waiting contacts when an agent is freed. Both must make the same assignments; the
reference runs on a prefix of the stream to keep the run short and its rate is reported.

Two passes. Pass 1 drives the engine and the reference together through the warm-up and the stream
(the reference only through its first ``reference_events`` events), compares every assignment, and
records the calls each received. Pass 2 replays both recordings from the start of the stream (the
engine: a second engine given the warm-up's calls; the reference: a copy), in tight loops, alternating
chunks of the two so both run under the same machine conditions; the engine's replay must make the same
decisions as pass 1.

Metrics: ``decisions_per_s`` (decisions / engine CPU time of the commands that bring events: arrivals
and agents finishing; ``decisions_per_s_with_accepts`` also counts the ``offer_accepted`` that follows
every offer, which the reference has no equivalent of), ``p50_ms`` / ``p99_ms`` (wall-clock latency of
the commands that made a decision; ``accept_*_ms`` for the accepts),
``reference_decisions_per_s`` (decisions / reference CPU time, arrivals included),
``speedup_vs_reference`` (the ratio of the two), ``same_assignments`` (every assignment of the warm-up
and the prefix is identical in both, and the replay made the same number of decisions). Rates use the
thread's CPU time (one core), so other processes on a shared machine distort them much less than
wall-clock time would.

``params.engine`` says whether the engine ran compiled (mypyc, the optional build step of setup.py) or
as plain Python (``FRONTOFFICE_PURE_PYTHON=1`` forces the latter).

Run: ``.venv/bin/python bench/routing.py [--quick]``; the last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frontoffice.domain.routing import (
    COMPILED,
    AgentConfig,
    Contact,
    EngineConfig,
    OfferContact,
    Output,
    QueueConfig,
    RoutingEngine,
)

AGENTS = 1000
QUEUES = 50
SKILLS = 20
WAITING = 10_000
SEED = 20261127
# Seconds between two events of the stream: only orders events, routing does not depend on it.
EVENT_GAP_S = 0.01
# The stream calls tick() every this many events (once a simulated second), as a service would.
TICK_EVERY = 100


@dataclass
class Scenario:
    """Queues (required skills) and agents (skills, memberships with tiers), drawn from one seed."""

    queues: dict[str, dict[str, int]]
    agents: dict[str, tuple[dict[str, int], dict[str, int]]]
    #: queue ids to draw arrivals from, weighted by how many qualified members each has.
    arrival_queues: list[str]


def build_scenario(rng: random.Random) -> Scenario:
    skills = [f"s{i}" for i in range(SKILLS)]
    queues = {
        f"q{i}": {s: rng.randint(1, 6) for s in rng.sample(skills, rng.choice((1, 1, 2)))}
        for i in range(QUEUES)
    }
    agents: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    qualified_count = dict.fromkeys(queues, 0)
    for i in range(AGENTS):
        agent_skills = {s: rng.randint(1, 10) for s in rng.sample(skills, 2)}
        memberships: dict[str, int] = {}
        for queue_id in rng.sample(sorted(queues), rng.randint(3, 6)):
            memberships[queue_id] = rng.randint(1, 3)
            for skill, level in queues[queue_id].items():
                # About one membership in ten lacks the level: the skill check must matter.
                wanted = rng.randint(level, 10) if rng.random() > 0.1 else level - 1
                if wanted >= 1:
                    agent_skills[skill] = max(agent_skills.get(skill, 0), wanted)
        for queue_id in memberships:
            if all(agent_skills.get(s, 0) >= lvl for s, lvl in queues[queue_id].items()):
                qualified_count[queue_id] += 1
        agents[f"a{i}"] = (agent_skills, memberships)
    arrival_queues = [q for q, n in qualified_count.items() for _ in range(n)]
    return Scenario(queues, agents, arrival_queues)


class ReferenceRouter:
    """The obvious router: a new contact scans all agents, a freed agent scans all waiting contacts."""

    def __init__(self, scenario: Scenario) -> None:
        self.queues = scenario.queues
        self.skills = {aid: skills for aid, (skills, _) in scenario.agents.items()}
        self.memberships = {aid: members for aid, (_, members) in scenario.agents.items()}
        self.order = {aid: n for n, aid in enumerate(scenario.agents)}
        self.idle_since: dict[str, float | None] = dict.fromkeys(scenario.agents)  # None: busy
        self.contact_of: dict[str, str] = {}  # busy agent -> contact
        self.waiting: dict[str, tuple[float, int, str]] = {}  # contact -> (enqueued_at, seq, queue)
        self.seq = 0

    def qualified(self, agent_id: str, queue_id: str) -> bool:
        skills = self.skills[agent_id]
        return all(skills.get(s, 0) >= level for s, level in self.queues[queue_id].items())

    def login(self, agent_id: str, now: float) -> str | None:
        self.idle_since[agent_id] = now
        return self.agent_freed(agent_id, now)

    def arrive(self, contact_id: str, queue_id: str, now: float) -> str | None:
        """Returns the agent the contact is assigned to, if any."""
        self.seq += 1
        best: tuple[int, float, int] | None = None
        best_agent = None
        for agent_id, idle in self.idle_since.items():
            if idle is None:
                continue
            tier = self.memberships[agent_id].get(queue_id)
            if tier is None or not self.qualified(agent_id, queue_id):
                continue
            key = (tier, idle, self.order[agent_id])
            if best is None or key < best:
                best, best_agent = key, agent_id
        if best_agent is None:
            self.waiting[contact_id] = (now, self.seq, queue_id)
            return None
        self.idle_since[best_agent] = None
        self.contact_of[best_agent] = contact_id
        return best_agent

    def finish(self, agent_id: str, now: float) -> str | None:
        del self.contact_of[agent_id]
        self.idle_since[agent_id] = now
        return self.agent_freed(agent_id, now)

    def agent_freed(self, agent_id: str, now: float) -> str | None:
        """Returns the contact the agent is assigned, if any."""
        best: tuple[float, int] | None = None
        best_contact = None
        members = self.memberships[agent_id]
        for contact_id, (enqueued_at, seq, queue_id) in self.waiting.items():
            if queue_id in members and self.qualified(agent_id, queue_id):
                key = (enqueued_at, seq)
                if best is None or key < best:
                    best, best_contact = key, contact_id
        if best_contact is None:
            return None
        del self.waiting[best_contact]
        self.idle_since[agent_id] = None
        self.contact_of[agent_id] = best_contact
        return best_contact


Command = tuple[str, tuple[object, ...]]


@dataclass
class EngineDriver:
    """Feeds the engine, accepts every offer at once, and records the commands it sent."""

    engine: RoutingEngine
    contact_of: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    busy_index: dict[str, int] = field(default_factory=dict)
    recording: bool = False
    commands: list[Command] = field(default_factory=list)
    decisions: int = 0

    def replay(self, engine: RoutingEngine) -> RoutingEngine:
        """Send the recorded commands to another engine (built the same way): it ends in this state."""
        for name, call_args in self.commands:
            getattr(engine, name)(*call_args)
        return engine

    def run(self, command: str, *args: object) -> list[tuple[str, str]]:
        """Send one command (and accept the offers it makes); returns the (contact, agent) assignments."""
        made = []
        pending: list[Command] = [(command, args)]
        while pending:
            name, call_args = pending.pop()
            if self.recording:
                self.commands.append((name, call_args))
            outputs: list[Output] = getattr(self.engine, name)(*call_args)
            now = call_args[-1]
            for out in outputs:
                if isinstance(out, OfferContact):
                    agent_id = out.agent_ids[0]
                    pending.append(("offer_accepted", (out.contact_id, agent_id, now)))
                    self.contact_of[agent_id] = out.contact_id
                    self.busy_index[agent_id] = len(self.busy)
                    self.busy.append(agent_id)
                    made.append((out.contact_id, agent_id))
        self.decisions += len(made)
        return made

    def release(self, agent_id: str) -> str:
        """Forget a busy agent's contact (it is about to finish it)."""
        index = self.busy_index.pop(agent_id)
        last = self.busy.pop()
        if last != agent_id:
            self.busy[index] = last
            self.busy_index[last] = index
        return self.contact_of.pop(agent_id)


def build_engine(scenario: Scenario) -> RoutingEngine:
    engine = RoutingEngine(EngineConfig())
    for queue_id, required in scenario.queues.items():
        engine.upsert_queue(QueueConfig(queue_id, required_skills=required, offer_timeout_s=30.0))
    for agent_id, (skills, memberships) in scenario.agents.items():
        engine.upsert_agent(AgentConfig(agent_id, skills, memberships, {"voice": 1}))
    return engine


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


@dataclass
class Recording:
    """What pass 1 hands to pass 2: both routers as they were when the stream began, and the calls
    each received during the stream (the reference only during its prefix)."""

    engine: RoutingEngine
    reference: ReferenceRouter
    engine_calls: list[Command]
    reference_calls: list[Command]
    engine_decisions: int
    same_assignments: bool
    compared_assignments: int


def verify_and_record(stream_events: int, reference_events: int) -> Recording:
    """Pass 1: drive the engine and the reference through warm-up and the start of the stream, compare
    their assignments, and record the calls each received."""
    rng = random.Random(SEED)
    scenario = build_scenario(rng)
    # Recording from the start: the warm-up's calls rebuild the engine as it was when the stream began
    # (an engine copy would do, but the compiled engine cannot be deep-copied).
    driver = EngineDriver(build_engine(scenario), recording=True)
    reference = ReferenceRouter(scenario)
    engine_made: list[tuple[str, str]] = []
    reference_made: list[tuple[str, str]] = []
    reference_calls: list[Command] = []
    now = 0.0
    for agent_id in scenario.agents:
        now += EVENT_GAP_S
        engine_made += driver.run("agent_login", agent_id, now)
        contact = reference.login(agent_id, now)
        if contact is not None:
            reference_made.append((contact, agent_id))
    next_id = 0

    def arrival(now: float, compare: bool, record: bool) -> None:
        nonlocal next_id
        next_id += 1
        contact_id = f"c{next_id}"
        queue_id = rng.choice(scenario.arrival_queues)
        engine_made.extend(driver.run("contact_arrived", Contact(contact_id, "voice", queue_id), now))
        if compare:
            if record:
                reference_calls.append(("arrive", (contact_id, queue_id, now)))
            agent_id = reference.arrive(contact_id, queue_id, now)
            if agent_id is not None:
                reference_made.append((contact_id, agent_id))

    # Warm-up: everyone logs in, contacts arrive until all agents are busy and WAITING wait.
    while len(reference.waiting) < WAITING:
        now += EVENT_GAP_S
        arrival(now, compare=True, record=False)
    warm_up_assignments = len(reference_made)
    engine_at_start = driver.replay(build_engine(scenario))
    reference_at_start = copy.deepcopy(reference)
    driver.commands = []
    driver.decisions = 0
    compared_engine: list[tuple[str, str]] = []
    for n in range(stream_events):
        now += EVENT_GAP_S
        compare = n < reference_events
        if n % 2 == 0:
            agent_id = driver.busy[rng.randrange(len(driver.busy))]
            engine_made.extend(driver.run("contact_finished", driver.release(agent_id), now))
            if compare:
                reference_calls.append(("finish", (agent_id, now)))
                contact = reference.finish(agent_id, now)
                if contact is not None:
                    reference_made.append((contact, agent_id))
        else:
            arrival(now, compare, record=True)
        if n % TICK_EVERY == TICK_EVERY - 1:
            # As the service does: run due timers (here, only dead offer timers to discard).
            engine_made.extend(driver.run("tick", now))
        if n + 1 == reference_events:
            compared_engine = engine_made[: len(reference_made)]
    return Recording(
        engine=engine_at_start,
        reference=reference_at_start,
        engine_calls=driver.commands,
        reference_calls=reference_calls,
        engine_decisions=driver.decisions,
        same_assignments=compared_engine == reference_made and len(reference_made) > warm_up_assignments,
        compared_assignments=len(reference_made),
    )


@dataclass
class Measurement:
    """Pass 2 figures."""

    engine_cpu_s: float
    #: share of the engine's wall time spent in offer_accepted (the agent's answer, not a decision).
    accept_share: float
    latencies_ns: list[int]
    accept_latencies_ns: list[int]
    decisions: int
    reference_cpu_s: float
    reference_decisions: int


def measure(recording: Recording, chunks: int) -> Measurement:
    """Pass 2: replay both call streams in tight loops, alternating chunks of the two so that both
    see the same machine conditions."""
    engine, reference = recording.engine, recording.reference
    engine_calls = [(getattr(engine, name), args) for name, args in recording.engine_calls]
    reference_calls = [(getattr(reference, name), args) for name, args in recording.reference_calls]
    latencies: list[int] = []
    accept_latencies: list[int] = []
    accept_method = engine.offer_accepted
    wall_total = 0
    decisions = reference_decisions = 0
    engine_ns = reference_ns = 0
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    engine_step = -(-len(engine_calls) // chunks)
    reference_step = -(-len(reference_calls) // chunks)
    for chunk in range(chunks):
        cpu_start = cpu()
        for method, args in engine_calls[chunk * engine_step : (chunk + 1) * engine_step]:
            start = clock()
            outputs = method(*args)
            elapsed = clock() - start
            wall_total += elapsed
            if method == accept_method:
                accept_latencies.append(elapsed)
            for out in outputs:
                if type(out) is OfferContact:
                    decisions += 1
                    latencies.append(elapsed)
        engine_ns += cpu() - cpu_start
        cpu_start = cpu()
        for method, args in reference_calls[chunk * reference_step : (chunk + 1) * reference_step]:
            if method(*args) is not None:
                reference_decisions += 1
        reference_ns += cpu() - cpu_start
    return Measurement(
        engine_cpu_s=engine_ns / 1e9,
        accept_share=sum(accept_latencies) / wall_total,
        latencies_ns=latencies,
        accept_latencies_ns=accept_latencies,
        decisions=decisions,
        reference_cpu_s=reference_ns / 1e9,
        reference_decisions=reference_decisions,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter stream (same scenario size)")
    args = parser.parse_args()
    stream_events = 20_000 if args.quick else 200_000
    reference_events = 1_000 if args.quick else 3_000

    recording = verify_and_record(stream_events, reference_events)
    # The recording holds every command and contact of the stream: without this, each full garbage
    # collection during the replay would walk it and bill the engine (and the reference) for it.
    gc.collect()
    gc.freeze()
    m = measure(recording, chunks=20)
    # Routing decisions happen in the commands that bring an event (a contact arrives, an agent is
    # freed); the reference models only those. offer_accepted (the agent's answer) is reported apart.
    decisions_per_s = m.decisions / (m.engine_cpu_s * (1 - m.accept_share))
    all_commands_rate = m.decisions / m.engine_cpu_s
    reference_rate = m.reference_decisions / m.reference_cpu_s
    result = {
        "bench": "routing",
        "quick": args.quick,
        "params": {
            "agents": AGENTS,
            "queues": QUEUES,
            "skills": SKILLS,
            "waiting": WAITING,
            "stream_events": stream_events,
            "stream_commands": len(recording.engine_calls),
            "reference_events": reference_events,
            "compared_assignments": recording.compared_assignments,
            "engine": "compiled (mypyc)" if COMPILED else "python",
        },
        "metrics": {
            "decisions_per_s": round(decisions_per_s, 1),
            "p50_ms": round(percentile(m.latencies_ns, 0.50), 4),
            "p99_ms": round(percentile(m.latencies_ns, 0.99), 4),
            "reference_decisions_per_s": round(reference_rate, 1),
            "speedup_vs_reference": round(decisions_per_s / reference_rate, 1) if reference_rate else 0.0,
            # the replay must make exactly the decisions of the verified pass
            "same_assignments": recording.same_assignments and m.decisions == recording.engine_decisions,
            "decisions": m.decisions,
            "decisions_per_s_with_accepts": round(all_commands_rate, 1),
            "speedup_with_accepts": round(all_commands_rate / reference_rate, 1),
            "accept_p50_ms": round(percentile(m.accept_latencies_ns, 0.50), 4),
            "accept_p99_ms": round(percentile(m.accept_latencies_ns, 0.99), 4),
        },
        "baseline": {"name": "reference scan router", "decisions_per_s": round(reference_rate, 1)},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
