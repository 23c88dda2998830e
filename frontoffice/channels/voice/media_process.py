"""The media of every call in a process of its own: :class:`ProcessMediaBackend`.

The RTP relay, music on hold, prompts, DTMF detection and recording are a packet every 20 ms per call
and direction: 200 bridged calls are 20,000 datagrams a second. In the signalling process they compete
with SIP and the ACD for one core (measured: about half a core at 200 relayed calls, and a twentieth of
every call setup's CPU for the music while callers wait). This backend runs the same
:class:`~frontoffice.channels.voice.media.PythonMediaBackend` in a child process on uvloop, so media has
a core of its own and the signalling process only sends a few short commands per call.

The pipe protocol: one JSON object per line, each way. The parent sends ``open``, ``caller`` and
``agent`` (a leg's negotiated media and its peer's ``signalling_ip``, for source latching),
``update_caller`` and ``update_agent`` (the peer's re-INVITE), ``join`` and ``leave`` (a leg and a
conference), ``record_with`` (a third party's session recorded in another's recording), ``music``,
``sound`` (a prompt's audio, once per distinct prompt), ``prompt``, ``bridge``, ``record``, ``amd``
(answering-machine detection on the caller leg: its parameters and the WAV to write), ``close``
and ``exit``; the child answers ``opened`` (with the two RTP ports) and ``closed``
(with the final counters), and reports ``dtmf`` digits, ``amd`` decisions (and ``amd_greeting_end``),
and ``stats`` (the counters of sessions that changed, twice a second) as they happen. The child exits
when its standard input closes, so it never outlives the server. If it dies, the calls it carried
lose their audio (they stay up; hanging up works) and the next call starts a new one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

from frontoffice.domain.dialer import AmdCause, AmdDecision, AmdParameters, AmdResult

from .answering_machine import AmdHandler, GreetingEndHandler
from .media import (
    DtmfHandler,
    MediaPortsExhausted,
    MediaSession,
    MediaStats,
    PythonMediaBackend,
    RtpPorts,
    hold_music_pcm,
)
from .sip import Codec, NegotiatedMedia

__all__ = ["ProcessMediaBackend", "main"]

log = logging.getLogger("frontoffice.voice.media")

# How often the child reports the counters of sessions that changed (seconds).
STATS_INTERVAL_S = 0.5
# How long open_session waits for the child's ports, and close for its counters.
REPLY_TIMEOUT_S = 10.0
# A line from the child longer than this is a fault (the largest is a session's counters).
MAX_LINE = 1 << 20
_STATS_FIELDS = tuple(f.name for f in dataclasses.fields(MediaStats))
# Counted by the signalling side (the announcements it asked for), not by the media process.
_PARENT_FIELDS = ("announcements",)


class _Lines:
    """JSON lines to a pipe, written together once per loop turn.

    A step of a call sends several commands at once (the caller's media, the music; the agent's media,
    the bridge, the recording), and a write is a system call that also wakes the reader: written one
    by one they cost both sides noticeably more than the commands themselves.
    """

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._pending: list[bytes] = []
        self._flushing: asyncio.Handle | None = None

    def send(self, message: dict[str, Any]) -> None:
        self._pending.append(json.dumps(message, separators=(",", ":")).encode())
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what is waiting now."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        if self._pending:
            data = b"\n".join(self._pending) + b"\n"
            self._pending.clear()
            self._write(data)


def _media_json(media: NegotiatedMedia) -> dict[str, Any]:
    return dataclasses.asdict(media)


def _media_from(data: dict[str, Any]) -> NegotiatedMedia:
    event = data.get("telephone_event")
    return NegotiatedMedia(
        remote_address=str(data["remote_address"]),
        remote_port=int(data["remote_port"]),
        codec=Codec(**data["codec"]),
        telephone_event=None if event is None else Codec(**event),
        direction=str(data["direction"]),
        ptime=data.get("ptime"),
    )


class _ProcessSession:
    """The parent's handle on one session in the media process (the :class:`MediaSession` protocol)."""

    def __init__(self, backend: ProcessMediaBackend, session_id: int, ports: tuple[int, int]) -> None:
        self._backend = backend
        self.id = session_id
        self.address = backend.address
        self.caller_port, self.agent_port = ports
        self.stats = MediaStats()
        self.closed = False
        self.caller_media: NegotiatedMedia | None = None
        self.agent_media: NegotiatedMedia | None = None

    def _send(self, op: str, **fields: Any) -> None:
        if not self.closed:
            self._backend._send({"op": op, "id": self.id, **fields})

    def set_caller(self, media: NegotiatedMedia, *, signalling_ip: str | None = None) -> None:
        self.caller_media = media
        self._send("caller", media=_media_json(media), signalling_ip=signalling_ip)

    def set_agent(self, media: NegotiatedMedia, *, signalling_ip: str | None = None) -> None:
        self.agent_media = media
        self._send("agent", media=_media_json(media), signalling_ip=signalling_ip)

    def update_caller(self, media: NegotiatedMedia) -> None:
        self.caller_media = media
        self._send("update_caller", media=_media_json(media))

    def update_agent(self, media: NegotiatedMedia) -> None:
        self.agent_media = media
        self._send("update_agent", media=_media_json(media))

    def play_hold_music(self) -> None:
        self._send("music")

    def play_prompt(self, pcm: bytes) -> None:
        self._send("prompt", sound=self._backend._sound(pcm))

    def bridge(self) -> None:
        self._send("bridge")
        # At once, not with the loop turn's other lines: the caller's 200 OK goes out next, and the
        # audio it starts must find the bridge in place (packets before it are not relayed).
        self._backend._flush()

    def record(self, mixed_path: Path, stereo_path: Path | None = None) -> None:
        self._send("record", mixed=str(mixed_path), stereo=None if stereo_path is None else str(stereo_path))

    def detect_answering_machine(
        self,
        parameters: AmdParameters,
        audio_path: Path | None,
        on_result: AmdHandler,
        on_greeting_end: GreetingEndHandler | None = None,
    ) -> None:
        if self.closed:
            return
        self._backend._amd[self.id] = (on_result, on_greeting_end)
        self._send(
            "amd",
            parameters=dataclasses.asdict(parameters),
            audio=None if audio_path is None else str(audio_path),
            greeting_end=on_greeting_end is not None,
        )

    async def close(self) -> MediaStats:
        if self.closed:
            return self.stats
        await self._backend._close_session(self)
        return self.stats

    def update(self, counters: dict[str, Any]) -> None:
        for name in _STATS_FIELDS:
            if name in counters and name not in _PARENT_FIELDS:
                setattr(self.stats, name, counters[name])


