"""The ``emoji-batch`` command line: a thin skin over the library functions."""

import errno
import functools
import inspect
import logging
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import typer

from emoji_batch import logs
from emoji_batch.cli import app as app_cmd
from emoji_batch.cli import ensemble, evaluate, models, predict, quantize, score, train
from emoji_batch.cli._shared_flags import DebugOption
from emoji_batch.errors import (
    EXIT_CODES_HELP,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    ClosedPipe,
    EmojiBatchError,
    Stopped,
)
from emoji_batch.fileio import wait_for_arrow

PROG = "emoji-batch"

# Plain help, formatted like a man page: Rich panels show flags as ``<bool>`` and read
# ``[...]`` in help text as markup.
app = typer.Typer(
    name=PROG,
    help="Predict the emoji a tweet would carry, for whole CSV, Parquet or JSON-lines files.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("score", epilog=EXIT_CODES_HELP)(score.score_cli)
app.command("predict", epilog=EXIT_CODES_HELP)(predict.predict_cli)
app.command("train", epilog=EXIT_CODES_HELP)(train.train_cli)
app.command("evaluate", epilog=EXIT_CODES_HELP)(evaluate.evaluate_cli)
app.command("quantize", epilog=EXIT_CODES_HELP)(quantize.quantize_cli)
app.command("ensemble", epilog=EXIT_CODES_HELP)(ensemble.ensemble_cli)
app.command("app", epilog=EXIT_CODES_HELP)(app_cmd.app_cli)
app.add_typer(models.app, name="models")


def _pipe_aware(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command``, with a write to a closed pipe raised as :class:`ClosedPipe`: Click
    would otherwise catch the OSError and exit 1 without a word; and with ``--debug``,
    which :func:`main` reads from the command line, offered by every command (passed on
    only to a command that takes it, as ``score`` does for Spark's logs)."""
    signature = inspect.signature(command)
    takes_debug = "debug" in signature.parameters

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not takes_debug:
            kwargs.pop("debug", None)
        try:
            return command(*args, **kwargs)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise ClosedPipe("stdout was closed by its reader") from exc
            raise

    if not takes_debug:
        debug = inspect.Parameter(
            "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOption
        )
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), debug]
        )
        run.__annotations__ = {**command.__annotations__, "debug": DebugOption}
    return run


for _commands in (app.registered_commands, models.app.registered_commands):
    for _info in _commands:
        _info.callback = _pipe_aware(_info.callback)  # type: ignore[arg-type]


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is still
    buffered for the closed pipe does not fail too."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


_argv: list[str] = []


def invoked_command() -> str:
    """The command line as typed, recorded in bundles so a run can be repeated."""
    return shlex.join([PROG, *_argv])


_SIGNALS = {
    signal.SIGINT: ("interrupted", EXIT_INTERRUPTED),
    signal.SIGTERM: ("terminated (SIGTERM)", EXIT_TERMINATED),
}


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(*_SIGNALS[signum])


@contextmanager
def _stoppable() -> Iterator[None]:
    """Ctrl-C and SIGTERM raise :class:`Stopped` while the block runs, so a stopped run
    cleans up like a failed one; the previous handlers come back afterwards."""
    previous = {signum: signal.signal(signum, _stop) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _fail(message: str, exit_code: int) -> int:
    """One ``error:`` line (or JSON event) on stderr for the exception being handled,
    with its traceback under --debug."""
    if "--debug" in _argv:
        traceback.print_exc()
    logs.emit("error", message, logging.ERROR, exit_code=exit_code)
    return exit_code


def _run() -> int:
    """The app's exit code; what it raises becomes one error line and a documented code."""
    try:
        code = app(args=_argv, prog_name=PROG, standalone_mode=False)
    except ClosedPipe as exc:  # quiet, as SIGPIPE is
        _silence_stdout()
        return exc.exit_code
    except EmojiBatchError as exc:
        return _fail(str(exc), exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option values, missing arguments
        exc.show()
        return exc.exit_code
    except Stopped as exc:
        return _fail(str(exc), exc.exit_code)
    except Exception as exc:  # anything unforeseen: still one line, unless --debug
        return _fail(
            f"unexpected failure: {type(exc).__name__}: {exc} (rerun with --debug)", EXIT_FAILURE
        )
    return code if isinstance(code, int) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Console entry point: expected errors become one line on stderr and an exit code.

    With ``--debug`` anywhere on the command line, errors also print their traceback.
    """
    _argv[:] = sys.argv[1:] if argv is None else argv
    logs.configure("text")
    with _stoppable():
        code = _run()
    # No thread of Arrow's may still hold a Python object when the interpreter shuts down
    # (it would abort the process, exit 134): after an error, they may still be reading.
    wait_for_arrow()
    sys.exit(code)
