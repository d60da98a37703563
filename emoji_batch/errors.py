"""Errors the CLI turns into one-line messages and documented exit codes."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3
EXIT_NOT_ALL_SCORED = 4  # predict: some texts could not be scored (each says why)
EXIT_FILES_FAILED = 5  # score of a folder: some files failed (the summary names them)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (``| head -1``)
EXIT_TERMINATED = 143  # 128 + SIGTERM

EXIT_CODES_HELP = (
    "Exit codes: 0 success, 1 runtime failure, 2 bad usage, input or model, "
    "3 output locked by another run, 4 (predict) some texts not scorable, 5 (score of a "
    "folder) some files failed, the others written, 130 interrupted "
    "(Ctrl-C), 141 stdout closed by its reader (as by SIGPIPE, quietly), 143 terminated "
    "(SIGTERM)."
)


class EmojiBatchError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = EXIT_FAILURE


class InputError(EmojiBatchError):
    """The input file, its columns or the command-line arguments are unusable."""

    exit_code = EXIT_BAD_INPUT


class ModelError(EmojiBatchError):
    """A model bundle cannot be found or is not one this version can load."""

    exit_code = EXIT_BAD_INPUT


class MissingExtra(EmojiBatchError):
    """A feature needs a package of the training install (``emoji-batch[train]``) that
    this scoring install lacks: a usage error, not a failure of the run."""

    exit_code = EXIT_BAD_INPUT


class QuantizationRejected(EmojiBatchError):
    """The int8 copy is not close enough to the fp32 model; nothing was written."""


class SparkJobError(EmojiBatchError):
    """A Spark failure that is not the input's or the model's: exit code 1, one line."""


class LockedError(EmojiBatchError):
    """Another run holds the lock on the same output."""

    exit_code = EXIT_LOCKED


class ClosedPipe(EmojiBatchError):
    """The reader of stdout closed it (``emoji-batch predict --json | head -1``): not an
    error to report, the way a Unix tool killed by SIGPIPE reports nothing."""

    exit_code = EXIT_CLOSED_PIPE


class Stopped(BaseException):
    """Ctrl-C or SIGTERM, raised by the CLI's signal handlers.

    Like KeyboardInterrupt it unwinds through every ``finally`` (so temporary and lock
    files go) and passes ``except Exception``; unlike it, the CLI framework does not
    swallow it, so the run can end with one error line and the signal's exit code.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class FilesFailed(EmojiBatchError):
    """A folder run scored some files but not all (the summary says which and why)."""

    exit_code = EXIT_FILES_FAILED
