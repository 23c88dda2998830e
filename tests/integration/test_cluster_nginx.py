"""nginx in front of two cluster nodes, with the configuration docs/scaling.md shows.

The site configuration is ``docs/examples/nginx.conf`` itself (the page shows that file), with only
the upstream addresses, the listening address and the certificate replaced for loopback; nginx runs
as this test's own process (``-p`` prefix, pid, logs and temporary files in the test's directory).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from ..conftest import eventually, free_port, require_tool
from .cluster_nodes import Cluster, Node, contact_body

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "nginx.conf"
SCALING = ROOT / "docs" / "scaling.md"
# The upstream lines of the example: one per node of the three-node example.
_UPSTREAM_SERVER = re.compile(r"^(\s*)server 10\.0\.0\.1\d:8080 (.*)$", re.MULTILINE)


def site_config(upstreams: list[int], port: int, cert: Path, key: Path) -> str:
    """The example with loopback addresses; fails when the example no longer has what it replaces
    (the test must follow the file, not a copy of it)."""
    text = EXAMPLE.read_text()
    lines = _UPSTREAM_SERVER.findall(text)
    assert lines, "docs/examples/nginx.conf has no upstream servers to replace"
    indent, options = lines[0]
    servers = "\n".join(f"{indent}server 127.0.0.1:{p} {options}" for p in upstreams)
    text = _UPSTREAM_SERVER.sub("", text, count=len(lines) - 1)
    text = _UPSTREAM_SERVER.sub(servers, text, count=1)
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("/etc/ssl/cc.example.ru.pem", str(cert)),
        ("/etc/ssl/cc.example.ru.key", str(key)),
    ):
        assert old in text, f"docs/examples/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


def main_config(tmp: Path, site: Path) -> str:
    """nginx.conf around the site: everything nginx writes goes to ``tmp``. The access log names the
    node that served each request, and a header tells the client (for the test's checks only)."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would switch to nobody
    temp = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$status $request_method $uri $upstream_addr $upstream_status';
    access_log {tmp / "access.log"} upstream;
{temp}
    add_header X-Upstream $upstream_addr always;
    include {site};
}}
"""


def test_the_scaling_page_shows_the_tested_nginx_configuration() -> None:
    example = EXAMPLE.read_text()
    body = example[example.index("upstream frontoffice") :].rstrip()
    assert body in SCALING.read_text(), "docs/scaling.md's nginx block differs from docs/examples/nginx.conf"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cc.pem", tmp_path / "cc.key"
    subject = ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject],
        check=True,
        capture_output=True,
    )
    return cert, key


class Nginx:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, tmp: Path) -> None:
        self.proc, self.port, self.tmp = proc, port, tmp

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def served_by(self) -> list[str]:
        """The upstream of each request in the access log (``-`` for none)."""
        log = self.tmp / "access.log"
        return [line.split()[3] for line in log.read_text().splitlines()] if log.exists() else []

    def errors(self) -> str:
        return (self.tmp / "error.log").read_text()


def start_nginx(tmp: Path, nodes: list[Node], certificate: tuple[Path, Path]) -> Nginx:
    binary = require_tool("nginx")
    prefix = tmp / "nginx"
    prefix.mkdir()
    port = free_port()
    site = prefix / "frontoffice.conf"
    site.write_text(site_config([n.port for n in nodes], port, *certificate))
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site))
    checked = subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(prefix / "stderr.log").open("wb"),
    )
    return Nginx(proc, port, prefix)


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
    return context


async def _connect(nginx: Nginx, token: str) -> tuple[websockets.ClientConnection, str]:
    """An agent's socket through nginx: (the socket after its hello, the node's address)."""
    ws = await websockets.connect(
        f"wss://127.0.0.1:{nginx.port}/api/v1/stream?token={token}", ssl=_insecure(), open_timeout=10
    )
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello", hello
    assert ws.response is not None
    # "a, b" when nginx tried a node that refused first: the last one served.
    return ws, ws.response.headers["X-Upstream"].split(",")[-1].strip()


async def _offer_of(ws: websockets.ClientConnection, contact: int) -> dict[str, Any]:
    async for raw in ws:
        message = json.loads(raw)
        if message["type"] == "offer_contact" and int(message["data"]["contact_id"]) == contact:
            return dict(message["data"])
    raise AssertionError("the socket closed before the offer")


async def _until_closed(ws: websockets.ClientConnection) -> None:
    """Read (and drop) what the socket still brings until it is closed."""
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        return


async def _post_contact(client: httpx.AsyncClient, cluster: Cluster, n: int) -> int:
    """POST a contact through nginx, repeating with its Idempotency-Key while no leader answers (a
    fail-over), as the desk and integrations do."""

    async def post() -> int | None:
        r = await client.post(
            "/api/v1/interactions",
            json=contact_body(n, "via nginx"),
            headers={**cluster.headers("admin"), "Idempotency-Key": f"nginx-{n}"},
        )
        if r.status_code == 503:
            return None
        assert r.status_code in (200, 201), r.text
        return int(r.json()["interaction"]["id"])

    found: int = await eventually(post, f"contact {n} acknowledged", timeout_s=30)
    return found


async def test_rest_and_agent_sockets_work_through_nginx_and_survive_a_node_killed(
    cluster: Cluster, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    nodes = await asyncio.to_thread(cluster.start, 2)
    nginx = start_nginx(tmp_path, nodes, certificate)
    agent = cluster.headers("agent1")
    try:
        async with httpx.AsyncClient(base_url=nginx.url, verify=False, timeout=30) as client:

            async def ready() -> bool:
                if nginx.proc.poll() is not None:
                    raise AssertionError(f"nginx exited: {nginx.errors()}")
                try:
                    r = await client.get("/readyz")
                except httpx.TransportError:
                    return False
                return r.status_code == 200 and r.json()["role"] in ("leader", "standby")

            await eventually(ready, "nginx answers /readyz from a ready node", timeout_s=20)
            r = await client.post("/api/v1/agent/login", json={}, headers=agent)
            assert r.status_code == 204, r.text
            for _ in range(4):
                r = await client.get("/api/v1/agent/status", headers=agent)
                assert r.status_code == 200, r.text
            addresses = {f"127.0.0.1:{n.port}" for n in nodes}
            await eventually(
                lambda: addresses <= set(nginx.served_by()), "requests were spread over both nodes"
            )

            ws, upstream = await _connect(nginx, cluster.tokens["agent1"])
            try:
                first = await _post_contact(client, cluster, 1)
                offer = await asyncio.wait_for(_offer_of(ws, first), timeout=30)
                assert offer["contact_id"] in (first, str(first))
                r = await client.post(f"/api/v1/agent/offers/{first}/accept", headers=agent)
                assert r.status_code == 204, r.text
                r = await client.post(f"/api/v1/agent/contacts/{first}/complete", json={}, headers=agent)
                assert r.status_code == 200, r.text

                # The node under the agent's socket dies (leader or standby: both must work).
                doomed = next(n for n in nodes if f"127.0.0.1:{n.port}" == upstream)
                survivor = next(n for n in nodes if n is not doomed)
                doomed.kill9()
                await asyncio.wait_for(_until_closed(ws), timeout=30)
            finally:
                await ws.close()

            # Every request keeps working through the survivor: nginx passes a refused connection on
            # (proxy_next_upstream error) and then leaves the dead node out (max_fails).
            for _ in range(6):
                r = await client.get("/api/v1/agent/status", headers=agent)
                assert r.status_code == 200, r.text
            assert (await client.get("/readyz")).json()["node"] == survivor.name

            # The desk reconnects through nginx, to the survivor, and is offered the next contact there.
            async def reconnect() -> tuple[websockets.ClientConnection, str] | None:
                try:
                    return await _connect(nginx, cluster.tokens["agent1"])
                except (OSError, websockets.InvalidStatus, websockets.ConnectionClosed):
                    return None

            found = await eventually(reconnect, "the socket reconnects through nginx", timeout_s=30)
            assert found is not None
            ws, upstream = found
            try:
                assert upstream == f"127.0.0.1:{survivor.port}"
                second = await _post_contact(client, cluster, 2)
                await asyncio.wait_for(_offer_of(ws, second), timeout=30)
            finally:
                await ws.close()
        statuses = [line.split()[0] for line in (nginx.tmp / "access.log").read_text().splitlines()]
        assert "502" not in statuses and "504" not in statuses, statuses
    finally:
        nginx.proc.terminate()
        nginx.proc.wait(timeout=10)
