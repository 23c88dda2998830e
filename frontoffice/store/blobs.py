"""Content stored once by its SHA-256: attachments, inline images, raw messages, faxes.

The bytes live in files under ``<data_dir>/blobs/<aa>/<bb>/<sha256>`` (two levels of fan-out keep a
directory under a few thousand entries at millions of blobs); the ``blobs`` table records that a
blob exists, in the same transaction as the message that refers to it. A file is written before the
row's transaction commits (temporary name, fsync, rename), so a committed row always has its file;
a crash can leave a file without a row, which costs disk space but loses nothing and is found again
by the next message with the same content.

Writing and reading files runs in a worker thread: nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.store.tables import Blob, utcnow

__all__ = ["BlobRef", "BlobStore", "record_blob", "record_blobs"]


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: its SHA-256 (hex) and size in bytes."""

    sha256: str
    size: int


class BlobStore:
    """Files by content hash under ``root``; rows in ``blobs`` through the caller's session."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob ``sha256`` lives (whether or not it exists)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _write(self, data: bytes) -> BlobRef:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(data):
            return BlobRef(digest, len(data))
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{digest}.{os.getpid()}.tmp")
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
        return BlobRef(digest, len(data))

    async def put(self, session: AsyncSession, data: bytes) -> BlobRef:
        """Store ``data`` (once) and record it in ``session``'s transaction; return its reference."""
        ref = await self.write(data)
        await record_blob(session, ref)
        return ref

    async def write(self, data: bytes) -> BlobRef:
        """Write ``data``'s file (once, fsynced) without recording it: for a caller whose transaction
        should not wait for the disk (the contact path writes files first, then records them in its
        transaction with :func:`record_blob`)."""
        return await asyncio.to_thread(self._write, data)

    async def write_all(self, items: Sequence[bytes]) -> list[BlobRef]:
        """:meth:`write` for several blobs (a message's raw bytes and its attachments) in one
        worker-thread hop; each file is fsynced before this returns."""
        return await asyncio.to_thread(lambda: [self._write(data) for data in items])

    async def read(self, sha256: str) -> bytes:
        """The bytes of the blob ``sha256`` (``FileNotFoundError`` when it is not stored)."""
        return await asyncio.to_thread(self.path(sha256).read_bytes)


# Built once per dialect (a statement costs more to build than SQLite takes to run it): a blob's row,
# or nothing when it is recorded already. On the table, not the ORM class: an insert of the ORM
# class goes through the ORM's bulk-insert machinery, which cost twice the statement itself.
_BLOBS = cast(Table, Blob.__table__)
_RECORD = {
    "postgresql": pg_insert(_BLOBS).on_conflict_do_nothing(index_elements=["sha256"]),
    "sqlite": sqlite_insert(_BLOBS).on_conflict_do_nothing(index_elements=["sha256"]),
}


async def record_blob(session: AsyncSession, ref: BlobRef) -> None:
    """Record a written blob in ``session``'s transaction. Two messages carrying the same file may
    be stored at once: the insert that comes second does nothing instead of failing its transaction."""
    await record_blobs(session, [ref])


async def record_blobs(session: AsyncSession, refs: Sequence[BlobRef]) -> None:
    """:func:`record_blob` for several blobs, in one statement."""
    if not refs:
        return
    now = utcnow()
    await session.execute(
        _RECORD[session.get_bind().dialect.name],
        [{"sha256": ref.sha256, "size": ref.size, "created_at": now} for ref in refs],
    )
