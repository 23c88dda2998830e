"""Imports as jobs: do offers and /healthz stay fast while a large CSV import runs?

A real ``frontoffice serve`` on SQLite (a subprocess), N agents signed in on WebSockets accepting and
completing every offer (bench/offer_latency.py's desk). First, contacts flow at a fixed rate with
nothing else running: the baseline, in the same run. Then a CSV of R customers (a phone and an email
each) is uploaded to ``POST /api/v1/customers/import?dry_run=false``, and while its job runs, contacts
keep flowing at the same rate and ``GET /healthz`` is probed every 20 ms. Measured: offer latency (the
client *sends* the contact → the offer reaches the agent's socket) and ``/healthz`` latency while the
import runs, and the import's rows per second.

    .venv/bin/python bench/import_job.py [--quick] [--rows 100000] [--rate 20]

Prints one JSON line (see shared BENCHMARKS.md): offer_p99_ms, healthz_p99_ms (the issue's targets on
SQLite: <= 50 ms and <= 100 ms while a 100,000-row import runs), import_rows_per_s, and the baseline
offer p99 without an import.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from offer_latency import _cpu_s, _Desk, _free_port, _Http, _p99, _setup

# How often /healthz is asked while the import runs (a load balancer's probe is far rarer; this is
# dense enough to see any stall of the event loop longer than a few tens of milliseconds).
HEALTHZ_INTERVAL_S = 0.02


def _csv(rows: int) -> bytes:
    lines = ["first_name,last_name,phones,emails,tags"]
    for n in range(rows):
        lines.append(f"Name{n},Bench,+7495{2_000_000 + n},c{n}@import.example,bench")
    return ("\n".join(lines) + "\n").encode()


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of the server and of the processes it started (the import's parsing worker, which
    lives as long as the server, so its time is not yet in the server's own children's count)."""
    total = _cpu_s(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            with contextlib.suppress(OSError):
                total += _cpu_s(int(stat.parent.name))
    return total


async def _healthz(client: _Http, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        sent = time.perf_counter()
        status, _ = await client.request("GET", "/healthz", "-")
        if status != 200:
            raise RuntimeError(f"/healthz: {status}")
        out.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(HEALTHZ_INTERVAL_S)


async def _run(
    base: str, admin_token: str, tokens: list[str], rows: int, rate: float, server_pid: int
) -> dict[str, object]:
    desk = _Desk(base, admin_token, tokens)
    host, port = base.removeprefix("http://").split(":")
    probe = _Http(host, int(port))
    data = _csv(rows)
    try:
        await desk.connect()
        baseline, _ = await desk.step(max(40, int(rate * 5)), rate)
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            headers = {"Authorization": f"Bearer {admin_token}"}
            started = time.perf_counter()
            cpu = _tree_cpu_s(server_pid)
            r = await http.post(
                "/api/v1/customers/import",
                params={"dry_run": "false"},
                files={"file": ("bench.csv", data, "text/csv")},
                headers=headers,
            )
            if r.status_code != 202:
                raise RuntimeError(f"import: {r.status_code} {r.text[:300]}")
            location = r.headers["location"]
            stop = asyncio.Event()
            health: list[float] = []
            prober = asyncio.create_task(_healthz(probe, stop, health))
            during: list[float] = []
            job: dict[str, object] = {}
            while True:
                job = (await http.get(location, headers=headers)).json()
                if job["state"] in ("succeeded", "failed"):
                    break
                latencies, _ = await desk.step(max(5, int(rate)), rate)
                during += latencies
            elapsed = time.perf_counter() - started
            server_cpu = _tree_cpu_s(server_pid) - cpu
            stop.set()
            await prober
    finally:
        await desk.close()
        probe.close()
    if job.get("state") != "succeeded":
        raise RuntimeError(f"the import failed: {job}")
    result = job["result"]
    assert isinstance(result, dict)
    return {
        "baseline": baseline,
        "during": during,
        "health": health,
        "elapsed": elapsed,
        "server_cpu": server_cpu,
        "created": result["created"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None, help="customers in the imported file")
    parser.add_argument("--rate", type=float, default=20.0, help="contacts per second meanwhile")
    args = parser.parse_args()
    agents = 20 if args.quick else 50
    rows = args.rows or (15_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        admin_token, tokens = asyncio.run(_setup(data, agents))
        port = _free_port()
        env = dict(os.environ, FRONTOFFICE_DATA_DIR=str(data), FRONTOFFICE_LOG_LEVEL="WARNING")
        server_log = (Path(tmp) / "server.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "frontoffice", "serve", "--port", str(port)],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            run = asyncio.run(_run(base, admin_token, tokens, rows, args.rate, server.pid))
        except BaseException:
            server_log.flush()
            print((Path(tmp) / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)
    during, health, baseline = run["during"], run["health"], run["baseline"]
    assert isinstance(during, list) and isinstance(health, list) and isinstance(baseline, list)
    elapsed = float(run["elapsed"])  # type: ignore[arg-type]
    result = {
        "bench": "import_job",
        "quick": args.quick,
        "params": {"rows": rows, "agents": agents, "rate_per_s": args.rate, "database": "sqlite"},
        "metrics": {
            "offer_p50_ms": round(statistics.median(during), 3) if during else None,
            "offer_p99_ms": round(_p99(during), 3) if during else None,
            "healthz_p50_ms": round(statistics.median(health), 3) if health else None,
            "healthz_p99_ms": round(_p99(health), 3) if health else None,
            "offers_during_import": len(during),
            "healthz_probes": len(health),
            "import_s": round(elapsed, 2),
            "import_rows_per_s": round(rows / elapsed, 1),
            "server_cpu_ms_per_row": round(1000 * float(run["server_cpu"]) / rows, 3),  # type: ignore[arg-type]
            "created": run["created"],
        },
        "baseline": {"name": "offers with no import running", "offer_p99_ms": round(_p99(baseline), 3)},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
