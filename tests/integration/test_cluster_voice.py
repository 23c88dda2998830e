"""A standby voice node takes the SIP address over from a voice node killed with ``kill -9``.

Two ``frontoffice serve`` nodes of a cluster, both voice nodes on one SIP address on loopback, both
configured as a keepalived pair is (``sip_standby``): the first binds the address, the second waits
for it. The second binding the address once the first died is what keepalived's address move does
between hosts. sipp phones register once, with the first node; when it dies one call is connected to
an agent and another waits in the queue. The second node closes both as lost with their node (the
waiting one failed, not abandoned by the caller) and rings a phone registered with the first node,
without a new REGISTER.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ..conftest import eventually, require_tool
from .cluster_nodes import Cluster, Node, admin_sql
from .sipp.runner import HOST, SIP_PASSWORD, free_port, phone_args, run_sipp, start_phone

pytestmark = pytest.mark.postgres

API = "/api/v1"
NUMBER = "+74957654321"


def _voice_env(sip_port: int) -> dict[str, str]:
    return {
        "FRONTOFFICE_VOICE_ENABLED": "true",
        "FRONTOFFICE_SIP_HOST": HOST,
        "FRONTOFFICE_SIP_PORT": str(sip_port),
        "FRONTOFFICE_SIP_QUALIFY_INTERVAL_S": "0",  # the sipp phone answers only its one call
        "FRONTOFFICE_MEDIA_PROCESS": "false",
        "FRONTOFFICE_VOICE_ANNOUNCE_INTERVAL_S": "0",
    }


async def _setup_voice(cluster: Cluster, node: Node, *agents: str) -> int:
    """A queue, a voice entry point to it and ``agents`` in it with SIP accounts of their names."""
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
        for name in agents:
            agent = int((await client.get(f"{API}/me", headers=cluster.headers(name))).json()["id"])
            r = await client.put(f"{API}/agents/{agent}", json={"queues": {str(queue): 1}}, headers=admin)
            assert r.status_code == 200, r.text
            r = await client.put(
                f"{API}/agents/{agent}/sip", json={"username": name, "password": SIP_PASSWORD}, headers=admin
            )
            assert r.status_code == 200, r.text
    return queue


async def _agent(cluster: Cluster, node: Node, agent: str, state: str = "available") -> None:
    """Sign ``agent`` in through ``node`` in ``state``."""
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        r = await client.post(f"{API}/agent/login", json={"state": state}, headers=cluster.headers(agent))
        assert r.status_code == 204, r.text


async def _interaction(cluster: Cluster, node: Node, interaction_id: int, what: str = "") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.url, timeout=15) as client:
        r = await client.get(f"{API}/interactions/{interaction_id}{what}", headers=cluster.headers("admin"))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


async def _newest_call(cluster: Cluster, node: Node, state: str, after: int = 0) -> int | None:
    """The id of the newest voice call when it is newer than ``after`` and in ``state``."""
    calls = await _voice_calls(cluster, node)
    if calls and int(calls[0]["id"]) > after and calls[0]["state"] == state:
        return int(calls[0]["id"])
    return None


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
    queue = await _setup_voice(cluster, first, "agent1", "agent2")

    # The phones register once, with the first node (the one holding the address).
    phones = {name: free_port() for name in ("agent1", "agent2")}
    for name, port in phones.items():
        registered = await run_sipp(sipp, "register.xml", address, *phone_args(name, SIP_PASSWORD, port))
        assert registered.returncode == 0, registered.output
    rows = await admin_sql("SELECT host, port FROM sip_registrations ORDER BY port", cluster.database_url)
    assert [tuple(row) for row in rows] == [(HOST, p) for p in sorted(phones.values())], "stored"

    # When the first node dies, agent2 is talking to a caller and another caller waits in the queue.
    await _agent(cluster, first, "agent2")
    up: list[asyncio.Task[Any]] = [await start_phone(sipp, "agent_phone.xml", phones["agent2"])]
    try:
        up.append(
            asyncio.create_task(run_sipp(sipp, "caller_waits_bye.xml", address, "-m", "1", "-s", NUMBER))
        )
        talking = await eventually(lambda: _newest_call(cluster, first, "connected"), "a call is connected")
        up.append(
            asyncio.create_task(run_sipp(sipp, "caller_waits_bye.xml", address, "-m", "1", "-s", NUMBER))
        )
        waiting = await eventually(lambda: _newest_call(cluster, first, "queued", talking), "a call waits")
        first.kill9()

        # The second node takes the address over and closes both calls as lost with the first node.
        async def closed() -> bool:
            lost = [await _interaction(cluster, second, i) for i in (waiting, talking)]
            noted = all(c["attributes"].get("call_lost") == "lost_node_failure" for c in lost)
            return noted and lost[0]["state"] == "failed" and lost[1]["state"] in ("wrap_up", "done")

        await eventually(closed, "both calls are closed", timeout_s=30)
        assert (await _interaction(cluster, second, waiting))["disposition"] == "lost_node_failure"
        legs = (await _interaction(cluster, second, waiting, "/call-records"))["legs"]
        assert [leg["cause"] for leg in legs] == ["lost_node_failure"], legs
        # Ended when the dead node was last heard of (its last heartbeat, or the call's own start when
        # it came after it), not when the loss was noticed.
        [(heartbeat,)] = await admin_sql(
            f"SELECT heartbeat_at FROM cluster_nodes WHERE node = '{first.name}'", cluster.database_url
        )
        last_heard = max(heartbeat.replace(tzinfo=UTC), datetime.fromisoformat(legs[0]["setup_at"]))
        assert datetime.fromisoformat(legs[0]["ended_at"]) == last_heard

        legs = (await _interaction(cluster, second, talking, "/call-records"))["legs"]
        assert sorted((leg["leg"], leg["cause"]) for leg in legs) == [
            ("agent", "lost_node_failure"),
            ("caller", "lost_node_failure"),
        ], legs
        async with httpx.AsyncClient(base_url=second.url, timeout=15) as client:
            figures = (await client.get(f"{API}/stats/live", headers=cluster.headers("admin"))).json()
        mine = next(f for f in figures["queues"] if int(f["queue_id"]) == queue)
        assert (mine["answered"], mine["failed"], mine["abandoned"]) == (1, 1, 0), mine

        # agent1 signs in (agent2, whose phone still holds the dead call, is made not ready); a call through
        # the address, now the second node's, rings agent1's phone that registered with the first node:
        # no new REGISTER was sent.
        await _agent(cluster, second, "agent2", "not_ready")
        await _agent(cluster, second, "agent1")
        phone = await start_phone(sipp, "agent_phone.xml", phones["agent1"])
        caller = await run_sipp(sipp, "caller.xml", address, "-m", "1", "-s", NUMBER)
        assert caller.returncode == 0, caller.output
        answered = await asyncio.wait_for(phone, 60)
        assert answered.returncode == 0, answered.output

        async def ended() -> bool:
            newer = [c for c in await _voice_calls(cluster, second) if int(c["id"]) > waiting]
            assert len(newer) == 1, newer
            return newer[0]["state"] in ("done", "wrap_up")

        await eventually(ended, "the next call ended as a call the caller hung up")
    finally:
        for task in up:  # sipp ends these itself when its wait for a BYE times out
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


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
    await _setup_voice(cluster, leader, "agent1")
    phone_port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", address, *phone_args("agent1", SIP_PASSWORD, phone_port)
    )
    assert registered.returncode == 0, registered.output
    await _agent(cluster, leader, "agent1")
    phone = await start_phone(sipp, "agent_phone.xml", phone_port)
    caller = await run_sipp(sipp, "caller.xml", address, "-m", "1", "-s", NUMBER)
    assert caller.returncode == 0, caller.output
    answered = await asyncio.wait_for(phone, 60)
    assert answered.returncode == 0, answered.output


async def test_the_leader_closes_the_calls_of_a_voice_node_that_died_when_no_node_takes_its_address(
    cluster: Cluster,
) -> None:
    """No standby voice node: the routing leader notices the voice node's silence (no heartbeat for
    ``voice_node_silent_after_s``) and closes its calls as lost, so the agent is free again. While the
    voice node lives, its calls are left alone."""
    sipp = require_tool("sipp")
    sip_port = free_port()
    address = f"{HOST}:{sip_port}"
    silent_after_s = 3.0
    cluster.env |= {"FRONTOFFICE_VOICE_NODE_SILENT_AFTER_S": str(silent_after_s)}
    leader = (await asyncio.to_thread(cluster.start, 1))[0]
    assert (await cluster.leader()) is leader
    cluster.env |= _voice_env(sip_port)
    voice = (await asyncio.to_thread(cluster.start, 1))[0]
    queue = await _setup_voice(cluster, leader, "agent1")
    phone_port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", address, *phone_args("agent1", SIP_PASSWORD, phone_port)
    )
    assert registered.returncode == 0, registered.output
    await _agent(cluster, leader, "agent1")
    up: list[asyncio.Task[Any]] = [await start_phone(sipp, "agent_phone.xml", phone_port)]
    try:
        up.append(
            asyncio.create_task(run_sipp(sipp, "caller_waits_bye.xml", address, "-m", "1", "-s", NUMBER))
        )
        talking = await eventually(lambda: _newest_call(cluster, leader, "connected"), "a call is connected")
        connected_at = datetime.fromisoformat((await _interaction(cluster, leader, talking))["connected_at"])

        # The voice node lives: its heartbeats go on past the silence and a sweep after it, and the
        # leader leaves its call alone.
        async def heard_well_after_the_call() -> bool:
            [(heartbeat,)] = await admin_sql(
                f"SELECT heartbeat_at FROM cluster_nodes WHERE node = '{voice.name}'", cluster.database_url
            )
            return bool((heartbeat.replace(tzinfo=UTC) - connected_at).total_seconds() > 2 * silent_after_s)

        await eventually(heard_well_after_the_call, "the voice node's heartbeats go on", timeout_s=30)
        call = await _interaction(cluster, leader, talking)
        assert call["state"] == "connected" and "call_lost" not in call["attributes"], call

        voice.kill9()

        async def closed() -> bool:
            call = await _interaction(cluster, leader, talking)
            return call["attributes"].get("call_lost") == "lost_node_failure" and call["state"] in (
                "wrap_up",
                "done",
            )

        await eventually(closed, "the leader closed the dead node's call", timeout_s=30)
        legs = (await _interaction(cluster, leader, talking, "/call-records"))["legs"]
        assert sorted((leg["leg"], leg["cause"]) for leg in legs) == [
            ("agent", "lost_node_failure"),
            ("caller", "lost_node_failure"),
        ], legs
        # Ended when the node was last heard of, not when its silence was noticed.
        [(heartbeat,)] = await admin_sql(
            f"SELECT heartbeat_at FROM cluster_nodes WHERE node = '{voice.name}'", cluster.database_url
        )
        assert {datetime.fromisoformat(leg["ended_at"]) for leg in legs} == {heartbeat.replace(tzinfo=UTC)}
        async with httpx.AsyncClient(base_url=leader.url, timeout=15) as client:
            figures = (await client.get(f"{API}/stats/live", headers=cluster.headers("admin"))).json()
        mine = next(f for f in figures["queues"] if int(f["queue_id"]) == queue)
        assert mine["answered"] == 1, mine
    finally:
        for task in up:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
