"""Rows of the append-only logs (interaction and agent events, the audit log), written in one
statement per table.

A contact's life cycle appends about ten log rows. Added as ORM objects, each cost a unit-of-work pass
and, since they are flushed at different moments, its own ``INSERT``. Log rows are never read back
or changed in the transaction that writes them, so they are kept as plain rows in the session and
inserted together, in the order they were appended:

* before the transaction commits (``before_commit``), so they commit with the change they record;
* before any ORM query in the same transaction (``do_orm_execute``), so a read in that transaction
  sees them, as it would have seen autoflushed objects — unless the query is executed with
  :data:`NOT_READING_LOGS` (it reads no log table, so the rows wait and go out in one statement
  with the rest).

The routing engine's outputs are collected with the rows (:func:`collect`). After the commit, the
rows that were written and the outputs go out together, from one place: the session class's
:class:`~frontoffice.store.committed.CommitOutlet` (see :func:`install`); a rollback drops them.
Code that rolls back to a savepoint takes a mark with :func:`write_now` before it and calls
:func:`discard_since` after the rollback.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from frontoffice.domain import routing as r

from .committed import CommitOutlet, Committed
from .prepared import Prepared
from .tables import AgentEvent, InteractionEvent

__all__ = [
    "NOT_READING_LOGS",
    "append_row",
    "collect",
    "committed_rows",
    "discard_since",
    "install",
    "transaction_rows",
    "write_now",
]

_UNWRITTEN = "frontoffice.log_rows.unwritten"
_WRITTEN = "frontoffice.log_rows.written"
_NOT_READING = "frontoffice.not_reading_logs"
_OUTPUTS = "frontoffice.engine_outputs"
_INTERACTION_EVENTS = cast(Table, InteractionEvent.__table__)
_AGENT_EVENTS = cast(Table, AgentEvent.__table__)
# Execution options of a query that reads no log table: it does not write the rows appended so far.
NOT_READING_LOGS = {_NOT_READING: True}


def append_row(session: AsyncSession | Session, table: Table, row: dict[str, Any]) -> None:
    """Append ``row`` to ``table`` in the session's transaction (written before commit or a read)."""
    session.info.setdefault(_UNWRITTEN, []).append((table, row))


def collect(session: AsyncSession | Session, outputs: list[r.Output]) -> None:
    """Keep the engine's ``outputs`` with the transaction: they go out with its log rows after the
    commit (and are dropped by a rollback)."""
    if outputs:
        session.info.setdefault(_OUTPUTS, []).extend(outputs)


def committed_rows(session: Session, table: Table) -> list[dict[str, Any]]:
    """The rows of ``table`` the transaction that just committed wrote (call from ``after_commit``).

    SQLAlchemy fires ``after_commit`` for a savepoint's release too, while the transaction around it
    can still roll back; nothing is committed then, so the answer is empty. (The ACD's group commit
    releases a savepoint per command: before this check, every release handed the live statistics
    all the rows of the batch so far, again and again.)
    """
    if session.in_nested_transaction():
        return []
    return [row for t, row in session.info.get(_WRITTEN, ()) if t is table]


def transaction_rows(session: Session, table: Table) -> list[dict[str, Any]]:
    """The rows of ``table`` appended in the session's current transaction so far, written or not,
    in the order they were appended (a ``before_commit`` hook that derives more rows from them: the
    webhooks of a change, ``services/webhooks.py``)."""
    written = [row for t, row in session.info.get(_WRITTEN, ()) if t is table]
    return written + [row for t, row in session.info.get(_UNWRITTEN, ()) if t is table]


@functools.cache
def _insert(table: Table) -> Prepared:
    return Prepared(insert(table))


def _write(session: Session) -> None:
    pending: list[tuple[Table, dict[str, Any]]] | None = session.info.pop(_UNWRITTEN, None)
    if not pending:
        return
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for table, row in pending:
        by_table.setdefault(table, []).append(row)
    connection = session.connection()  # the rows are plain, no ORM bulk-insert machinery
    for table, rows in by_table.items():
        _insert(table).run_sync(connection, rows)
    session.info.setdefault(_WRITTEN, []).extend(pending)


def write_now(session: Session) -> int:
    """Insert the rows appended so far and return a mark for :func:`discard_since`.

    Called before a savepoint, so that the rows of earlier work in the transaction are written outside
    it and a rollback to the savepoint takes only rows appended after the mark with it.
    """
    _write(session)
    return len(session.info.get(_WRITTEN, ()))


def discard_since(session: Session, mark: int) -> None:
    """Forget the rows appended after ``mark`` (the transaction rolled back to a savepoint taken at
    ``mark``): they are neither written nor reported as committed."""
    session.info.pop(_UNWRITTEN, None)
    written = session.info.get(_WRITTEN)
    if written is not None:
        del written[mark:]


def _before_query(state: ORMExecuteState) -> None:
    if (
        state.is_select
        and state.session.info.get(_UNWRITTEN)
        and not state.execution_options.get(_NOT_READING)
    ):
        _write(state.session)


def _forget_written(session: Session, transaction: SessionTransaction, *_: Any) -> None:
    if transaction.parent is None:  # a new transaction, not a savepoint inside one
        session.info.pop(_WRITTEN, None)


def _forget_all(session: Session, previous: SessionTransaction) -> None:
    # The whole transaction rolled back. (A rollback to a savepoint keeps what was written before
    # it: whoever took the savepoint calls discard_since with its mark.)
    if previous.parent is None:
        session.info.pop(_UNWRITTEN, None)
        session.info.pop(_WRITTEN, None)
        session.info.pop(_OUTPUTS, None)


def install(session_class: type[Session], outlet: CommitOutlet) -> None:
    """Hook the writer into a session class (done once per container by ``session_factory``); what
    its transactions commit goes out through ``outlet``."""

    def committed(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: nothing is committed yet
        written = session.info.get(_WRITTEN, ())
        outputs = session.info.pop(_OUTPUTS, ())
        if not written and not outputs:
            return
        outlet.publish(
            Committed(
                outputs=outputs,
                interaction_events=[row for t, row in written if t is _INTERACTION_EVENTS],
                agent_events=[row for t, row in written if t is _AGENT_EVENTS],
            )
        )

    event.listen(session_class, "before_commit", _write)
    event.listen(session_class, "after_commit", committed)
    event.listen(session_class, "do_orm_execute", _before_query)
    event.listen(session_class, "after_begin", _forget_written)
    event.listen(session_class, "after_soft_rollback", _forget_all)
