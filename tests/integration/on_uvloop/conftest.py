"""Tests in this directory run on uvloop, the loop ``frontoffice serve`` uses (``frontoffice/aio.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import uvloop  # a dependency of the package on Linux (pyproject.toml)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"uvloop": uvloop.new_event_loop}
