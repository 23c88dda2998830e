"""Property tests: random command sequences against the engine's invariants.

A model built only from the engine's outputs follows every contact and agent; after each command the
engine's views must agree with it and the invariants must hold.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from frontoffice.domain.routing import (
    AgentConfig,
    AgentStateChanged,
    Contact,
    ContactAbandoned,
    ContactConnected,
    ContactFinished,
    ContactQueued,
    ContactRefused,
    ContactTransferred,
    EngineConfig,
    EscalationStep,
    FallbackAction,
    OfferContact,
    OfferRejected,
    OfferTimedOut,
    Output,
    QueueConfig,
    RoutingEngine,
    RoutingError,
    WithdrawOffer,
)

QUEUES = [
    QueueConfig(
        "li",
        required_skills={"s": 4},
        wrap_up_s=5,
        sticky_s=10,
        max_wait_s=60,
        overflow_queue_id="rr",
        escalations=(EscalationStep(after_s=20, relax_levels=2),),
    ),
    QueueConfig(
        "rr",
        strategy="round_robin",
        max_length=4,
        fallback_action="voicemail",
        offer_timeout_s=8,
        escalations=(EscalationStep(after_s=15, add_queues=("best",)),),
    ),
    QueueConfig("ring", strategy="ring_all", closed_action="overflow", overflow_queue_id="li"),
    QueueConfig("best", strategy="best_skill", weight=2.0, required_skills={"s": 2}, wrap_up_s=3),
    QueueConfig("rand", strategy="random_weighted", no_agents_action="refuse"),
    QueueConfig("few", strategy="fewest_contacts", max_wait_s=30, fallback_action="callback"),
    QueueConfig("occ", strategy="least_occupied"),
]
AGENTS = [
    AgentConfig("a0", {"s": 5}, {"li": 1, "ring": 1, "few": 1}, {"voice": 1, "chat": 3}),
    AgentConfig("a1", {"s": 8}, {"li": 2, "rr": 1, "best": 1, "occ": 1}, {"voice": 1, "email": 2}),
    AgentConfig("a2", {"s": 2}, {"rr": 1, "ring": 2, "rand": 1}, {"chat": 2}),
    AgentConfig("a3", {"s": 3}, {q.queue_id: 1 for q in QUEUES}, {"voice": 1, "chat": 1, "email": 1}),
    AgentConfig("a4", {"s": 10}, {"ring": 1, "rand": 1, "occ": 2, "few": 2}, {"voice": 1, "chat": 2}),
]
QUEUE_IDS = [q.queue_id for q in QUEUES]
AGENT_IDS = [a.agent_id for a in AGENTS]
CAPACITY = {a.agent_id: dict(a.capacity) for a in AGENTS}
GROUP_QUEUES = {"ring"}
COOLOFF = 5.0
CHANNELS = ["voice", "chat", "email"]
TERMINAL = (ContactFinished, ContactAbandoned, FallbackAction, ContactRefused)


class RoutingMachine(RuleBasedStateMachine):
    """Drives one engine with random commands and checks it against a model built from its outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = RoutingEngine(
            EngineConfig(missed_offers_to_not_ready=2, reject_cooloff_s=COOLOFF), rng=random.Random(1)
        )
        for queue in QUEUES:
            self.engine.upsert_queue(queue)
        for agent in AGENTS:
            self.engine.upsert_agent(agent)
        self.now = 0.0
        self.next_id = 0
        self.arrived: set[str] = set()
        self.terminal: dict[str, str] = {}
        self.channel: dict[str, str] = {}
        self.queue_of: dict[str, str] = {}
        self.offers: dict[str, set[str]] = {}
        self.connected: dict[str, str] = {}
        self.agent_state: dict[str, str] = dict.fromkeys(AGENT_IDS, "offline")
        # what the model knows of routability: presence, current config, recent declines
        self.presence: dict[str, str] = dict.fromkeys(AGENT_IDS, "available")
        self.config: dict[str, AgentConfig] = {a.agent_id: a for a in AGENTS}
        self.declined: dict[tuple[str, str], float] = {}

    # --- applying outputs to the model ------------------------------------------------------------

    def apply(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, OfferContact):
                assert out.contact_id not in self.offers, "contact offered twice at once"
                assert out.contact_id not in self.terminal and out.contact_id not in self.connected
                if len(out.agent_ids) > 1:
                    assert self.queue_of[out.contact_id] in GROUP_QUEUES and out.channel == "voice"
                for agent_id in out.agent_ids:
                    # wrap-up (and not_ready, offline) is respected across all the agent's queues
                    assert self.agent_state[agent_id] in ("available", "on_contact"), (
                        agent_id,
                        self.agent_state[agent_id],
                    )
                    assert self.presence[agent_id] == "available", agent_id
                self.offers[out.contact_id] = set(out.agent_ids)
            elif isinstance(out, WithdrawOffer):
                remaining = self.offers[out.contact_id] - set(out.agent_ids)
                assert len(remaining) == len(self.offers[out.contact_id]) - len(out.agent_ids)
                if remaining:
                    self.offers[out.contact_id] = remaining
                else:
                    del self.offers[out.contact_id]
            elif isinstance(out, OfferRejected):
                self.declined[(out.contact_id, out.agent_id)] = self.now + COOLOFF
                remaining = self.offers[out.contact_id] - {out.agent_id}
                if remaining:
                    self.offers[out.contact_id] = remaining
                else:
                    del self.offers[out.contact_id]
            elif isinstance(out, OfferTimedOut):
                for agent_id in out.agent_ids:
                    self.declined[(out.contact_id, agent_id)] = self.now + COOLOFF
                assert set(out.agent_ids) == self.offers.pop(out.contact_id)
            elif isinstance(out, ContactConnected):
                ringing = self.offers.pop(out.contact_id)
                assert out.agent_id in ringing
                if len(ringing) > 1:  # ring_all: the others are withdrawn next
                    self.offers[out.contact_id] = ringing - {out.agent_id}
                self.connected[out.contact_id] = out.agent_id
            elif isinstance(out, ContactQueued):
                self.queue_of[out.contact_id] = out.queue_id
            elif isinstance(out, ContactTransferred):
                if out.from_agent is not None:
                    self.declined[(out.contact_id, out.from_agent)] = self.now + COOLOFF
                    assert self.connected.pop(out.contact_id) == out.from_agent
            elif isinstance(out, AgentStateChanged):
                self.agent_state[out.agent_id] = out.state
                if out.state != "offline":
                    self.presence[out.agent_id] = "available" if out.ready else "not_ready"
            if isinstance(out, TERMINAL):
                assert out.contact_id in self.arrived
                assert out.contact_id not in self.terminal, "contact ended twice"
                assert out.contact_id not in self.offers
                self.terminal[out.contact_id] = type(out).__name__
                self.connected.pop(out.contact_id, None)

    def run(self, command: str, *args: object) -> None:
        """Run a command; if it raises, the engine must be unchanged."""
        before = self.snapshot()
        try:
            outputs = getattr(self.engine, command)(*args)
        except RoutingError:
            assert self.snapshot() == before, f"{command} raised but changed the engine"
            return
        if command == "upsert_agent":
            config = args[0]
            assert isinstance(config, AgentConfig)
            self.config[config.agent_id] = config
        self.apply(outputs)

    def snapshot(self) -> tuple[object, ...]:
        engine = self.engine
        return (
            tuple(engine.contact_status(cid) for cid in sorted(engine.contact_ids())),
            tuple(engine.agent_status(aid) for aid in AGENT_IDS),
            tuple(engine.waiting_contacts(qid) for qid in QUEUE_IDS),
        )

    # --- rules ------------------------------------------------------------------------------------

    @initialize(logged_in=st.sets(st.sampled_from(AGENT_IDS), min_size=2))
    def log_in(self, logged_in: set[str]) -> None:
        for agent_id in sorted(logged_in):
            self.run("agent_login", agent_id, self.now)

    @rule(
        queue=st.sampled_from(QUEUE_IDS),
        channel=st.sampled_from(CHANNELS),
        priority=st.integers(0, 2),
        preferred=st.none() | st.sampled_from(AGENT_IDS),
    )
    def arrive(self, queue: str, channel: str, priority: int, preferred: str | None) -> None:
        self.next_id += 1
        cid = f"c{self.next_id}"
        self.arrived.add(cid)
        self.channel[cid] = channel
        self.queue_of[cid] = queue
        self.run(
            "contact_arrived", Contact(cid, channel, queue, priority, preferred_agent_id=preferred), self.now
        )

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.0, 20.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.run("tick", self.now)
        deadline = self.engine.next_deadline()
        assert deadline is None or deadline > self.now

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), accept=st.booleans())
    def answer_offer(self, data: st.DataObject, accept: bool) -> None:
        cid = data.draw(st.sampled_from(sorted(self.offers)))
        agent_id = data.draw(st.sampled_from(sorted(self.offers[cid])))
        self.run("offer_accepted" if accept else "offer_rejected", cid, agent_id, self.now)

    @precondition(lambda self: self.connected)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        self.run("contact_finished", data.draw(st.sampled_from(sorted(self.connected))), self.now)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        self.run("contact_withdrawn", data.draw(st.sampled_from(self.live())), self.now)

    @rule(
        agent_id=st.sampled_from(AGENT_IDS),
        state=st.sampled_from(["available", "not_ready", "login", "logout"]),
    )
    def agent_command(self, agent_id: str, state: str) -> None:
        if state == "login":
            self.run("agent_login", agent_id, self.now)
        elif state == "logout":
            self.run("agent_logout", agent_id, self.now)
        else:
            self.run("set_agent_state", agent_id, state, self.now, "break" if state == "not_ready" else None)

    @rule(agent_id=st.sampled_from(AGENT_IDS))
    def end_wrap_up(self, agent_id: str) -> None:
        self.run("end_wrap_up", agent_id, self.now)

    @precondition(lambda self: self.live())
    @rule(data=st.data(), queue=st.sampled_from(QUEUE_IDS))
    def transfer_to_queue(self, data: st.DataObject, queue: str) -> None:
        self.run("transfer_to_queue", data.draw(st.sampled_from(self.live())), queue, self.now)

    @precondition(lambda self: self.live())
    @rule(data=st.data(), agent_id=st.sampled_from(AGENT_IDS), timeout=st.none() | st.just(6.0))
    def transfer_to_agent(self, data: st.DataObject, agent_id: str, timeout: float | None) -> None:
        self.run("transfer_to_agent", data.draw(st.sampled_from(self.live())), agent_id, self.now, timeout)

    @precondition(lambda self: self.live())
    @rule(data=st.data(), priority=st.integers(-1, 3), callback=st.booleans())
    def supervisor(self, data: st.DataObject, priority: int, callback: bool) -> None:
        cid = data.draw(st.sampled_from(self.live()))
        if callback:
            self.run("request_callback", cid, self.now)
        else:
            self.run("set_priority", cid, priority, self.now)

    @rule(queue=st.sampled_from(QUEUE_IDS), open_=st.booleans())
    def open_or_close(self, queue: str, open_: bool) -> None:
        self.run("set_queue_open", queue, open_, self.now)

    @rule(index=st.integers(0, len(AGENTS) - 1), tier=st.integers(1, 3), level=st.integers(1, 10))
    def reconfigure_agent(self, index: int, tier: int, level: int) -> None:
        # Capacity stays: the capacity invariant is about offers made under the configured capacity.
        base = AGENTS[index]
        queues = dict(base.queues)
        queues[QUEUE_IDS[(index + tier) % len(QUEUE_IDS)]] = tier
        self.run("upsert_agent", AgentConfig(base.agent_id, {"s": level}, queues, base.capacity), self.now)

    def live(self) -> list[str]:
        return sorted(self.arrived - self.terminal.keys())

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def no_contact_lost_or_duplicated(self) -> None:
        tracked = set(self.engine.contact_ids())
        assert tracked.isdisjoint(self.terminal)
        assert tracked | self.terminal.keys() == self.arrived
        for cid in tracked:
            status = self.engine.contact_status(cid)
            if status.state == "offered":
                assert set(status.agent_ids) == self.offers[cid]
            elif status.state == "connected":
                assert status.agent_ids == (self.connected[cid],)
                assert cid not in self.offers
            else:
                assert cid not in self.offers and cid not in self.connected
        waiting = [cid for qid in QUEUE_IDS for cid in self.engine.waiting_contacts(qid)]
        assert len(waiting) == len(set(waiting))
        assert set(waiting) == {c for c in tracked if self.engine.contact_status(c).state == "waiting"}

    @invariant()
    def no_agent_over_capacity(self) -> None:
        for agent_id in AGENT_IDS:
            status = self.engine.agent_status(agent_id)
            assert status.state == self.agent_state[agent_id]
            load: dict[str, int] = {}
            for cid in status.contact_ids + status.offered_contact_ids:
                load[self.channel[cid]] = load.get(self.channel[cid], 0) + 1
            for channel, count in load.items():
                assert count <= CAPACITY[agent_id].get(channel, 0), (agent_id, channel, count)
            # An agent who stopped being routable holds no offers from before (wrap-up may keep offers
            # made while the agent still handled other contacts, so it is not checked here).
            if status.state in ("not_ready", "offline"):
                assert not status.offered_contact_ids
            if status.state == "offline":
                assert not status.contact_ids

    @invariant()
    def no_waiting_contact_has_an_eligible_ready_agent(self) -> None:
        # Routing is eager: a contact waits only if no ready, qualified agent may take it (sticky and
        # transfer reservations and recent declines excepted).
        engine = self.engine
        ready: dict[str, set[str]] = {}
        for agent_id in AGENT_IDS:
            status = engine.agent_status(agent_id)
            assert status.ready == (self.presence[agent_id] == "available") or status.state == "offline"
            if status.state not in ("available", "on_contact") or not status.ready:
                continue
            load: dict[str, int] = {}
            for cid in status.contact_ids + status.offered_contact_ids:
                load[self.channel[cid]] = load.get(self.channel[cid], 0) + 1
            if load.get("voice"):
                continue
            capacity = self.config[agent_id].capacity
            ready[agent_id] = {ch for ch, cap in capacity.items() if load.get(ch, 0) < cap}
        for cid in engine.contact_ids():
            contact = engine.contact_status(cid)
            if contact.state != "waiting" or contact.target_agent is not None:
                continue
            queues = [(contact.queue_id, contact.step)]
            if contact.queue_id == "rr" and contact.step >= 1:
                queues.append(("best", 0))
            for agent_id, channels in ready.items():
                if contact.channel not in channels or self.declined.get((cid, agent_id), -1.0) > self.now:
                    continue
                config = self.config[agent_id]
                for queue_id, step in queues:
                    if queue_id in config.queues:
                        required = QUEUE_SKILL.get(queue_id, 0) - (2 if queue_id == "li" and step else 0)
                        assert config.skills.get("s", 0) < required, (cid, agent_id, queue_id)


