"""The ``emoji-batch`` command line: a thin skin over the library functions."""

import logging
import shlex
import sys
import traceback

import typer

from emoji_batch import logs
from emoji_batch.cli import evaluate, models, quantize, score, train
from emoji_batch.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EmojiBatchError

app = typer.Typer(
    name="emoji-batch",
    help=(
        "Predict the emoji a tweet would carry, for whole CSV/Parquet files.\n\n"
        "Exit codes: 0 success, 1 runtime failure, 2 bad usage, input or model, "
        "3 output locked by another run, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("score")(score.score_cli)
app.command("train")(train.train_cli)
app.command("evaluate")(evaluate.evaluate_cli)
app.command("quantize")(quantize.quantize_cli)
app.add_typer(models.app, name="models")


_argv: list[str] = []


def invoked_command() -> str:
    """The command line as typed, recorded in bundles so a run can be repeated."""
    return shlex.join(["emoji-batch", *_argv])


def main(argv: list[str] | None = None) -> None:
    """Console entry point: expected errors become one line on stderr and an exit code.

    With ``--debug`` anywhere on the command line, errors also print their traceback.
    """
    _argv[:] = sys.argv[1:] if argv is None else argv
    logs.configure("text")
    try:
        code = app(args=_argv, standalone_mode=False)
    except EmojiBatchError as exc:
        if "--debug" in _argv:
            traceback.print_exc()
        logs.emit("error", str(exc), logging.ERROR, exit_code=exc.exit_code)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option values, missing arguments
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        logs.emit("error", "interrupted", logging.ERROR, exit_code=EXIT_INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # anything unforeseen: still one line, unless --debug
        if "--debug" in _argv:
            traceback.print_exc()
        message = f"unexpected failure: {type(exc).__name__}: {exc} (rerun with --debug)"
        logs.emit("error", message, logging.ERROR, exit_code=EXIT_FAILURE)
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
