"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster_nodes import Cluster, drop_database, make_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh PostgreSQL database with the demo data, on NATS; the test starts its nodes. Stopped and
    dropped afterwards."""
    c = make_cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()
        drop_database(c.database_url)