QUEUE_SKILL = {q.queue_id: q.required_skills.get("s", 0) for q in QUEUES}

TestRoutingMachine = RoutingMachine.TestCase
TestRoutingMachine.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- order: highest score first, FIFO among equals ------------------------------------------------


@st.composite
def _arrivals(draw: st.DrawFn) -> list[tuple[float, int]]:
    return draw(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 2.0, 30.0]), st.integers(0, 2)), max_size=30))


def _served_order(arrivals: list[tuple[float, int]], k: float) -> tuple[list[str], dict[str, float]]:
    engine = RoutingEngine(EngineConfig(priority_weight_s=k))
    engine.upsert_queue(QueueConfig("q"))
    engine.upsert_agent(AgentConfig("a", queues={"q": 1}))
    engine.agent_login("a", 0.0, state="not_ready")
    now = 0.0
    base: dict[str, float] = {}
    for i, (gap, priority) in enumerate(arrivals):
        now += gap
        engine.contact_arrived(Contact(f"c{i}", "voice", "q", priority), now)
        base[f"c{i}"] = now - priority * k
    order: list[str] = []
    outputs = engine.set_agent_state("a", "available", now + 1)
    while True:
        offers = [o for o in outputs if isinstance(o, OfferContact)]
        if not offers:
            return order, base
        cid = offers[0].contact_id
        order.append(cid)
        engine.offer_accepted(cid, "a", now + 1)
        outputs = engine.contact_finished(cid, now + 1)