class ProcessMediaBackend:
    """:class:`~frontoffice.channels.voice.media.MediaBackend` whose sessions live in a child process
    (``python -m frontoffice.channels.voice.media_process``), started with the first call."""

    def __init__(
        self,
        address: str,
        *,
        music: bytes | None = None,
        python: str = sys.executable,
        event_loop: str = "auto",
        rtp_ports: RtpPorts | None = None,
    ) -> None:
        self.address = address
        self.rtp_ports = rtp_ports if rtp_ports is not None else RtpPorts()
        self.music = music if music is not None else hold_music_pcm()
        self._python = python
        self._event_loop = event_loop
        self._process: asyncio.subprocess.Process | None = None
        self._lines: _Lines | None = None  # to the running child
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._ids = count(1)
        self._sessions: dict[int, _ProcessSession] = {}
        self._dtmf: dict[int, DtmfHandler] = {}
        self._amd: dict[int, tuple[AmdHandler, GreetingEndHandler | None]] = {}
        self._replies: dict[tuple[str, int], asyncio.Future[dict[str, Any]]] = {}
        self._sounds: dict[bytes, str] = {}  # prompt audio -> its key in the running child

    # ------------------------------------------------------------------ life cycle
    @property
    def pid(self) -> int | None:
        """The media process's id while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the media process (the first call would otherwise wait for it)."""
        await self._ensure_started()

    async def _ensure_started(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.pid is not None:
                return
            self._process = await asyncio.create_subprocess_exec(
                self._python, "-m", "frontoffice.channels.voice.media_process",
                "--address", self.address, "--event-loop", self._event_loop,
                "--rtp-ports", self.rtp_ports.spec,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=MAX_LINE,
            )  # fmt: skip
            self._lines = _Lines(partial(self._write_to, self._process))
            self._sounds.clear()
            self._send({"op": "hold_music", "pcm": base64.b64encode(self.music).decode()})
            self._reader = asyncio.get_running_loop().create_task(self._read(self._process))

    async def close(self) -> None:
        """Close every session and stop the media process."""
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                await session.close()
        process, self._process = self._process, None
        lines, self._lines = self._lines, None
        if process is None:
            return
        if process.returncode is None:
            if lines is not None:
                lines.send({"op": "exit"})
                lines.flush()
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), REPLY_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None

    # ------------------------------------------------------------------ sessions
    async def open_session(self, on_dtmf: DtmfHandler) -> MediaSession:
        await self._ensure_started()
        session_id = next(self._ids)
        reply = await self._request("opened", session_id, {"op": "open", "id": session_id})
        session = _ProcessSession(self, session_id, (int(reply["caller_port"]), int(reply["agent_port"])))
        self._sessions[session_id] = session
        self._dtmf[session_id] = on_dtmf
        return session

    async def _close_session(self, session: _ProcessSession) -> None:
        session.closed = True
        self._dtmf.pop(session.id, None)
        self._amd.pop(session.id, None)
        try:
            reply = await self._request("closed", session.id, {"op": "close", "id": session.id})
            session.update(reply.get("stats", {}))
        except (ConnectionError, TimeoutError, RuntimeError) as exc:
            log.warning("media session %s: no final counters (%s)", session.id, exc)
        finally:
            self._sessions.pop(session.id, None)

    def join_conference(self, conference_id: str, session: MediaSession, side: str) -> None:
        """Put the ``side`` leg of ``session`` in conference ``conference_id``, in the media process
        (see :class:`~frontoffice.channels.voice.media.MediaBackend`)."""
        if not isinstance(session, _ProcessSession):
            raise TypeError("not a session of this backend")
        session._send("join", conference=conference_id, side=side)

    def leave_conference(self, conference_id: str, session: MediaSession, side: str) -> None:
        """Take the ``side`` leg of ``session`` out of conference ``conference_id``."""
        if isinstance(session, _ProcessSession):
            session._send("leave", conference=conference_id, side=side)

    def record_with(self, session: MediaSession, recording: MediaSession) -> None:
        """Record the agent leg of ``session`` in ``recording``'s recording, in the media process
        (see :class:`~frontoffice.channels.voice.media.MediaBackend`)."""
        if not isinstance(session, _ProcessSession) or not isinstance(recording, _ProcessSession):
            raise TypeError("not a session of this backend")
        session._send("record_with", recording=recording.id)

    def _sound(self, pcm: bytes) -> str:
        """The key of a prompt's audio in the child, sending the audio the first time."""
        key = self._sounds.get(pcm)
        if key is None:
            key = self._sounds[pcm] = hashlib.sha256(pcm).hexdigest()[:16]
            self._send({"op": "sound", "key": key, "pcm": base64.b64encode(pcm).decode()})
        return key

    # ------------------------------------------------------------------ the pipe
    def _send(self, message: dict[str, Any]) -> None:
        if self._process is not None and self._lines is not None:
            self._lines.send(message)

    def _flush(self) -> None:
        if self._lines is not None:
            self._lines.flush()

    @staticmethod
    def _write_to(process: asyncio.subprocess.Process, data: bytes) -> None:
        """Write to ``process`` if it still runs (lines for a child that died are dropped)."""
        stdin = process.stdin
        if stdin is None or stdin.is_closing() or process.returncode is not None:
            return
        stdin.write(data)

    async def _request(self, reply: str, session_id: int, message: dict[str, Any]) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[(reply, session_id)] = future
        try:
            if self.pid is None:
                raise ConnectionError("the media process is not running")
            self._send(message)
            return await asyncio.wait_for(future, REPLY_TIMEOUT_S)
        finally:
            self._replies.pop((reply, session_id), None)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                try:
                    self._dispatch(json.loads(line))
                except Exception:
                    log.exception("media process: bad message %r", line[:200])
        except (ValueError, ConnectionError) as exc:
            log.error("media process: pipe failed: %s", exc)
        code = await process.wait()
        if self._process is process:
            log.error("media process exited (code %s); its calls have no audio", code)
            self._process = None
            # Its sessions are gone with it: commands for them must not reach the next process.
            for session in self._sessions.values():
                session.closed = True
            self._sessions.clear()
            self._dtmf.clear()
            self._amd.clear()
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("the media process exited"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        session_id = int(message.get("id", 0))
        if op == "dtmf":
            handler = self._dtmf.get(session_id)
            if handler is not None:
                handler(str(message["digit"]))
        elif op == "amd_greeting_end":
            handlers = self._amd.pop(session_id, None)
            if handlers is not None and handlers[1] is not None:
                handlers[1]()
        elif op == "amd":
            handlers = self._amd.get(session_id)
            if handlers is not None:
                if message["decision"] != AmdDecision.MACHINE.value or handlers[1] is None:
                    del self._amd[session_id]
                handlers[0](
                    AmdResult(
                        AmdDecision(message["decision"]),
                        AmdCause(message["cause"]),
                        int(message["ms"]),
                        int(message.get("words", 0)),
                    )
                )
        elif op == "stats":
            for key, counters in message["sessions"].items():
                session = self._sessions.get(int(key))
                if session is not None:
                    session.update(counters)
        elif op == "error":
            # A full RTP range is no fault: the refused call or action says so where it is answered.
            exhausted = message.get("error_id") == MediaPortsExhausted.error_id
            if not exhausted:
                log.error("media process: %s failed: %s", message.get("command"), message.get("error"))
            reply = {"open": "opened", "close": "closed"}.get(str(message.get("command")))
            waiting = self._replies.get((str(reply), session_id))
            if waiting is not None and not waiting.done():
                waiting.set_exception(
                    MediaPortsExhausted()
                    if exhausted
                    else RuntimeError(f"media process: {message.get('error')}")
                )
            return
        future = self._replies.get((str(op), session_id))
        if future is not None and not future.done():
            future.set_result(message)


# ====================================================================== the child process
class _Child:
    """The media process: commands from standard input, events to standard output."""

    def __init__(
        self, address: str, out: asyncio.StreamWriter | asyncio.WriteTransport, rtp_ports: RtpPorts
    ) -> None:
        self.address = address
        self.out = out
        self.lines = _Lines(out.write)
        self.backend = PythonMediaBackend(address, rtp_ports=rtp_ports)
        self.sessions: dict[int, MediaSession] = {}
        self.sounds: dict[str, bytes] = {}
        self.reported: dict[int, tuple[Any, ...]] = {}
        self.closing: set[asyncio.Task[None]] = set()

    def emit(self, message: dict[str, Any]) -> None:
        self.lines.send(message)

    async def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "hold_music":
            self.backend.music = base64.b64decode(message["pcm"])
            return
        if op == "sound":
            self.sounds[message["key"]] = base64.b64decode(message["pcm"])
            return
        session_id = int(message["id"])
        if op == "open":
            session = await self.backend.open_session(
                lambda digit: self.emit({"op": "dtmf", "id": session_id, "digit": digit})
            )
            self.sessions[session_id] = session
            self.emit(
                {"op": "opened", "id": session_id, "caller_port": session.caller_port,
                 "agent_port": session.agent_port}
            )  # fmt: skip
            return
        session = self.sessions[session_id]
        if op == "caller":
            session.set_caller(_media_from(message["media"]), signalling_ip=message.get("signalling_ip"))
        elif op == "agent":
            session.set_agent(_media_from(message["media"]), signalling_ip=message.get("signalling_ip"))
        elif op == "join":
            self.backend.join_conference(str(message["conference"]), session, str(message["side"]))
        elif op == "leave":
            self.backend.leave_conference(str(message["conference"]), session, str(message["side"]))
        elif op == "record_with":
            recording = self.sessions.get(int(message["recording"]))
            if recording is not None:  # closed meanwhile: nothing left to record into
                self.backend.record_with(session, recording)
        elif op == "update_caller":
            session.update_caller(_media_from(message["media"]))
        elif op == "update_agent":
            session.update_agent(_media_from(message["media"]))
        elif op == "music":
            session.play_hold_music()
        elif op == "prompt":
            session.play_prompt(self.sounds[message["sound"]])
        elif op == "bridge":
            session.bridge()
        elif op == "record":
            stereo = message.get("stereo")
            session.record(Path(message["mixed"]), None if stereo is None else Path(stereo))
        elif op == "amd":
            audio = message.get("audio")
            session.detect_answering_machine(
                AmdParameters(**message["parameters"]),
                None if audio is None else Path(audio),
                partial(self._amd_result, session_id),
                partial(self.emit, {"op": "amd_greeting_end", "id": session_id})
                if message.get("greeting_end")
                else None,
            )
        elif op == "close":
            del self.sessions[session_id]
            self.reported.pop(session_id, None)
            # Finishing a recording takes a while (mixing on a thread): the next commands go on.
            task = asyncio.get_running_loop().create_task(self._close(session_id, session))
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)
        else:
            raise ValueError(f"unknown command {op!r}")

    def _amd_result(self, session_id: int, result: AmdResult) -> None:
        self.emit(
            {"op": "amd", "id": session_id, "decision": result.decision.value, "cause": result.cause.value,
             "ms": result.ms, "words": result.words}
        )  # fmt: skip

    async def _close(self, session_id: int, session: MediaSession) -> None:
        try:
            stats = await session.close()
        except Exception as exc:
            log.exception("closing a media session failed")
            self.emit({"op": "error", "id": session_id, "command": "close", "error": repr(exc)})
            return
        finally:
            self.backend.forget(session)
        self.emit({"op": "closed", "id": session_id, "stats": dataclasses.asdict(stats)})

    async def report(self) -> None:
        """Twice a second, the counters of the sessions that changed (live figures for the desk)."""
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            changed: dict[str, dict[str, Any]] = {}
            for session_id, session in self.sessions.items():
                values = dataclasses.astuple(session.stats)
                if self.reported.get(session_id) != values:
                    self.reported[session_id] = values
                    changed[str(session_id)] = dataclasses.asdict(session.stats)
            if changed:
                self.emit({"op": "stats", "sessions": changed})


