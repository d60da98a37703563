"""Errors the CLI turns into one-line messages and documented exit codes."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class EmojiBatchError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = EXIT_FAILURE


class InputError(EmojiBatchError):
    """The input file, its columns or the command-line arguments are unusable."""

    exit_code = EXIT_BAD_INPUT


class ModelError(EmojiBatchError):
    """A model bundle cannot be found or is not one this version can load."""

    exit_code = EXIT_BAD_INPUT


class LockedError(EmojiBatchError):
    """Another run holds the lock on the same output."""

    exit_code = EXIT_LOCKED
