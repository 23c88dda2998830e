"""The routing lease and its fencing token, at the store level (real PostgreSQL, one process).

A leader that lost its lease (its session cut, a pause) must not commit routing decisions after the
next leader started: every ACD transaction checks the epoch under a row lock (store/leader_lease.py).
The dialler lease works the same way for the claims of campaign contacts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from frontoffice.bootstrap import Container, build_container
from frontoffice.config import load_settings
from frontoffice.services.acd_schemas import QueueIn
from frontoffice.services.campaign_schemas import CampaignIn
from frontoffice.services.cluster_status import read_cluster_status
from frontoffice.services.context import Actor
from frontoffice.store.leader_lease import DIALLING, Fence, LeaderLease, LeaseLost
from frontoffice.store.tables import ClusterLeader, Queue

from ..conftest import eventually
from .campaign_helpers import ALL_DAY
from .cluster_nodes import admin_sql, drop_database, new_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    url = await asyncio.to_thread(new_database)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_database, url)


@pytest.fixture
async def container(database: str, tmp_path: Path) -> AsyncIterator[Container]:
    c = build_container(load_settings(data_dir=tmp_path, database_url=database, secret_key="k" * 32))
    yield c
    await c.close()


async def _cut(database: str, node: str, lease: str = "lease") -> None:
    """End a lease session (``lease``: ``lease`` of routing, ``dialler``) from outside, as a network
    cut or a DBA would."""
    await admin_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = 'frontoffice {lease} {node}'",
        database,
    )


async def _queues_named(c: Container, name: str) -> int:
    async with c.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Queue).where(Queue.name == name)) or 0)


async def test_only_one_node_holds_the_lease_and_each_leadership_gets_a_higher_epoch(database: str) -> None:
    a, b = LeaderLease(database, "a"), LeaderLease(database, "b")
    try:
        first = await a.try_acquire()
        assert first is not None
        assert await b.try_acquire() is None, "the lock is held by one session only"
        await _cut(database, "a")
        await asyncio.wait_for(a.wait_lost(), timeout=10)  # the holder notices at once
        second = await eventually(b.try_acquire, "the standby takes the free lease")
        assert second > first
    finally:
        await a.release()
        await b.release()


async def test_a_leader_that_lost_its_lease_cannot_commit_after_the_next_one_started(
    database: str, container: Container
) -> None:
    old = LeaderLease(database, "old")
    epoch = await old.try_acquire()
    assert epoch is not None
    container.acd.fence = Fence(epoch)
    await container.acd.start()  # the rebuild is fenced too, and passes
    created = await container.routing_admin.create_queue(Actor.system(), QueueIn(name="while leading"))
    assert created.id
    # The lease is lost (its session cut) and another node takes over before the old one notices.
    await _cut(database, "old")
    new = LeaderLease(database, "new")
    try:
        assert await eventually(new.try_acquire, "the new leader takes the lease") == epoch + 1
        with pytest.raises(LeaseLost):
            await container.routing_admin.create_queue(Actor.system(), QueueIn(name="late write"))
        assert await _queues_named(container, "late write") == 0, "the late write was kept out"
        assert await _queues_named(container, "while leading") == 1
    finally:
        await container.acd.stop()
        await old.release()
        await new.release()


async def test_a_write_in_flight_when_the_lease_changes_hands_commits_before_the_new_epoch_begins(
    database: str, container: Container
) -> None:
    """The fence's row lock orders the two: the new leader's epoch waits for the old leader's open
    transaction, so the new leader's rebuild (after its epoch) sees that write."""
    old = LeaderLease(database, "old")
    epoch = await old.try_acquire()
    assert epoch is not None
    fence = Fence(epoch)
    new = LeaderLease(database, "new", fence_grace_s=120)  # longer than this test's transaction
    try:
        async with container.sessions.begin() as s:
            await fence.check(s)  # the old leader's transaction is under way
            await _cut(database, "old")
            taking = asyncio.create_task(eventually(new.try_acquire, "the new leader takes the lease"))
            await eventually(
                lambda: _waiting_for_row_lock(database), "the new leader's epoch waits for the row lock"
            )
            assert not taking.done()
            s.add(Queue(name="in flight", config={}))
        assert await taking == epoch + 1
        async with container.sessions() as s:
            assert (await s.get(ClusterLeader, 1)).node == "new"  # type: ignore[union-attr]
        assert await _queues_named(container, "in flight") == 1
    finally:
        await old.release()
        await new.release()


