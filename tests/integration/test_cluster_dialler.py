"""One campaign dialler per cluster: of two active voice nodes (each with a SIP address of its own, as
a carrier's fail-over uses them), only the holder of the dialler lease places campaign calls; when it
is killed with ``kill -9`` the other takes the lease over and finishes the campaign.

The carrier is sipp on loopback, tracing every message it receives: the ``Via`` of each INVITE names
the SIP port, so the node, that sent it. Two diallers pacing for the same campaign (before the lease)
both send INVITEs from the start. A number whose call was up on the killed node is dialled again once
(its attempt ends ``unknown`` when the routing leader finds the node silent, and the campaign's rule
retries it, as after a single node's ``kill -9``: docs/outbound.md); no other number is dialled twice
and none is skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontoffice.services.cluster_status import read_cluster_status
from frontoffice.store.database import create_engine, session_factory

from ..conftest import eventually, require_tool
from .campaign_helpers import ALL_DAY
from .cluster_nodes import Cluster, Node, admin_sql
from .sipp.runner import HOST, SCENARIOS, free_port, listening

pytestmark = pytest.mark.postgres

API = "/api/v1"
CARRIER = "127.0.0.2"
NUMBERS = [f"+74951120{n:02d}{d}" for n in range(3) for d in (0, 7, 8, 9)]  # all answer, talk, hang up
MAX_LINES = 3


@dataclass(frozen=True, slots=True)
class Invite:
    sip_port: int  # the node's, from the Via
    call_id: str
    number: str


def invites(trace: Path) -> list[Invite]:
    """The INVITEs the carrier received (a retransmission once), in order, from its message trace."""
    if not trace.exists():
        return []
    seen: dict[str, Invite] = {}
    for block in trace.read_text(errors="replace").split("-----------------------------------------------"):
        if "message received" not in block:
            continue
        request = re.search(r"^INVITE sip:(\+\d+)@", block, re.MULTILINE)
        via = re.search(r"^Via: SIP/2\.0/UDP [^:\s]+:(\d+)", block, re.MULTILINE)
        call_id = re.search(r"^Call-ID: (\S+)", block, re.MULTILINE)
        if request and via and call_id and call_id.group(1) not in seen:
            seen[call_id.group(1)] = Invite(int(via.group(1)), call_id.group(1), request.group(1))
    return list(seen.values())


async def _campaign(cluster: Cluster, node: Node) -> int:
    admin = cluster.headers("admin")
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        r = await client.post(
            f"{API}/campaigns",
            json={
                "name": "Storm warning",
                "mode": "notification",
                "trunk": "carrier",
                "windows": ALL_DAY,
                "retry": {"failed": {"after_s": 0, "max_attempts": 2}},  # unknown follows failed
                "message_text": "A storm is coming.",
                "settings": {"max_lines": MAX_LINES},
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        campaign_id = int(r.json()["id"])
        csv_text = "phone\n" + "".join(f"{n}\n" for n in NUMBERS)
        r = await client.post(
            f"{API}/campaigns/{campaign_id}/contacts/import",
            files={"file": ("list.csv", csv_text.encode(), "text/csv")},
            headers=admin,
        )
        assert r.json()["created"] == len(NUMBERS), r.text
        r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin)
        assert r.status_code == 200, r.text
    return campaign_id


async def _in_flight(cluster: Cluster) -> int:
    [(count,)] = await admin_sql(
        "SELECT count(*) FROM dial_attempts WHERE state <> 'ended'", cluster.database_url
    )
    return int(count)


async def test_one_voice_node_dials_and_another_finishes_the_campaign_after_it_is_killed(
    cluster: Cluster, tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    carrier_port = free_port()
    trace = tmp_path / "carrier-messages.log"
    carrier = await asyncio.create_subprocess_exec(
        sipp, "-sf", str(SCENARIOS / "carrier_crowd.xml"), "-i", CARRIER, "-mi", CARRIER,
        "-p", str(carrier_port), "-mp", str(free_port()), "-nostdin", "-timeout", "120s",
        "-trace_msg", "-message_file", str(trace),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await listening(carrier_port)
        cluster.env |= {
            "FRONTOFFICE_VOICE_ENABLED": "true",
            "FRONTOFFICE_SIP_HOST": HOST,
            "FRONTOFFICE_MEDIA_PROCESS": "false",
            "FRONTOFFICE_SIP_TRUNKS": json.dumps(
                [{"name": "carrier", "host": CARRIER, "port": carrier_port}]
            ),
            # The killed node's calls are found lost soon (the test's bound, not the default 15 s).
            "FRONTOFFICE_VOICE_NODE_SILENT_AFTER_S": "2",
        }
        # Two active voice nodes, each with a SIP address of its own (by SIP port).
        sip_ports = [free_port(), free_port()]
        started = await asyncio.to_thread(
            cluster.start, 2, each=[{"FRONTOFFICE_SIP_PORT": str(p)} for p in sip_ports]
        )
        nodes = dict(zip(sip_ports, started, strict=True))
        campaign_id = await _campaign(cluster, next(iter(nodes.values())))

        # Calls are placed, some still up: every INVITE so far came from one node.
        async def placed() -> list[Invite]:
            sent = invites(trace)
            return sent if len(sent) > MAX_LINES and await _in_flight(cluster) else []

        sent = await eventually(placed, "calls are placed and some are up", timeout_s=60)
        ports = Counter(i.sip_port for i in sent)
        assert len(ports) == 1, f"INVITEs by SIP port of the nodes: {dict(ports)}"
        [dialling_port] = ports
        dialling = nodes.pop(dialling_port)
        [(other_port, other)] = nodes.items()
        assert (await cluster.readiness(dialling))["dialler"] is True
        assert (await cluster.readiness(other))["dialler"] is False

        dialling.kill9()

        admin = cluster.headers("admin")
        async with httpx.AsyncClient(base_url=other.url, timeout=30) as client:

            async def finished() -> bool:
                r = await client.get(f"{API}/campaigns/{campaign_id}", headers=admin)
                return bool(r.json()["state"] == "finished")

            await eventually(finished, "the other node finishes the campaign", timeout_s=60)
            attempts: list[dict[str, Any]] = (
                await client.get(f"{API}/campaigns/{campaign_id}/attempts?limit=500", headers=admin)
            ).json()["items"]
            contacts = (
                await client.get(f"{API}/campaigns/{campaign_id}/contacts?limit=500", headers=admin)
            ).json()["items"]
        assert (await cluster.readiness(other))["dialler"] is True
    finally:
        carrier.terminate()
        await carrier.wait()

    # None skipped: every number reached, once.
    assert {c["phone"]: c["state"] for c in contacts} == dict.fromkeys(NUMBERS, "done")
    finals = Counter(a["phone"] for a in attempts if a["outcome"] != "unknown")
    assert finals == Counter(NUMBERS), "every number reached exactly once"
    # A number dialled twice is one whose call was up on the killed node (ended unknown, retried once);
    # no number is dialled more often than it has attempts (one claimed just before the kill may have
    # sent no INVITE yet).
    unknown = Counter(a["phone"] for a in attempts if a["outcome"] == "unknown")
    assert unknown, "the kill must land while calls are up"
    assert set(unknown.values()) == {1}
    sent = invites(trace)
    assert Counter(i.number for i in sent) <= finals + unknown
    by_node = {port: {i.number for i in sent if i.sip_port == port} for port in (dialling_port, other_port)}
    assert by_node[dialling_port] & by_node[other_port] == set(unknown)
    assert by_node[dialling_port] | by_node[other_port] == set(NUMBERS)
    # The attempts name the node that placed each call (by their INVITE's Call-ID, kept once it ended).
    node_of_call = {i.call_id: (dialling if i.sip_port == dialling_port else other).name for i in sent}
    recorded = {a["call_id"]: a["node"] for a in attempts if a["call_id"]}
    assert recorded and recorded == {call_id: node_of_call.get(call_id) for call_id in recorded}
    # frontoffice cluster status names the node that dials.
    engine = create_engine(cluster.database_url)
    try:
        status = await read_cluster_status(session_factory(engine), "")
    finally:
        await engine.dispose()
    assert (status.dialler.node, status.dialler.held) == (other.name, True), status.dialler