async def _serve(address: str, rtp_ports: RtpPorts) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 << 20)  # the music arrives as one line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    child = _Child(address, transport, rtp_ports)
    reporter = loop.create_task(child.report())
    try:
        while line := await reader.readline():
            message = json.loads(line)
            if message.get("op") == "exit":
                break
            try:
                await child.handle(message)
            except Exception as exc:  # one bad command must not take every call's audio down
                if isinstance(exc, MediaPortsExhausted):  # the range is full: a call refused, no fault
                    log.warning("media command %s: %s", message.get("op"), exc)
                else:
                    log.exception("media command failed")
                child.emit(
                    {
                        "op": "error",
                        "id": message.get("id", 0),
                        "command": message.get("op"),
                        "error": repr(exc),
                        "error_id": getattr(exc, "error_id", None),
                    }
                )
    finally:
        reporter.cancel()
        if child.closing:
            await asyncio.wait(child.closing)
        await child.backend.close()
        child.lines.flush()
        transport.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the media process (started by :class:`ProcessMediaBackend`)."""
    from frontoffice import aio

    parser = argparse.ArgumentParser(description="Frontoffice media process (RTP relay, music, recording)")
    parser.add_argument("--address", required=True, help="address the RTP sockets bind to")
    parser.add_argument("--event-loop", default="auto", choices=("auto", "uvloop", "asyncio"))
    parser.add_argument("--rtp-ports", default="", help="first-last: the RTP ports (empty: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Ctrl-C in a terminal reaches the whole process group: the server decides when media stops (it
    # closes the pipe), so calls keep their audio while it hangs them up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    aio.run(_serve(args.address, RtpPorts.parse(args.rtp_ports)), args.event_loop)


if __name__ == "__main__":
    main()
