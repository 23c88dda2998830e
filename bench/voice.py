"""Benchmark: call setups and relayed media through the voice B2BUA, with sipp as carrier and phones.

Set-up (one process, SQLite, the real ACD): one queue without wrap-up, one voice entry point, ``agents``
agents whose SIP accounts all register (digest, via sipp) from one port where a sipp UAS answers every
INVITE (an auto-answering phone bank).

Phase 1, call setups: sipp places ``calls`` calls at ``rate`` per second, at most ``limit`` at once, each
INVITE → queue → agent rings and answers → 200 → ACK → 0.5 s talk → BYE. ``setups_per_s`` is successful
calls divided by the wall time of the run minus one hold time; ``failed_ratio`` is failed / placed;
``server_cpu_ms_per_setup`` is this process's CPU time (all threads) during the phase per successful call
(the budget: 10 ms per call is 100 setups per second on one core).

Phase 2, media: ``concurrent`` calls placed at once (as fast as setups allow), each caller streaming
sipp's ``g711a.pcap`` (RTP every 20 ms, about 5 s) through our relay to the agent leg.
``concurrent_calls`` is the peak number of bridged calls seen at once (sampled every 0.1 s);
``rtp_loss_ratio`` = 1 - packets relayed to agents / packets the callers sent (pcap packets x successful
calls); ``cpu_pct_per_call`` = this process's CPU time during the phase / wall time / peak calls x 100
(sipp's CPU is not counted; the phase includes the call setups, so this overstates relaying alone).

``machine_reference_ms`` is the CPU time of a fixed pure-Python workload on this machine: CPU per setup
scales with it, so it tells runs on different machines apart (a setups figure means little without it).

One core: the targets are per core, so by default (``--cores one``, on a machine with two or more) this
process, and with it the media process it starts and its SQLite threads, is pinned to CPU 0, and every
sipp to the other CPUs: the server side cannot borrow a second core, and the load generator does not
take CPU from it. ``--cores all`` lets the kernel place everything.

The full run offers 150 calls per second (3000 calls), more than the 100 per second target, so that
``setups_per_s`` shows the capacity rather than the offered rate; ``--rate`` and ``--calls`` change it
(a server that keeps up shows it by ``setups_per_s`` following the rate). ``--loop asyncio`` runs the
standard library's loop instead of uvloop.

No baseline: there is no other B2BUA on this machine to compare with. Run:
``.venv/bin/python bench/voice.py [--quick]``; the last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import machine_reference_ms

from frontoffice import aio
from frontoffice.bootstrap import build_container
from frontoffice.channels.voice.media import PythonMediaBackend
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.service import VoiceService
from frontoffice.config import load_settings
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_commands import AgentLogin
from frontoffice.services.acd_schemas import AgentProfileIn, EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.services.voice_calls import SipCredentialsIn
from frontoffice.store import migrate

SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "integration" / "sipp"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")
HOST = "127.0.0.1"
NUMBER = "+74951234567"
PASSWORD = "bench-password-1"
HOLD_S = 0.5  # the pause in caller.xml


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port


def pcap_rtp(path: Path) -> tuple[int, float]:
    """(RTP packets, duration in seconds) of a libpcap file."""
    data = path.read_bytes()
    offset, count, first, last = 24, 0, None, 0.0
    while offset + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        offset += 16 + length
        stamp = seconds + micros / 1e6
        first = stamp if first is None else first
        last = stamp
        count += 1
    return count, last - (first or last)


# The CPUs sipp runs on when the server is pinned to one (None: wherever the kernel puts it).
SIPP_CPUS: set[int] | None = None


def pin_server(cores: str) -> set[int] | None:
    """With ``cores == "one"`` and at least two CPUs: this process (and the processes and threads it
    starts later) on the first CPU it may use; return the others, for sipp. Else None."""
    if cores != "one" or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, {cpus[0]})
    return set(cpus[1:])


async def start_sipp(*args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec("sipp", *args, **kwargs)
    if SIPP_CPUS is not None:
        os.sched_setaffinity(process.pid, SIPP_CPUS)
    return process


async def sipp(*args: str, limit_s: float = 600) -> tuple[int, str]:
    process = await start_sipp(
        "-i", HOST, "-mi", HOST, "-nostdin", "-mp", str(free_port()), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), limit_s)
    return int(process.returncode or 0), out.decode(errors="replace")


def media_cpu(media: object) -> float:
    """CPU seconds (user + system) the media process has used so far; 0 for media in this process."""
    pid = getattr(media, "pid", None)
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (proc(5))


def progress(text: str) -> None:
    print(f"[voice bench] {text}", file=sys.stderr, flush=True)


def counts(screen: str) -> tuple[int, int]:
    """(successful, failed) calls from sipp's final statistics screen."""
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return (int(ok[-1]) if ok else 0), (int(bad[-1]) if bad else 0)


