"""The engine's figures across a rebuild and live configuration changes (issue 12)."""

from __future__ import annotations

from frontoffice.domain.routing import (
    AgentConfig,
    ContactConnected,
    ContactEscalated,
    EscalationStep,
    OfferContact,
    QueueConfig,
    RoutingEngine,
)

from .helpers import agent, make_engine, of_type, voice

START = 1_780_000_000.0  # a wall-clock time, as the live server passes


def test_contacts_today_restored_from_the_store_steer_fewest_contacts() -> None:
    engine = make_engine(queues=[QueueConfig("q", strategy="fewest_contacts")], login=False)
    for agent_id in ("a1", "a2"):
        engine.upsert_agent(agent(agent_id))
    engine.restore_contacts_today("a1", 5)
    engine.restore_contacts_today("a2", 2)
    engine.restore_agent("a1", "available", START - 100)
    engine.restore_agent("a2", "available", START - 50)
    engine.resume(START)
    assert engine.agent_status("a1").contacts_today == 5
    out = engine.contact_arrived(voice("c1"), START)
    assert [o.agent_ids for o in of_type(out, OfferContact)] == [("a2",)]


def test_an_agent_never_signed_in_is_offline_since_the_engine_learned_of_them() -> None:
    engine = RoutingEngine()
    engine.upsert_queue(QueueConfig("q"))
    engine.upsert_agent(agent("old"))  # from the store, when the engine is rebuilt
    engine.upsert_agent(agent("signed_out"))
    engine.restore_agent("signed_out", "offline", START - 3600)
    engine.resume(START)
    engine.upsert_agent(agent("new"), START + 10)  # created by an administrator later
    assert engine.agent_status("old").since == START
    assert engine.agent_status("signed_out").since == START - 3600
    assert engine.agent_status("new").since == START + 10


def test_an_escalation_added_while_contacts_wait_reaches_the_waiting_contacts() -> None:
    expert = {"billing": 5}
    engine = make_engine(
        queues=[QueueConfig("q", required_skills=expert)],
        agents=[AgentConfig("junior", skills={"billing": 2}, queues={"q": 1})],
        now=START,
    )
    engine.contact_arrived(voice("waits"), START)
    engine.contact_arrived(voice("calls_back"), START + 5)
    engine.request_callback("calls_back", START + 6)
    engine.upsert_queue(
        QueueConfig("q", required_skills=expert, escalations=(EscalationStep(after_s=60, relax_levels=3),)),
        START + 30,
    )
    assert engine.next_deadline() == START + 60
    out = engine.tick(START + 65)
    assert [o.contact_id for o in of_type(out, ContactEscalated)] == ["waits", "calls_back"]
    assert [o.contact_id for o in of_type(out, OfferContact)] == ["waits"]
    engine.offer_accepted("waits", "junior", START + 66)
    out = engine.contact_finished("waits", START + 70)
    assert [o.contact_id for o in of_type(out, OfferContact)] == ["calls_back"]


def test_an_escalation_step_already_due_applies_at_the_next_tick() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", required_skills={"billing": 5})],
        agents=[AgentConfig("junior", skills={"billing": 2}, queues={"q": 1})],
        now=START,
    )
    engine.contact_arrived(voice("c1"), START)
    engine.upsert_queue(
        QueueConfig(
            "q",
            required_skills={"billing": 5},
            escalations=(EscalationStep(after_s=10, relax_levels=3),),
        ),
        START + 100,
    )
    out = engine.tick(START + 100)
    assert [o.contact_id for o in of_type(out, OfferContact)] == ["c1"]
    out = engine.offer_accepted("c1", "junior", START + 101)
    assert [o.waited_s for o in of_type(out, ContactConnected)] == [101]
