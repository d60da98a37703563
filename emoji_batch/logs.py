"""Log events for people (plain lines) or for pipeline log collectors (JSON lines).

Library code logs with ``extra={"event": NAME, "fields": {...}}``; the CLI chooses the
format once with :func:`configure`. Everything goes to stderr, so stdout stays data.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOGGER = "emoji_batch"


class _TextFormatter(logging.Formatter):
    """Plain lines; errors and warnings say so, since they are what a person must read."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        return f"warning: {message}" if record.levelno >= logging.WARNING else message


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(event, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the stream it
    was at :func:`configure` time: a caller (or a test) that swaps and closes stderr
    later must not leave the log writing to a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def configure(log_format: LogFormat = "text", quiet: bool = False) -> None:
    """Send emoji_batch's log to stderr in ``log_format``; ``quiet`` keeps warnings and errors."""
    handler = _StderrHandler()
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter())
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def emit(event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    logging.getLogger(LOGGER).log(level, message, extra={"event": event, "fields": fields})
