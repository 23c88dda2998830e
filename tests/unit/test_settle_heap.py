"""The serving process settles its heap once built: what is alive then is out of the collector's sight."""

from __future__ import annotations

import gc

from frontoffice.aio import YOUNG_COLLECTION_THRESHOLD, settle_heap


def test_settling_the_heap_freezes_what_is_alive_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
