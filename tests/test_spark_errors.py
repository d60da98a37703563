"""A Spark job's errors as emoji-batch's: a worker's error keeps its class and exit code,
wherever in the package the class is defined (no Spark needed: the mapper reads text)."""

import pytest

import emoji_batch.position
from emoji_batch.errors import EXIT_BAD_INPUT, EmojiBatchError, InputError, SparkJobError
from emoji_batch.spark.frame import user_errors


class _Refused(EmojiBatchError):
    exit_code = 7


def _worker_trace(line: str) -> str:
    return (
        "An error occurred while calling o42.collect.\n"
        'Traceback (most recent call last):\n  File "worker.py", line 1, in main\n'
        f"{line}\n\tat org.apache.spark.api.python.BasePythonRunner\n"
    )


def test_a_worker_error_from_errors_keeps_its_exit_code() -> None:
    with pytest.raises(InputError, match=r"^no column 'txt'$") as caught, user_errors():
        raise RuntimeError(_worker_trace("emoji_batch.errors.InputError: no column 'txt'"))
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_a_worker_error_defined_elsewhere_keeps_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(emoji_batch.position, "_Refused", _Refused, raising=False)
    with pytest.raises(_Refused, match=r"^no way$") as caught, user_errors():
        raise RuntimeError(_worker_trace("emoji_batch.position._Refused: no way"))
    assert caught.value.exit_code == 7


def test_a_name_that_is_no_error_class_is_not_taken_for_one() -> None:
    with pytest.raises(RuntimeError), user_errors():
        raise RuntimeError(_worker_trace("emoji_batch.position.KIND: not a class"))


def test_spark_job_error_lives_with_the_other_errors() -> None:
    assert issubclass(SparkJobError, EmojiBatchError)
