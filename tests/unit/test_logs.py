"""Logging set-up: what the libraries under the server log at the level the operator chose."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from frontoffice.logs import configure_logging

_LIBRARY_LOGGERS = ("mail.log", "uvicorn.access")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _LIBRARY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_smtp_command_lines_are_not_logged_at_info(restored_logging: None) -> None:
    # aiosmtpd's log of every command line (with the envelope's addresses): four lines per message.
    configure_logging("json", "INFO")
    smtp = logging.getLogger("mail.log")
    assert not smtp.isEnabledFor(logging.INFO)
    assert smtp.isEnabledFor(logging.WARNING)  # what goes wrong still shows


def test_smtp_command_lines_are_logged_at_debug(restored_logging: None) -> None:
    configure_logging("json", "DEBUG")
    assert logging.getLogger("mail.log").isEnabledFor(logging.DEBUG)
