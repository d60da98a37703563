"""``emoji-batch predict``: emoji for tweets typed on the command line or piped in."""

import itertools
import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Annotated, TypeVar

import typer

from emoji_batch.cli._shared_flags import DeviceOption, ModelOption, ModelsDirOption
from emoji_batch.errors import EXIT_NOT_ALL_SCORED, EXIT_OK
from emoji_batch.loading import load_predictor
from emoji_batch.position import load_position_model
from emoji_batch.predictor import PRECISION_HELP, PrecisionChoice
from emoji_batch.tweet import TweetPrediction, predict_tweets

# Lines of stdin predicted at once: a pipe of many tweets streams out in steps this big;
# lines typed at a terminal are answered one by one.
STDIN_BATCH = 256
BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"
_SURROGATE = re.compile("[\ud800-\udfff]")
T = TypeVar("T")


def bar(probability: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar ``probability`` of ``width`` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, probability)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _cells(text: str) -> int:
    """Terminal cells ``text`` takes: wide characters (most emoji) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def render(prediction: TweetPrediction) -> str:
    """The tweet with its emoji placed, then one line per emoji: emoji, probability, bar."""
    if prediction.error is not None:
        return f"{prediction.text or ''}\n  not scored: {prediction.error}"
    lines = [prediction.text_with_emoji or prediction.text or ""]
    for emoji, probability in prediction.top:
        pad = " " * (2 - min(2, _cells(emoji)))
        lines.append(f"  {emoji}{pad} {probability:6.1%}  {bar(probability)}".rstrip())
    return "\n".join(lines)


def _from_bytes(raw: bytes) -> tuple[str, bool]:
    """``raw`` as text, and whether it was not UTF-8 (its bad bytes are then U+FFFD)."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _checked(text: str) -> tuple[str, bool]:
    """``text`` and whether it held bytes that were not UTF-8: Python reads those (in
    arguments, or from a text stream) as lone surrogates, which no output can encode."""
    repaired, bad = _SURROGATE.subn("\ufffd", text)
    return repaired, bool(bad)


def _stdin_lines() -> Iterator[tuple[str, bool]]:
    """Each line of stdin, decoded here so one that is not UTF-8 fails alone."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:  # a text stream put in its place
        for line in sys.stdin:
            yield _checked(line.rstrip("\r\n"))
        return
    for raw in binary:
        yield _from_bytes(raw.rstrip(b"\r\n"))


def _batches(texts: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(texts)
    while batch := list(itertools.islice(it, size)):
        yield batch


def predict_cli(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TEXT", help="Tweets to predict; none or - reads one per line from stdin."
        ),
    ] = None,
    model: ModelOption = None,
    models_dir: ModelsDirOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="Emoji per tweet.")] = 5,
    device: DeviceOption = "auto",
    precision: Annotated[PrecisionChoice, typer.Option(help=PRECISION_HELP)] = "auto",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per tweet: text, text_with_emoji, position, top_k, error.",
        ),
    ] = False,
) -> int:
    """Print each tweet with its top emoji placed where it belongs, and the top-k emoji
    with their probabilities. Exit code 4 when some tweets could not be scored."""
    predictor = load_predictor(model, models_dir, device, None, precision)
    placer = load_position_model(models_dir)
    from_stdin = not texts or texts == ["-"]
    source = _stdin_lines() if from_stdin else map(_checked, texts or [])
    size = 1 if from_stdin and sys.stdin.isatty() else STDIN_BATCH
    all_scored = True
    first = True
    for batch in _batches(source, size):
        lines, invalid = zip(*batch, strict=True)
        for prediction in predict_tweets(lines, predictor, placer, top_k, invalid):
            all_scored &= prediction.error is None
            if as_json:
                print(json.dumps(prediction.to_json(), ensure_ascii=False))
            else:
                print(("" if first else "\n") + render(prediction))
            first = False
        sys.stdout.flush()
    return EXIT_OK if all_scored else EXIT_NOT_ALL_SCORED
