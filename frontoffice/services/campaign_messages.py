"""A campaign's recorded message: what an abandoned call hears (who calls, why, a number to call
back), and in notification mode what every answered call hears. Either an uploaded WAV or the
campaign's text rendered with espeak-ng by a job (off the request path: synthesis takes a second or
so); both are kept as a blob (8 kHz mono 16-bit WAV) named on the campaign."""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from collections.abc import Callable

from frontoffice.domain.exceptions import Conflict, InvalidInput
from frontoffice.store.blobs import BlobStore, record_blob

from .campaigns import Campaigns
from .context import Actor

__all__ = ["CampaignMessages", "Synthesizer", "WavDecoder"]

log = logging.getLogger("frontoffice.campaigns")

# text, language → 8 kHz 16-bit mono PCM (the voice channel's espeak-ng renderer).
Synthesizer = Callable[[str, str], bytes]
# any WAV → 8 kHz 16-bit mono PCM (raises ValueError for what is not a usable WAV).
WavDecoder = Callable[[bytes], bytes]
# An upload longer than this is refused (the message is cut at 60 s when played anyway).
MAX_WAV_BYTES = 5_000_000
SAMPLE_RATE = 8000
# Said after a notification's text (the same words as the voice prompt "notification_keys").
NOTIFICATION_KEYS = {
    "en": "Press 1 to confirm. Press 2 to talk to an operator.",
    "ru": "Нажмите 1, чтобы подтвердить. Нажмите 2, чтобы поговорить с оператором.",
}
# Decoded messages kept in memory, by blob.
CACHE_SIZE = 64


def pcm_to_wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    return out.getvalue()


class CampaignMessages:
    """Uploads, renders (as a job) and serves campaigns' messages."""

    def __init__(
        self,
        campaigns: Campaigns,
        blobs: BlobStore,
        *,
        synthesize: Synthesizer | None = None,
        decode: WavDecoder | None = None,
    ) -> None:
        self.campaigns = campaigns
        self.blobs = blobs
        self.synthesize = synthesize
        self.decode = decode
        self._pcm: dict[str, bytes] = {}
        self._jobs: set[asyncio.Task[bool]] = set()
        # One rendering at a time (the job, and a call that needs the audio before the job is done).
        self._rendering = asyncio.Lock()

    async def upload(self, actor: Actor, campaign_id: int, data: bytes) -> None:
        actor.require("routing.write")
        if len(data) > MAX_WAV_BYTES:
            raise InvalidInput("The file is too big", error_id="wav-too-big", max_bytes=MAX_WAV_BYTES)
        if self.decode is None:
            raise Conflict("Audio cannot be read on this server", error_id="no-audio-decoder")
        try:
            pcm = await asyncio.to_thread(self.decode, data)
        except (ValueError, EOFError, wave.Error) as exc:
            raise InvalidInput(
                "Not a usable WAV file", error_id="invalid-wav", reason=str(exc)[:200]
            ) from None
        await self._store(actor, campaign_id, pcm)

    async def _store(self, actor: Actor | None, campaign_id: int, pcm: bytes) -> None:
        wav = pcm_to_wav(pcm)
        ref = await self.blobs.write(wav)
        async with self.campaigns.sessions.begin() as s:
            await record_blob(s, ref)
        await self.campaigns.set_message_audio(actor, campaign_id, ref.sha256)
        self._pcm[ref.sha256] = pcm

    def render_soon(self, campaign_id: int) -> None:
        """Start the job that renders the campaign's text (no-op without espeak-ng)."""
        if self.synthesize is None:
            return
        task = asyncio.get_running_loop().create_task(self.render(campaign_id))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def render(self, campaign_id: int) -> bool:
        """Render the campaign's message text now (the job's body); False when there is nothing to do."""
        async with self._rendering:
            return await self._render(campaign_id)

    async def _render(self, campaign_id: int) -> bool:
        message = await self.campaigns.message_of(campaign_id)
        text, language = message.get("text", ""), message.get("language", "en")
        if text and message.get("mode") == "notification":
            text = f"{text} {NOTIFICATION_KEYS.get(language, NOTIFICATION_KEYS['en'])}"
        if not text or message.get("wav") or self.synthesize is None:
            return False
        try:
            pcm = await asyncio.to_thread(self.synthesize, text, language)
        except Exception:
            log.exception("rendering campaign %s's message failed", campaign_id)
            return False
        await self._store(None, campaign_id, pcm)
        return True

    async def audio(self, campaign_id: int) -> bytes:
        """The message as PCM (rendered first if it only has a text); empty when it has none."""
        message = await self.campaigns.message_of(campaign_id)
        sha = message.get("wav")
        if not sha:
            if await self.render(campaign_id):
                sha = (await self.campaigns.message_of(campaign_id)).get("wav")
            if not sha:
                return b""
        cached = self._pcm.get(sha)
        if cached is not None:
            return cached
        data = await self.blobs.read(sha)
        with wave.open(io.BytesIO(data)) as wav:
            pcm = bytes(wav.readframes(wav.getnframes()))
        if len(self._pcm) >= CACHE_SIZE:
            self._pcm.pop(next(iter(self._pcm)))
        self._pcm[sha] = pcm
        return pcm
