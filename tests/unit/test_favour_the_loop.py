"""The serving process shortens the GIL's switch interval, so the event loop waits less for it while
worker threads (SQLite's, a job's) run Python code; ``bench/import_job.py`` measures the effect."""

from __future__ import annotations

import sys

from frontoffice.aio import SWITCH_INTERVAL_S, favour_the_loop


def test_the_serving_process_gives_the_loop_the_gil_back_ten_times_sooner_than_cpythons_default() -> None:
    before = sys.getswitchinterval()
    try:
        favour_the_loop()
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        assert SWITCH_INTERVAL_S * 10 <= 0.005  # CPython's default
    finally:
        sys.setswitchinterval(before)
