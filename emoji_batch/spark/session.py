"""Starting Spark: pyspark present, Java found, a session on the master asked for, with
Spark's own console chatter kept off the terminal unless asked for.
"""

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from emoji_batch.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL_HINT = 'the Spark engine needs pyspark: pip install "emoji-batch[spark]"'
ARROW_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"


def require_pyspark() -> None:
    """Fail with the install hint, exit code 2, when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(INSTALL_HINT) from None


# --- starting Spark -------------------------------------------------------------------

_MASTER = re.compile(
    r"local(\[(\*|\d+)(,\s*\d+)?\])?|local-cluster\[.+\]|yarn|(spark|k8s|mesos)://.+"
)


def _check_java() -> None:
    """Refuse, naming the cause, what would only say JAVA_GATEWAY_EXITED: no Java."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not os.access(Path(java_home, "bin", "java"), os.X_OK):
            raise InputError(
                f"JAVA_HOME={java_home} has no bin/java: point JAVA_HOME at a Java 17 (or "
                "newer) installation, or unset it to use the java on PATH"
            )
    elif shutil.which("java") is None:
        raise InputError(
            "the Spark engine needs Java 17 or newer: no JAVA_HOME is set and no java is on PATH"
        )


def _start_failure(text: str) -> str:
    """The reason a JVM start-up log gives, in one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("Error:", "Exception", "Caused by:")) or "Exception:" in line:
            return re.sub(r"^(Exception in thread \"\w+\" )?([\w.$]+(Exception|Error): )", "", line)
    return lines[-1] if lines else "the JVM exited"


def spark_session(master: str | None = None, spark_logs: bool = False) -> "SparkSession":
    """The active SparkSession, or a new one on ``master`` (None: spark-submit's, else
    ``local[*]``) logging errors only.

    Started outside spark-submit on a local master, workers run this interpreter
    (PYSPARK_PYTHON, unless set), the one emoji-batch is installed in. Unless
    ``spark_logs``, the JVM's start-up chatter is kept from stderr: it writes there
    before any log level can be set. A JVM that cannot start (no Java, a master URL
    Spark refuses) is an input error with the reason its log gave.
    """
    require_pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    launched_here = "PYSPARK_GATEWAY_PORT" not in os.environ  # not under spark-submit
    starting = SparkContext._active_spark_context is None
    if starting and master is not None and not _MASTER.fullmatch(master):
        raise InputError(
            f"--spark-master {master!r} is not a Spark master URL: use local, local[N], "
            "local[*], spark://HOST:PORT, yarn or k8s://URL"
        )
    if starting and launched_here:
        _check_java()
    if launched_here and (master is None or master.startswith("local")):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("emoji-batch").config(
        "spark.ui.showConsoleProgress", "false"
    )
    if master:
        builder = builder.master(master)
    with (
        tempfile.TemporaryFile() as log,
        contextlib.nullcontext() if spark_logs else _stderr_to(log),
    ):
        try:
            spark = builder.getOrCreate()
        except Exception as exc:
            if not starting:
                raise
            log.flush()
            log.seek(0)
            reason = _start_failure(log.read().decode("utf-8", "replace") or str(exc))
            where = f"master {master}" if master else "its default master"
            raise InputError(f"cannot start Spark on {where}: {reason}") from exc
    spark.sparkContext.setLogLevel("INFO" if spark_logs else "ERROR")
    return spark


@contextlib.contextmanager
def _stderr_to(sink: IO[bytes]) -> Iterator[None]:
    """File descriptor 2 (the JVM's too, which it inherits) written to ``sink``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
