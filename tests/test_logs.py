"""The log handler writes to the stderr of the moment, not the one it was configured with."""

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from emoji_batch import logs


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    logger = logging.getLogger(logs.LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_log_follows_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure()
    logs.emit("test", "to the first stream")
    first.close()  # as pytest's capture closes a finished test's stream
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logs.emit("test", "to the second", level=logging.WARNING)
    assert second.getvalue() == "warning: to the second\n"


def test_json_log_follows_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    logs.configure("json", quiet=True)
    logs.emit("hidden", "info is quiet")
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logs.emit("shown", "an error", level=logging.ERROR, rows=3)
    assert '"event": "shown"' in later.getvalue() and '"rows": 3' in later.getvalue()
    assert "hidden" not in later.getvalue()
