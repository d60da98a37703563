"""The tests' shared fixtures: tiny generated data, a tiny GloVe file, tiny trained bundles
and a test S3 server; plain helpers are in tests/helpers.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import CUES, EMOJI, FILLER, make_rows, run_cli, train_args, write_labelled

# The files that take longest, run first: `make test`'s xdist workers take whole files as
# they come free, and a long file started last kept one worker busy while the other idled.
SLOW_FILES = (
    "test_architectures",
    "test_quantize",
    "test_spark_parity",
    "test_training_options",
    "test_robustness",
    "test_spark",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        return SLOW_FILES.index(module) if module in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: each file keeps its own order


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("data")
    mapping = d / "Mapping.csv"
    mapping.write_text(
        ",emoticons,number\n" + "".join(f"{i},{e},{i}\n" for i, e in enumerate(EMOJI))
    )
    words = sorted(
        {w.strip("#@!") for ws in CUES.values() for w in ws} | {"the", "a", "today", "user"}
    )
    rng = np.random.default_rng(0)
    glove = d / "glove.tiny.8d.txt"
    glove.write_text(
        "".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(size=8))}\n" for w in words)
    )
    return {
        "train": write_labelled(d / "Train.csv", make_rows(240, 1)),
        "val": write_labelled(d / "Val.csv", make_rows(60, 2)),
        "mapping": mapping,
        "glove": glove,
    }


@pytest.fixture(scope="session")
def tiny_cnn(tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GloVe CNN (8 filters): for tests where any trained bundle will do. It
    builds and predicts in a fraction of the BiLSTM's time."""
    out = tmp_path_factory.mktemp("bundles") / "tiny_cnn"
    args = train_args("glove_cnn", tiny_data, out, "--max-epochs", 3, "--batch-size", 16)
    assert run_cli([*args, "--seed", 13, "--set", "filters=8", "--set", "dense_units=8"]) == 0
    return out


@pytest.fixture(scope="session")
def cnn_bundle(tiny_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GloVe CNN, trained like any bundle: these tests load a model a dozen times,
    and it loads in a fraction of a second where a BiLSTM takes seconds to build."""
    out = tmp_path_factory.mktemp("process") / "tiny_cnn"
    args = train_args("glove_cnn", tiny_data, out, "--max-epochs", 1, "--batch-size", 32)
    assert run_cli(args) == 0
    return out


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary of the test words, saved the way
    Hugging Face saves PyTorch checkpoints (config.json, model.safetensors, tokenizer.json)."""
    import tf_keras as keras
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, TFBertModel
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    d = tmp_path_factory.mktemp("tiny_bert")
    words = {w.strip("#@!") for ws in CUES.values() for w in ws} | set(FILLER) | {"user", "happy"}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "#", "@", "!", *sorted(words)]
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(d / "tokenizer.json"))
    config = BertConfig(
        vocab_size=len(vocab),
        # Wide enough that int8 conversion quantizes its matrices (>= 1024 weights).
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        # Random weights wider than BERT's 0.02 make the [CLS] vector depend on the text.
        initializer_range=0.3,
        max_position_embeddings=64,
    )
    (d / "config.json").write_text(config.to_json_string())
    keras.utils.set_random_seed(0)  # the quantize tests' margins depend on these weights
    model = TFBertModel(config)
    model(model.dummy_inputs)
    state = {}
    for w in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            w.name, start_prefix_to_remove=model.name + "/", tf_weight_shape=w.shape
        )
        value = w.numpy()
        state[name.removeprefix("bert.")] = np.ascontiguousarray(value.T if transpose else value)
    save_file(state, str(d / "model.safetensors"))
    return d


@pytest.fixture
def sigterm_guard() -> Iterator[None]:
    """Keep an unhandled SIGTERM from killing pytest: it fails the test instead."""

    def unhandled(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the test's own handler")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto's server mode) on a free port, with the
    environment pyarrow and boto3 read pointed at it; yields its endpoint URL."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            patch.setenv(name, value)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def bucket(s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh, empty bucket on the test S3 server (a boto3 Bucket), with emoji-batch's
    local cache (staging copies of remote outputs) in this test's tmp_path."""
    import boto3

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    name = f"b-{uuid.uuid4().hex}"
    resource = boto3.resource("s3", endpoint_url=s3_server)
    resource.create_bucket(Bucket=name)
    return resource.Bucket(name)
