"""A standby voice node takes the SIP address over from a voice node killed with ``kill -9``.

Two ``frontoffice serve`` nodes of a cluster, both voice nodes on one SIP address on loopback, both
configured as a keepalived pair is (``sip_standby``): the first binds the address, the second waits
for it. The second binding the address once the first died is what keepalived's address move does
between hosts. A sipp phone registers once, with the first node; a call waiting in the queue is up
when the first node dies. The second node closes that call as lost with its node (not abandoned by
the caller) and rings the phone registered with the first node, without a new REGISTER.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import eventually, require_tool
from .cluster_nodes import Cluster, Node, admin_sql, drop_database, make_cluster
from .sipp.runner import HOST, SIP_PASSWORD, free_port, phone_args, run_sipp, start_phone

pytestmark = pytest.mark.postgres

API = "/api/v1"
NUMBER = "+74957654321"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = make_cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()
        drop_database(c.database_url)


def _voice_env(sip_port: int) -> dict[str, str]:
    return {
        "FRONTOFFICE_VOICE_ENABLED": "true",
        "FRONTOFFICE_SIP_HOST": HOST,
        "FRONTOFFICE_SIP_PORT": str(sip_port),
        "FRONTOFFICE_SIP_QUALIFY_INTERVAL_S": "0",  # the sipp phone answers only its one call
        "FRONTOFFICE_MEDIA_PROCESS": "false",
        "FRONTOFFICE_VOICE_ANNOUNCE_INTERVAL_S": "0",
    }


async def _setup_voice(cluster: Cluster, node: Node) -> tuple[int, int]:
    """A queue, a voice entry point to it and agent1 in it with a SIP account: (queue, agent)."""
    admin = cluster.headers("admin")
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        r = await client.post(f"{API}/queues", json={"name": "Phones", "settings": {}}, headers=admin)
        assert r.status_code == 201, r.text
        queue = int(r.json()["id"])
        r = await client.post(
            f"{API}/entry-points",
            json={"name": "Hotline", "channel": "voice", "address": NUMBER, "default_queue_id": queue},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        agent = int((await client.get(f"{API}/me", headers=cluster.headers("agent1"))).json()["id"])
        r = await client.put(f"{API}/agents/{agent}", json={"queues": {str(queue): 1}}, headers=admin)
        assert r.status_code == 200, r.text
        r = await client.put(
            f"{API}/agents/{agent}/sip", json={"username": "agent1", "password": SIP_PASSWORD}, headers=admin
        )
        assert r.status_code == 200, r.text
    return queue, agent


async def _voice_calls(cluster: Cluster, node: Node) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=node.url, timeout=15) as client:
        r = await client.get(
            f"{API}/interactions", params={"channel": "voice", "limit": 50}, headers=cluster.headers("admin")
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


async def test_a_standby_voice_node_takes_the_address_over_closes_lost_calls_and_rings_registered_phones(
    cluster: Cluster,
) -> None:
    sipp = require_tool("sipp")
    sip_port = free_port()
    address = f"{HOST}:{sip_port}"
    # Both standby, as a keepalived pair is: whichever has the address serves.
    cluster.env |= _voice_env(sip_port) | {"FRONTOFFICE_SIP_STANDBY": "true"}
    first = (await asyncio.to_thread(cluster.start, 1))[0]
    second = (await asyncio.to_thread(cluster.start, 1))[0]
    queue, _ = await _setup_voice(cluster, first)

    # The phone registers once, with the first node (the one holding the address).
    phone_port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", address, *phone_args("agent1", SIP_PASSWORD, phone_port)
    )
    assert registered.returncode == 0, registered.output
    rows = await admin_sql("SELECT host, port FROM sip_registrations", cluster.database_url)
    assert [tuple(row) for row in rows] == [(HOST, phone_port)], "the registration is in the database"

    # A caller waits in the queue (agent1 is signed out) when the first node dies.
    waiting = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", address, "-m", "1", "-s", NUMBER, timeout_s=30)
    )
    try:
        calls = await eventually(
            lambda: _queued(cluster, first), "the first call waits in the queue", timeout_s=30
        )
        lost_id = int(calls[0]["id"])
        first.kill9()

        # The second node takes the address over and closes the call that died with the first.
        async def closed() -> dict[str, Any] | None:
            async with httpx.AsyncClient(base_url=second.url, timeout=15) as client:
                r = await client.get(f"{API}/interactions/{lost_id}", headers=cluster.headers("admin"))
                body: dict[str, Any] = r.json()
                return body if body.get("state") == "failed" else None

        lost = await eventually(closed, "the lost call is closed", timeout_s=30)
        assert lost["disposition"] == "lost_node_failure"
        assert lost["attributes"]["call_lost"] == "lost_node_failure"
        async with httpx.AsyncClient(base_url=second.url, timeout=15) as client:
            r = await client.get(
                f"{API}/interactions/{lost_id}/call-records", headers=cluster.headers("admin")
            )
            assert r.status_code == 200, r.text
            legs = r.json()["legs"]
            assert [leg["cause"] for leg in legs] == ["lost_node_failure"], legs
            # Ended when the dead node was last heard of (its last heartbeat, or the call's own start
            # when it came after it), not when the loss was noticed.
            [(heartbeat,)] = await admin_sql(
                f"SELECT heartbeat_at FROM cluster_nodes WHERE node = '{first.name}'", cluster.database_url
            )
            last_heard = max(heartbeat.replace(tzinfo=UTC), datetime.fromisoformat(legs[0]["setup_at"]))
            assert datetime.fromisoformat(legs[0]["ended_at"]) == last_heard
            figures = (await client.get(f"{API}/stats/live", headers=cluster.headers("admin"))).json()
        mine = next(f for f in figures["queues"] if int(f["queue_id"]) == queue)
        assert (mine["failed"], mine["abandoned"]) == (1, 0), mine

        # agent1 signs in; a call through the address (now the second node's) rings the phone that
        # registered with the first node: no new REGISTER was sent.
        async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
            r = await client.post(f"{API}/agent/login", json={}, headers=cluster.headers("agent1"))
            assert r.status_code == 204, r.text
        phone = await start_phone(sipp, "agent_phone.xml", phone_port)
        caller = await run_sipp(sipp, "caller.xml", address, "-m", "1", "-s", NUMBER)
        assert caller.returncode == 0, caller.output
        answered = await asyncio.wait_for(phone, 60)
        assert answered.returncode == 0, answered.output

        async def ended() -> bool:
            newer = [c for c in await _voice_calls(cluster, second) if int(c["id"]) > lost_id]
            assert len(newer) == 1, newer
            return newer[0]["state"] in ("done", "wrap_up")

        await eventually(ended, "the second call ended as a call the caller hung up")
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await waiting


async def _queued(cluster: Cluster, node: Node) -> list[dict[str, Any]] | None:
    calls = await _voice_calls(cluster, node)
    return calls if calls and calls[0]["state"] == "queued" else None


async def test_a_voice_node_that_does_not_route_rings_the_agents_phone_offered_by_the_leader(
    cluster: Cluster,
) -> None:
    """Voice runs on designated nodes, which need not be the routing leader: the offers of their
    calls reach them with the leader's committed changes."""
    sipp = require_tool("sipp")
    sip_port = free_port()
    address = f"{HOST}:{sip_port}"
    leader = (await asyncio.to_thread(cluster.start, 1))[0]
    assert (await cluster.leader()) is leader
    cluster.env |= _voice_env(sip_port)
    voice = (await asyncio.to_thread(cluster.start, 1))[0]
    assert (await cluster.readiness(voice))["role"] == "standby"
    await _setup_voice(cluster, leader)
    phone_port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", address, *phone_args("agent1", SIP_PASSWORD, phone_port)
    )
    assert registered.returncode == 0, registered.output
    async with httpx.AsyncClient(base_url=leader.url, timeout=30) as client:
        r = await client.post(f"{API}/agent/login", json={}, headers=cluster.headers("agent1"))
        assert r.status_code == 204, r.text
    phone = await start_phone(sipp, "agent_phone.xml", phone_port)
    caller = await run_sipp(sipp, "caller.xml", address, "-m", "1", "-s", NUMBER)
    assert caller.returncode == 0, caller.output
    answered = await asyncio.wait_for(phone, 60)
    assert answered.returncode == 0, answered.output
