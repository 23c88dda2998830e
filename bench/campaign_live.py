"""Live dialling through sipp: how many campaign calls per second the dialler places, and whether any
setup of ours fails. Used by ``bench/dialer.py`` (``live_dials_per_s``); runs alone too:
``.venv/bin/python bench/campaign_live.py [--quick]`` (the last stdout line is the JSON result).

Set-up (one process, SQLite, the real ACD and dialler): a trunk to a sipp UAS on 127.0.0.2 that answers
every INVITE (tests/integration/sipp/carrier_crowd.xml: 180, 200, 1.5 s, BYE), a notification campaign
of ``calls`` numbers with ``max_lines`` calls at once and no message audio (the called party hangs up).
``live_dials_per_s`` = INVITEs sent / seconds from the start to the last INVITE (the voice channel's
count of campaign INVITEs). ``failed_setups`` counts attempts that ended
``failed`` (a setup of ours or the carrier's refusal); ``sipp_failed`` the carrier's failed calls.
No baseline: there is no other dialler to run beside it; ``machine_reference_ms`` (bench/_machine.py)
tells machines apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _machine import machine_reference_ms
from sqlalchemy import func, select

from frontoffice.bootstrap import build_container
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.trunks import Trunk
from frontoffice.config import load_settings
from frontoffice.config_trunks import SipTrunk
from frontoffice.services.campaign_schemas import CampaignIn, CampaignMode, CampaignSettings, WindowIn
from frontoffice.services.context import Actor
from frontoffice.store import migrate
from frontoffice.store.tables import DialAttempt
from tests.integration.sipp.runner import listening

HOST = "127.0.0.1"
CARRIER = "127.0.0.2"
SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "integration" / "sipp"


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def progress(text: str) -> None:
    print(f"[dialer bench] {text}", file=sys.stderr, flush=True)


async def live_dials(calls: int, max_lines: int, workdir: Path) -> dict[str, Any]:
    """Run the live measurement; returns its metrics."""
    url = f"sqlite+aiosqlite:///{workdir / 'dialer.db'}"
    migrate.upgrade(url)
    settings = load_settings(data_dir=workdir, database_url=url, secret_key="bench-secret-key-0123456789")
    container = build_container(settings)
    await container.start()
    system = Actor.system()
    port = free_port()
    trunk_settings = SipTrunk.model_validate(
        {"name": "carrier", "host": CARRIER, "port": port, "max_calls": 2000}
    )
    trunk = Trunk.from_settings({**trunk_settings.model_dump(), "password": None})
    voice = VoiceService(
        container.voice_calls,  # type: ignore[arg-type]
        ProcessMediaBackend(HOST),
        host=HOST,
        port=free_port(),
        secret=b"bench-nonce-secret",
        realm="bench",
        trunks=(trunk,),
        region="RU",
    )
    await voice.start()
    container.voice = container.call_control = voice
    container.campaign_messages.synthesize = None  # no message: the called party hangs up after 1.5 s
    container.attach_dialler()
    campaign = await container.campaigns.create(
        system,
        CampaignIn(
            name="Bench",
            mode=CampaignMode.NOTIFICATION,
            trunk="carrier",
            windows=[WindowIn(days=list(range(7)), start="00:00", end="24:00")],
            message_text="-",
            settings=CampaignSettings(max_lines=max_lines),
        ),
    )
    rows = "phone\n" + "".join(f"+74951{n:05d}0\n" for n in range(calls))
    report = await container.campaigns.import_contacts(system, campaign.id, rows.encode())
    assert report.applied and report.created == calls, report
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIOS / "carrier_crowd.xml"), "-i", CARRIER, "-mi", CARRIER, "-p", str(port),
        "-mp", str(free_port()), "-m", str(calls), "-nostdin", "-timeout", "600s",
        "-trace_err", "-error_file", str(workdir / "sipp-errors.log"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    await listening(port)  # sipp's socket is bound (the carrier's calls would be refused before)
    progress(f"dialling {calls} numbers, at most {max_lines} at once")
    started = time.perf_counter()
    cpu0 = time.process_time()
    await container.campaigns.move(system, campaign.id, "start")
    last_invite = started
    placed = 0
    while placed < calls:
        await asyncio.sleep(0.05)
        if voice.campaign_calls.dialled > placed:
            placed, last_invite = voice.campaign_calls.dialled, time.perf_counter()
        if time.perf_counter() - started > 300:
            break
    dial_s = last_invite - started
    cpu = time.process_time() - cpu0
    out, _ = await asyncio.wait_for(sipp.communicate(), 120)
    screen = out.decode(errors="replace")
    import re

    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    errors = workdir / "sipp-errors.log"
    if errors.exists():
        progress(
            "sipp errors (last lines):\n" + "\n".join(errors.read_text(errors="replace").splitlines()[-25:])
        )
    async with container.sessions() as s:
        failed = int(
            await s.scalar(
                select(func.count()).select_from(DialAttempt).where(DialAttempt.outcome == "failed")
            )
            or 0
        )
    await container.close()
    return {
        "live_dials_per_s": round(placed / dial_s, 1) if dial_s > 0 else 0.0,
        "live_calls": placed,
        "failed_setups": failed,
        "sipp_successful": int(ok[-1]) if ok else 0,
        "sipp_failed": int(bad[-1]) if bad else 0,
        "server_cpu_ms_per_dial": round(1000 * cpu / max(placed, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int)
    parser.add_argument("--max-lines", type=int, default=200)
    args = parser.parse_args()
    calls = args.calls or (300 if args.quick else 1500)
    with tempfile.TemporaryDirectory() as tmp:
        metrics = asyncio.run(live_dials(calls, args.max_lines, Path(tmp)))
    print(
        json.dumps(
            {
                "bench": "dialer_live",
                "quick": args.quick,
                "params": {"calls": calls, "max_lines": args.max_lines},
                "metrics": {**metrics, "machine_reference_ms": machine_reference_ms()},
                "baseline": None,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
