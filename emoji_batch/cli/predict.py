"""``emoji-batch predict``: emoji for tweets typed on the command line or piped in."""

import itertools
import json
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Annotated

import typer

from emoji_batch.cli._options import DeviceOption, ModelOption, ModelsDirOption
from emoji_batch.errors import EXIT_NOT_ALL_SCORED, EXIT_OK
from emoji_batch.loading import load_predictor
from emoji_batch.position import load_position_model
from emoji_batch.predict import PRECISION_HELP, PrecisionChoice
from emoji_batch.tweet import TweetPrediction, predict_tweets

# Lines of stdin predicted at once: a pipe of many tweets streams out in steps this big;
# lines typed at a terminal are answered one by one.
STDIN_BATCH = 256
BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"


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


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(texts)
    while batch := list(itertools.islice(it, size)):
        yield batch


def predict_cli(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[TEXT]...", help="Tweets to predict; none or - reads one per line from stdin."
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
    source = _stdin_lines() if from_stdin else iter(texts or [])
    size = 1 if from_stdin and sys.stdin.isatty() else STDIN_BATCH
    all_scored = True
    first = True
    for batch in _batches(source, size):
        for prediction in predict_tweets(batch, predictor, placer, top_k):
            all_scored &= prediction.error is None
            if as_json:
                print(json.dumps(prediction.to_json(), ensure_ascii=False))
            else:
                print(("" if first else "\n") + render(prediction))
            first = False
        sys.stdout.flush()
    return EXIT_OK if all_scored else EXIT_NOT_ALL_SCORED