async def _waiting_for_row_lock(database: str) -> bool:
    rows = await admin_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'frontoffice lease new' "
        "AND wait_event_type = 'Lock'",
        database,
    )
    return bool(rows and rows[0][0])


async def test_a_transaction_the_old_leader_left_open_is_ended_when_the_next_leader_starts(
    database: str, container: Container
) -> None:
    """A leader paused or cut off in the middle of a fenced transaction keeps its session (a paused
    process's socket stays open): the next leader ends it rather than wait, and it cannot commit."""
    old = LeaderLease(database, "old")
    epoch = await old.try_acquire()
    assert epoch is not None
    new = LeaderLease(database, "new", fence_grace_s=0.2)
    try:
        with pytest.raises(DBAPIError):
            async with container.sessions.begin() as s:
                await Fence(epoch).check(s)
                await _cut(database, "old")
                assert await eventually(new.try_acquire, "the new leader takes the lease") == epoch + 1
                s.add(Queue(name="left open", config={}))
        assert await _queues_named(container, "left open") == 0
    finally:
        await old.release()
        await new.release()


async def test_the_dialler_lease_is_held_apart_from_routing_and_a_voice_node_that_lost_it_claims_nothing(
    database: str, container: Container
) -> None:
    """One voice node at a time dials campaigns: the dialler lease has a lock and an epoch of its own
    (the routing leader need not be the node that dials), and each claim of the dialler checks its
    epoch, so a voice node that lost the lease claims no contact once another one holds it."""
    routing = LeaderLease(database, "a")
    old = LeaderLease(database, "a", kind=DIALLING)
    new = LeaderLease(database, "b", kind=DIALLING)
    try:
        assert await routing.try_acquire() is not None
        epoch = await old.try_acquire()
        assert epoch is not None, "the dialler lease is held beside routing's"
        assert await new.try_acquire() is None, "by one voice node only"
        actor = Actor.system()
        campaign = await container.campaigns.create(
            actor,
            CampaignIn.model_validate(
                {"name": "Storm", "mode": "notification", "windows": ALL_DAY, "message_text": "A storm."}
            ),
        )
        await container.campaigns.import_contacts(actor, campaign.id, b"phone\n+74951110010\n+74951110017\n")
        await container.campaigns.move(actor, campaign.id, "start")
        [first] = await container.campaign_attempts.claim(campaign.id, 1, fence=Fence(epoch, DIALLING))

        await _cut(database, "a", "dialler")
        await asyncio.wait_for(old.wait_lost(), timeout=10)
        assert await eventually(new.try_acquire, "another voice node takes the dialler lease") == epoch + 1
        with pytest.raises(LeaseLost):
            await container.campaign_attempts.claim(campaign.id, 1, fence=Fence(epoch, DIALLING))
        [second] = await container.campaign_attempts.claim(campaign.id, 1, fence=Fence(epoch + 1, DIALLING))
        assert {first.phone, second.phone} == {"+74951110010", "+74951110017"}, "the next contact, once"

        status = await read_cluster_status(container.sessions, "")
        assert (status.leader.node, status.leader.held) == ("a", True), "routing stays where it was"
        assert (status.dialler.node, status.dialler.epoch, status.dialler.held) == ("b", epoch + 1, True)
    finally:
        for lease in (routing, old, new):
            await lease.release()
