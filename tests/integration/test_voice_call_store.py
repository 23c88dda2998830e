"""The voice channel's store side without SIP: a repeated Call-ID, and the cached number look-up.

``VoiceCalls.call_arrived`` does not look its idempotency key (the Call-ID) up before the
transaction; a repeat must still map to the first interaction. ``VoiceCalls.entry_for`` keeps its
answers in memory; every change to an entry point must be seen by the next call.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import NotFound
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_commands import AgentLogin
from frontoffice.services.acd_schemas import AgentProfileIn, EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.voice_calls import InboundCall, IvrMenu
from frontoffice.store.tables import IdempotencyKey, Interaction, InteractionEvent

from ..conftest import make_user

NUMBER = "+74951234567"
OTHER = "+74957654321"


async def _entry(container: Container, **settings: float) -> tuple[int, int]:
    system = Actor.system()
    cc = container.contact_center
    queue = await cc.admin.create_queue(system, QueueIn(name="Sales", settings=QueueSettings(**settings)))
    entry = await cc.admin.create_entry_point(
        system, EntryPointIn(name="Main", channel=Channel.VOICE, address=NUMBER, default_queue_id=queue.id)
    )
    return queue.id, entry.id


async def test_a_repeated_call_id_maps_to_the_first_interaction(container: Container) -> None:
    await _entry(container)
    calls = container.voice_calls
    call = InboundCall(call_id="a84b4c76e66710@pc33.example.com", dialled=NUMBER, caller="+79161234567")
    first = await calls.call_arrived(call)
    again = await calls.call_arrived(call)
    assert again == first
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Interaction)) == 1
        assert await s.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
        events = list(
            await s.scalars(select(InteractionEvent.type).where(InteractionEvent.interaction_id == first))
        )
    assert events.count("created") == 1 and events.count("queued") == 1
    assert container.acd.engine.contact_status(str(first)).state == "waiting"
    # A new call is a new interaction.
    other = await calls.call_arrived(
        InboundCall(call_id="b2@pc33.example.com", dialled=NUMBER, caller="+79161234567")
    )
    assert other != first


async def test_a_repeated_call_id_while_another_call_commits_maps_to_the_first_interaction(
    container: Container,
) -> None:
    """In a batch of ACD commands (group commit) the repeat fails alone; the other call goes on."""
    import asyncio

    await _entry(container)
    calls = container.voice_calls
    call = InboundCall(call_id="dup@x", dialled=NUMBER, caller="+79161234567")
    first = await calls.call_arrived(call)
    again, other = await asyncio.gather(
        calls.call_arrived(call),
        calls.call_arrived(InboundCall(call_id="new@x", dialled=NUMBER, caller="+79161234568")),
    )
    assert again == first and other != first
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Interaction)) == 2


async def test_the_number_look_up_follows_changes_to_entry_points(container: Container) -> None:
    queue_id, entry_id = await _entry(container)
    system = Actor.system()
    calls = container.voice_calls
    cc = container.contact_center
    found = await calls.entry_for(NUMBER)
    assert (found.entry_point_id, found.ivr) == (entry_id, None)
    assert (await calls.entry_for("8 (495) 123-45-67")).entry_point_id == entry_id

    menu = IvrMenu(choices=["1", "2"])
    await calls.set_ivr(system, entry_id, menu)
    assert (await calls.entry_for(NUMBER)).ivr == menu
    await calls.set_ivr(system, entry_id, None)
    assert (await calls.entry_for(NUMBER)).ivr is None

    await cc.admin.update_entry_point(
        system,
        entry_id,
        EntryPointIn(name="Main", channel=Channel.VOICE, address=OTHER, default_queue_id=queue_id),
    )
    with pytest.raises(NotFound):
        await calls.entry_for(NUMBER)
    with pytest.raises(NotFound):
        await calls.entry_for("8 (495) 123-45-67")
    assert (await calls.entry_for(OTHER)).entry_point_id == entry_id

    # An unknown number is looked up again each time: a new entry point answers at once.
    created = await cc.admin.create_entry_point(
        system, EntryPointIn(name="New", channel=Channel.VOICE, address=NUMBER, default_queue_id=queue_id)
    )
    assert (await calls.entry_for(NUMBER)).entry_point_id == created.id


async def test_a_known_caller_goes_to_the_agent_who_served_them_last(container: Container) -> None:
    """Sticky routing reads the last agent with the customer's card, before the new interaction."""
    queue_id, _ = await _entry(container, sticky_s=30)
    system = Actor.system()
    cc = container.contact_center
    agents = []
    for name in ("ann", "bob"):
        user_id = await make_user(container, name, Role.AGENT)
        await cc.admin.set_agent_profile(system, user_id, AgentProfileIn(queues={queue_id: 1}))
        agents.append(user_id)
    calls = container.voice_calls
    first = await calls.call_arrived(InboundCall(call_id="1@x", dialled=NUMBER, caller="+79161234567"))
    # Only bob is signed in: he takes the first call and finishes it.
    await container.acd.execute(AgentLogin(str(agents[1])))
    assert container.acd.engine.contact_status(str(first)).agent_ids == (str(agents[1]),)
    await calls.offer_answered(first, agents[1])
    # Ann signs in while bob talks: she has waited longer when the caller calls again.
    await container.acd.execute(AgentLogin(str(agents[0])))
    await calls.call_ended(first)
    second = await calls.call_arrived(InboundCall(call_id="2@x", dialled=NUMBER, caller="+79161234567"))
    assert container.acd.engine.contact_status(str(second)).agent_ids == (str(agents[1]),)
    async with container.sessions() as s:
        customers = set(await s.scalars(select(Interaction.customer_id)))
    assert len(customers) == 1
