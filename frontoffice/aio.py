"""Running the server's event loop: uvloop where it is installed, asyncio's own loop otherwise.

The SIP transports, the RTP relay and music on hold are loop-bound work: every datagram in or out and
every 20 ms frame is a loop callback. uvloop (libuv) runs those callbacks and UDP syscalls with less
interpreter overhead than the selector loop, which ``bench/voice.py`` measures in call setups per
second and CPU per call. Nothing in the code depends on which loop runs it; the test suite runs on
asyncio's loop and the voice tests again on uvloop (``tests/integration/on_uvloop/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar

__all__ = [
    "SWITCH_INTERVAL_S",
    "YOUNG_COLLECTION_THRESHOLD",
    "EventLoopChoice",
    "ProcessWorker",
    "cancel_and_wait",
    "favour_the_loop",
    "loop_factory",
    "loop_name",
    "run",
    "settle_heap",
    "wake_or_timeout",
]

T = TypeVar("T")
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]


def loop_factory(choice: EventLoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for the chosen loop; ``None`` means asyncio's default loop.

    ``auto`` takes uvloop when it can be imported; ``uvloop`` insists on it (ImportError otherwise).
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def loop_name(factory: Callable[[], asyncio.AbstractEventLoop] | None) -> str:
    """``uvloop`` or ``asyncio``: what :func:`run` with this factory runs on (for logs and benchmarks)."""
    return "asyncio" if factory is None else "uvloop"


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


# Allocations between two collections of the youngest generation (CPython's default is 700). A
# contact's requests allocate a few thousand short-lived containers (rows, statements' parameters,
# pydantic models, ASGI messages); with the default, the collector ran about once per contact and
# promoted whatever was alive at that moment — the request in flight — to the older generations.
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Called once the server is built, before it serves: the objects alive now (modules, classes,
    SQLAlchemy's mappers and compiled statements, the FastAPI routes: about 200,000) live as long as the
    process, so they are moved out of the garbage collector's sight (``gc.freeze``).

    Without this, every full collection walked all of them: about 150 ms of CPU each, a few times a
    minute under load, which was about a millisecond per contact in ``bench/offer_latency.py``. Only the
    serving process does it: tests build many containers in one process, and what a frozen object
    holds is never collected.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
SWITCH_INTERVAL_S = 0.0005


def favour_the_loop() -> None:
    """Called once by the serving process: the event loop gets the GIL back within half a millisecond.

    The loop shares the interpreter with worker threads: SQLite's commit and read threads, and the
    threads that run a background job's statements (an import writes batches of hundreds of rows).
    When such a thread runs Python code, a loop that woke up to answer a request waits for the GIL
    until the thread's switch interval ends — up to 5 ms by default — and again after each of its own
    waits (the "convoy effect"), so an offer made while an import ran took 128–130 ms at p99 in
    ``bench/import_job.py --quick`` on a quiet machine; with 0.5 ms, 18–26 ms, the import as fast as
    before. The price is more forced switches while two threads both want the GIL, a few microseconds
    each.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Stop a service's background task: cancel it and wait until it has ended (nothing if ``None``)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wake_or_timeout(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set (True) or ``timeout_s`` passed (False): the wake-up of a service's
    loop (the outbox, jobs, timers). ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python
    3.11, ``wait_for`` can swallow a cancellation that lands as the event is set, and a loop that
    keeps running after its task was cancelled hangs the server's shutdown."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
        return True
    except TimeoutError:
        return False


def _worker_started() -> None:
    """A worker process ends with its parent, not on the terminal's Ctrl-C sent to the whole group.

    A parent that exits normally stops its workers itself; one that is killed (``kill -9``, the
    out-of-memory killer) or stops otherwise would leave them running, orphaned, each holding its
    memory: the worker watches its parent's sentinel (readable once the parent is gone) and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def exit_with_parent() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


class ProcessWorker:
    """Pure CPU work (a function of picklable arguments) run in one worker process, off the event loop
    and off its interpreter's GIL.

    Work that runs on the loop delays every callback queued behind it; work on a thread competes with
    the loop for the GIL and delays it all the same (see :func:`favour_the_loop`). A separate process
    takes a core of its own, scheduled by the operating system. The process is started on first use,
    with ``spawn`` (forking a process that runs threads can copy a lock in the held state), kept for
    the next job, and replaced once if it dies during a call. Arguments and results cross a pipe, so
    the work sent at a time should be large (hundreds of rows) and its inputs and outputs small.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_started,
                )
            return self._pool

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def _once(self, fn: Callable[..., T], *args: Any) -> T:
        pool = self._started()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            self._drop(pool)  # the worker died (killed, out of memory): the next call starts another
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the worker process; the event loop serves other work meanwhile. A call
        whose worker died did nothing here: it is made once more in a new worker."""
        try:
            return await self._once(fn, *args)
        except BrokenProcessPool:
            return await self._once(fn, *args)

    def processes(self) -> list[int]:
        """The process ids of the worker (none before the first :meth:`run` or after :meth:`close`)."""
        with self._lock:
            pool = self._pool
        return [] if pool is None else [p.pid for p in (pool._processes or {}).values() if p.pid is not None]

    def close(self) -> None:
        """Stop the worker process (started again by the next :meth:`run`)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
