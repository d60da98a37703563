"""Score on Apache Spark: the local scoring code run inside ``DataFrame.mapInArrow``.

Each Python worker process loads the model once (cached here, keyed by bundle and
options) and scores the Arrow batches Spark hands it with :func:`scoring.score_table`,
so cleaning, bad-row reasons and the appended columns are exactly those of local
``score``. Batches stay Arrow end to end; pandas is never used.

The bundle must be where the workers can read it: a directory on shared storage (a path,
or a name the driver resolves to an absolute path), or shipped with the job
(``--archives bundle.zip#NAME`` or ``SparkContext.addArchive``) and named ``NAME``,
which workers look up under :func:`pyspark.SparkFiles.getRootDirectory`.

pyspark is imported only by this package (``pip install "emoji-batch[spark]"``).

The engine's rooms: :mod:`.session` starts Spark, :mod:`.worker` is what runs in the
Python workers, :mod:`.frame` scores a DataFrame and maps a job's errors, :mod:`.paths`
scores a path into a path. The names below are the public ones.
"""

from emoji_batch.errors import SparkJobError
from emoji_batch.spark.frame import score_dataframe
from emoji_batch.spark.paths import (
    SparkSummary,
    check_output_apart,
    default_output_uri,
    score_path,
)
from emoji_batch.spark.session import ARROW_BATCH_ROWS, INSTALL_HINT, spark_session

__all__ = [
    "ARROW_BATCH_ROWS",
    "INSTALL_HINT",
    "SparkJobError",
    "SparkSummary",
    "check_output_apart",
    "default_output_uri",
    "score_dataframe",
    "score_path",
    "spark_session",
]