@settings(max_examples=200, deadline=None)
@given(arrivals=_arrivals(), k=st.sampled_from([0.0, 10.0, 60.0]))
def test_contacts_are_served_by_score_and_first_in_first_out_among_equals(
    arrivals: list[tuple[float, int]], k: float
) -> None:
    order, base = _served_order(arrivals, k)
    assert len(order) == len(arrivals)
    expected = sorted(base, key=lambda cid: (base[cid], int(cid[1:])))
    assert order == expected


# --- restore: a rebuilt engine has the same order -------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.sampled_from(["x", "y"]), st.integers(0, 3)),
        st.tuples(st.just("priority"), st.integers(0, 40), st.integers(0, 3)),
        st.tuples(st.just("move"), st.integers(0, 40), st.sampled_from(["x", "y"])),
        st.tuples(st.just("withdraw"), st.integers(0, 40), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops)
def test_a_restored_engine_keeps_every_waiting_contact_in_its_place(
    ops: list[tuple[str, object, object]],
) -> None:
    queues = [QueueConfig("x"), QueueConfig("y")]
    engine = RoutingEngine()
    for queue in queues:
        engine.upsert_queue(queue)
    queued: dict[str, ContactQueued] = {}
    priority: dict[str, int] = {}
    now = 0.0
    for n, (op, a, b) in enumerate(ops):
        now += 1.0
        live = sorted(engine.contact_ids())
        if op == "arrive":
            assert isinstance(a, str) and isinstance(b, int)
            cid = f"c{n}"
            outputs = engine.contact_arrived(Contact(cid, "voice", a, b), now)
            priority[cid] = b
        elif not live:
            continue
        else:
            assert isinstance(a, int)
            cid = live[a % len(live)]
            if op == "priority":
                assert isinstance(b, int)
                outputs = engine.set_priority(cid, b, now)
                priority[cid] = b
            elif op == "move":
                assert isinstance(b, str)
                outputs = engine.transfer_to_queue(cid, b, now)
            else:
                outputs = engine.contact_withdrawn(cid, now)
        queued.update({o.contact_id: o for o in outputs if isinstance(o, ContactQueued)})

    rebuilt = RoutingEngine()
    for queue in queues:
        rebuilt.upsert_queue(queue)
    for cid in reversed(engine.contact_ids()):
        q = queued[cid]
        rebuilt.restore_waiting_contact(
            Contact(cid, "voice", q.queue_id, priority[cid]), q.enqueued_at, q.seq
        )
    assert rebuilt.resume(now) == []
    for queue_id in ("x", "y"):
        assert rebuilt.waiting_contacts(queue_id) == engine.waiting_contacts(queue_id)
        for cid in engine.waiting_contacts(queue_id):
            assert rebuilt.position(cid) == engine.position(cid)
