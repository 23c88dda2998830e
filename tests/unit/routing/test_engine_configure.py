"""Site-wide engine settings change live: waiting contacts are re-scored, agents re-checked."""

from __future__ import annotations

from frontoffice.domain.routing import AgentConfig, Contact, EngineConfig, OfferContact, QueueConfig

from .helpers import make_engine, of_type, voice


def test_a_new_priority_weight_reorders_waiting_contacts_at_once() -> None:
    engine = make_engine(config=EngineConfig(priority_weight_s=60))
    engine.contact_arrived(voice("old", priority=0), 0.0)
    engine.contact_arrived(voice("vip", priority=1), 30.0)  # one point = a minute: ahead of "old"
    assert engine.waiting_contacts("q") == ("vip", "old")

    engine.configure(EngineConfig(priority_weight_s=0), 40.0)  # priorities no longer count

    assert engine.waiting_contacts("q") == ("old", "vip")


def test_letting_a_call_no_longer_block_other_channels_offers_a_chat_at_once() -> None:
    both = AgentConfig("a1", queues={"q": 1}, capacity={"voice": 1, "chat": 1})
    engine = make_engine(agents=[both], config=EngineConfig(voice_blocks_other_channels=True))
    engine.contact_arrived(voice("call"), 0.0)
    engine.offer_accepted("call", "a1", 1.0)
    engine.contact_arrived(Contact("chat", "chat", "q"), 2.0)
    assert engine.agent_status("a1").offered_contact_ids == ()

    out = engine.configure(EngineConfig(voice_blocks_other_channels=False), 3.0)

    assert [(o.contact_id, o.agent_ids) for o in of_type(out, OfferContact)] == [("chat", ("a1",))]


def test_a_new_missed_offer_limit_applies_to_the_next_miss() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", offer_timeout_s=5)],
        agents=[AgentConfig("a1", queues={"q": 1})],
        config=EngineConfig(missed_offers_to_not_ready=3),
    )
    engine.configure(EngineConfig(missed_offers_to_not_ready=1, reject_cooloff_s=0))
    engine.contact_arrived(voice("c1"), 0.0)
    engine.tick(5.0)
    assert engine.agent_status("a1").state == "not_ready"
