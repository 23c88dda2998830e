"""Linphone's console client (``linphonec``, Debian's linphone-cli 5.1) as a headless agent phone.

Each phone gets its own linphonerc in a temporary directory (its own ``HOME`` too, so nothing of the
user's is read or written): a SIP port on loopback, one account (``[proxy_0]`` and ``[auth_info_0]``)
registering with digest to our registrar, G.711 only, no ICE/AVPF/STUN, and no sound card: linphonec
is told ``soundcard use files`` at start, so Mediastreamer2's file player is its microphone (a WAV tone,
``play``) and its file recorder its speaker (``record``). The phone is driven over its stdin (one
command a line, as typed at its prompt) and every line it prints is kept, so a test waits for what the
phone says ("Call 1 with ... connected.") instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from ..conftest import require_tool
from .sipp.runner import HOST, free_port

LINPHONERC = """\
[sip]
sip_port={sip_port}
sip_tcp_port=0
sip_tls_port=0
auto_net_state_mon=0
default_proxy=0
register_only_when_network_is_up=0
register_only_when_upnp_is_ok=0
guess_hostname=0
contact=sip:{username}@{host}:{sip_port}
inc_timeout=15
[net]
firewall_policy=0
nat_policy_ref=
[rtp]
audio_rtp_port={rtp_port}
video_rtp_port={video_port}
rtcp_mux=0
[sound]
echocancellation=0
[video]
enabled=0
capture=0
display=0
[misc]
max_calls=4
[proxy_0]
reg_proxy=<sip:{host}:{registrar_port}>
reg_route=
reg_identity=sip:{username}@{host}:{registrar_port}
reg_expires=300
reg_sendregister=1
publish=0
avpf=0
dial_escape_plus=0
[auth_info_0]
username={username}
userid={username}
passwd={password}
domain={host}:{registrar_port}
[audio_codec_0]
mime=PCMU
rate=8000
channels=1
enabled=1
[audio_codec_1]
mime=PCMA
rate=8000
channels=1
enabled=1
[audio_codec_2]
mime=telephone-event
rate=8000
channels=1
enabled=1
"""


def write_tone(path: Path, seconds: int = 10) -> None:
    """A 440 Hz tone, 8 kHz mono 16-bit: what the agent "says" into the file microphone."""
    with wave.open(str(path), "wb") as tone:
        tone.setnchannels(1)
        tone.setsampwidth(2)
        tone.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(8000 * seconds))
        tone.writeframes(b"".join(struct.pack("<h", v) for v in samples))


class LinphonePhone:
    """One running linphonec: send it commands, wait for what it prints."""

    def __init__(self, name: str, confdir: Path, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.confdir = confdir
        self.process = process
        self.lines: list[str] = []
        self.partial = ""
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        partial = ""
        with (self.confdir / "stdout.log").open("w") as log:
            while True:
                chunk = await self.process.stdout.read(4096)
                if not chunk:
                    break
                text = chunk.decode(errors="replace")
                log.write(text)
                log.flush()
                # The prompt has no newline ("linphonec> Call 1 ..." arrives as one line), nor has a
                # question ("Password for alice on frontoffice: "): the unfinished line is kept too.
                *done, partial = (partial + text).split("\n")
                self.lines.extend(line.replace("linphonec> ", "").rstrip() for line in done)
                self.partial = partial.replace("linphonec> ", "")
                self._changed.set()
        self._changed.set()

    async def send(self, command: str) -> None:
        """Type one command at linphonec's prompt."""
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, pattern: str, *, after: int = 0, timeout_s: float = 20.0) -> re.Match[str]:
        """Wait until linphonec prints a line matching ``pattern`` (a regex searched in each line
        from line ``after`` on) and return the match; fail with the phone's output if it never does.
        The timeout only bounds a hung test."""
        compiled = re.compile(pattern)
        seen = after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for line in [*self.lines[seen:], self.partial]:
                found = compiled.search(line)
                if found:
                    return found
            seen = len(self.lines)
            if self._reader.done():
                raise AssertionError(f"linphonec {self.name} quit waiting for {pattern!r}:\n{self.output()}")
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"linphonec {self.name} never printed {pattern!r}:\n{self.output()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def mark(self) -> int:
        """The number of lines printed so far: pass it to :meth:`expect` to wait for what comes next."""
        return len(self.lines)

    def output(self) -> str:
        """What the phone printed, and the end of its liblinphone log (for a failing assertion)."""
        log = self.confdir / "linphone.log"
        detail = log.read_text(errors="replace")[-6000:] if log.exists() else ""
        return "\n".join(self.lines[-80:]) + "\n--- linphone.log ---\n" + detail


@contextlib.asynccontextmanager
async def linphone_phone(
    confdir: Path, username: str, password: str, registrar_port: int, *, auto_answer: bool = True
) -> AsyncIterator[LinphonePhone]:
    """Start linphonec with a generated linphonerc registering ``username`` to our registrar on
    loopback; files instead of a sound card (a tone in, what it hears recorded to ``heard.wav``)."""
    linphonec = require_tool("linphonec")
    # liblinphone 5.1 does not start (no SIP transport at all) when it cannot create its database.
    (confdir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
    write_tone(confdir / "tone.wav")
    rc = confdir / "linphonerc"
    rc.write_text(
        LINPHONERC.format(
            host=HOST,
            sip_port=free_port(),
            rtp_port=free_port(),
            video_port=free_port(),
            registrar_port=registrar_port,
            username=username,
            password=password,
        )
    )
    process = await asyncio.create_subprocess_exec(
        linphonec,
        "-c",
        str(rc),
        "-S",
        "-d",
        "5",
        "-l",
        str(confdir / "linphone.log"),
        *(["-a"] if auto_answer else []),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=confdir,
        env={"HOME": str(confdir), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    phone = LinphonePhone(username, confdir, process)
    try:
        await phone.send("soundcard use files")
        await phone.send(f"play {confdir / 'tone.wav'}")
        await phone.send(f"record {confdir / 'heard.wav'}")
        yield phone
    finally:
        if "Password for" in phone.partial:  # it would take "quit" for a password
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        else:
            with contextlib.suppress(Exception):
                await phone.send("quit")
        try:
            await asyncio.wait_for(process.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 3)
            except TimeoutError:
                process.kill()
                await process.wait()
        await phone._reader