async def run(params: dict[str, Any], workdir: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(url)
    settings = load_settings(data_dir=workdir, database_url=url, secret_key="bench-secret-key-0123456789")
    container = build_container(settings)
    await container.start()
    system = Actor.system()
    cc = container.contact_center
    queue = await cc.admin.create_queue(system, QueueIn(name="Bench", settings=QueueSettings(wrap_up_s=0)))
    await cc.admin.create_entry_point(
        system, EntryPointIn(name="Bench", channel=Channel.VOICE, address=NUMBER, default_queue_id=queue.id)
    )
    assert container.voice_calls is not None
    users = []
    for n in range(params["agents"]):
        user = await container.auth.create_user(
            system, UserIn(username=f"agent{n}", role=Role.AGENT, password="bench-password-xyz")
        )
        await cc.admin.set_agent_profile(system, user.id, AgentProfileIn(queues={queue.id: 1}))
        await container.voice_calls.set_sip_credentials(
            system, user.id, SipCredentialsIn(username=f"agent{n}", password=PASSWORD)
        )
        await container.acd.execute(AgentLogin(str(user.id)))
        users.append(user.id)
    voice = VoiceService(
        container.voice_calls,
        ProcessMediaBackend(HOST, event_loop=params["event_loop"])
        if params["media"] == "process"
        else PythonMediaBackend(HOST),
        host=HOST,
        port=free_port(),
        secret=b"bench",
        realm=container.voice_calls.realm,
        recordings_dir=None,
    )
    await voice.start()
    target = f"{HOST}:{voice.port}"
    phone_port = free_port()
    # One sipp registration per account, all from the phone bank's port (sipp 3.6 cannot take the
    # digest username from an injection file: it mangles "[authentication username=[field0]]").
    code, out = 0, ""
    for n in range(params["agents"]):
        for _ in range(3):  # sipp exits 254 when a port it binds was taken meanwhile: try again
            code, out = await sipp(
                "-sf", str(SCENARIOS / "register.xml"), "-m", "1", "-s", f"agent{n}", "-au", f"agent{n}",
                "-ap", PASSWORD, "-p", str(phone_port), target,
            )  # fmt: skip
            if code != 254:
                break
        if code:
            break
    progress(f"registration done (sipp exit {code}) {out[:1500] if code else ''}")
    registered = sum(1 for uid in users if voice.registrar.bindings(uid, voice.clock()))
    phones = await start_sipp(
        "-sf", str(SCENARIOS / "agent_phone.xml"), "-i", HOST, "-mi", HOST, "-nostdin",
        "-mp", str(free_port()), "-p", str(phone_port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(0.5)

    # Phase 1: setups.
    media = voice.media
    cpu_setups, media_setups = time.process_time(), media_cpu(media)
    started = time.perf_counter()
    _, screen = await sipp(
        "-sf", str(SCENARIOS / "caller.xml"), "-s", NUMBER, "-m", str(params["calls"]),
        "-r", str(params["rate"]), "-l", str(params["limit"]), "-recv_timeout", "30000", target,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    cpu_setups = time.process_time() - cpu_setups
    media_setups = media_cpu(media) - media_setups
    ok, failed = counts(screen)
    progress(f"setups: {ok} ok, {failed} failed in {elapsed:.1f} s")
    await asyncio.sleep(1.0)

    # Phase 2: concurrent relayed media.
    packets, duration = pcap_rtp(PCAP)
    scenario = (SCENARIOS / "caller_media.xml").read_text()
    scenario = re.sub(
        r"  <nop>\s*<action>\s*<exec play_pcap_audio=\"[^\"]*dtmf[^\"]*\"/>\s*</action>\s*</nop>\n",
        "",
        scenario,
    )
    scenario = scenario.replace(
        '<pause milliseconds="1500"/>', f'<pause milliseconds="{int(duration * 1000) + 1000}"/>'
    )
    (workdir / "caller_relay.xml").write_text(scenario)
    voice.recent_media.clear()
    cpu0, wall0, media0 = time.process_time(), time.perf_counter(), media_cpu(media)
    concurrent = params["concurrent"]
    peak = 0

    async def sample_bridged() -> None:
        nonlocal peak
        while True:
            bridged = voice.calls_in("bridged")
            peak = max(peak, bridged)
            await asyncio.sleep(0.1)

    sampler = asyncio.get_running_loop().create_task(sample_bridged())
    _, screen2 = await sipp(
        "-sf", str(workdir / "caller_relay.xml"), "-s", NUMBER, "-m", str(concurrent),
        "-r", str(concurrent * 2), "-l", str(concurrent), "-recv_timeout", "30000", target,
    )  # fmt: skip
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    media_phase = media_cpu(media) - media0
    for _ in range(100):  # the media process's final counters arrive as the sessions close
        if voice.is_idle:
            break
        await asyncio.sleep(0.05)
    sampler.cancel()
    media_ok, media_failed = counts(screen2)
    progress(f"media: {media_ok} ok, {media_failed} failed")
    relayed = sum(stats.relayed_to_agent for _, stats in voice.recent_media)
    sent = packets * media_ok
    phones.terminate()
    await phones.wait()
    await voice.stop()
    await container.close()
    placed = ok + failed
    return {
        "setups_per_s": round(ok / max(1e-9, elapsed - HOLD_S), 2),
        "failed_ratio": round(failed / placed, 4) if placed else 1.0,
        # This process's CPU (all threads) during phase 1 per successful call (sipp not counted).
        "server_cpu_ms_per_setup": round(1000 * cpu_setups / max(1, ok), 2),
        # The media process's CPU during phase 1 per successful call (0 with --media inline).
        "media_cpu_ms_per_setup": round(1000 * media_setups / max(1, ok), 2),
        "concurrent_calls": peak,
        "rtp_loss_ratio": round(max(0.0, 1 - relayed / sent), 4) if sent else 1.0,
        # CPU of the whole phase (setups included) per call at the peak: an upper bound for relaying.
        "cpu_pct_per_call": round(100 * cpu / max(1e-9, wall) / max(1, peak), 3),
        # The same for the media process, which relays the RTP (0 with --media inline).
        "media_cpu_pct_per_call": round(100 * media_phase / max(1e-9, wall) / max(1, peak), 3),
        "media_calls": media_ok,
        "registered_agents": registered,
        "calls_ok": ok,
        "calls_failed": failed,
        "media_calls_failed": media_failed,
        "rtp_packets_sent": sent,
        "rtp_packets_relayed": relayed,
        "register_exit": code,
        "machine_reference_ms": machine_reference_ms(),
    }


def main() -> None:
    import logging

    logging.basicConfig(level=logging.INFO if os.environ.get("BENCH_DEBUG") else logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (within 60 s)")
    parser.add_argument("--rate", type=float, help="calls offered per second in phase 1 (default 100)")
    parser.add_argument("--calls", type=int, help="calls placed in phase 1 (default 1000)")
    parser.add_argument("--concurrent", type=int, help="calls bridged at once in phase 2 (default 200)")
    parser.add_argument(
        "--media", choices=("process", "inline"), default="process",
        help="media in a process of its own (the server's default) or in this process",
    )  # fmt: skip
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
        help="event loop (auto: uvloop when installed, as the server does)",
    )  # fmt: skip
    parser.add_argument(
        "--cores", choices=("one", "all"), default="one",
        help="one: this process and the media process on one CPU, sipp on the others; all: no pinning",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("sipp") is None or not PCAP.exists():
        print("sipp (Debian package sip-tester) is required", file=sys.stderr)
        sys.exit(2)
    if args.quick:
        params = {"agents": 40, "calls": 300, "rate": 60, "limit": 40, "concurrent": 20}
    else:
        params = {"agents": 250, "calls": 3000, "rate": 150, "limit": 200, "concurrent": 200}
    for name in ("rate", "calls", "concurrent"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    params["media"] = args.media
    params["event_loop"] = args.loop
    global SIPP_CPUS
    SIPP_CPUS = pin_server(args.cores)
    params["server_cpus"] = 1 if SIPP_CPUS is not None else len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-voice-") as tmp:
        metrics = aio.run(run(params, Path(tmp)), args.loop)
    print(
        json.dumps(
            {
                "bench": "voice",
                "quick": args.quick,
                "params": {**params, "event_loop": aio.loop_name(aio.loop_factory(args.loop))},
                "metrics": metrics,
                "baseline": None,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
