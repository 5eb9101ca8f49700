"""TextModel: what every keras_pt text model shares.

Raw strings and packed dicts in (one `is_text`, one standardiser), named
presets, the vocabulary size a preprocessor implies, the global count that
normalises a loss over the replicas, the shape checks of a transformer
stack. `compile(jit_compile="auto")` is Keras's choice in every model.
"""

import copy

import keras
import numpy as np
import tensorflow as tf

from keras_pt.layers.bert_embedding import TokenIdCheckMixin
from keras_pt.layers.transformer_encoder_block import ACTIVATIONS
from keras_pt.special_tokens import NUM_SPECIAL_TOKENS, PAD_ID
from keras_pt.utils.deprecation import warn_renamed
from keras_pt.utils.text_inputs import is_text
from keras_pt.models.input_checks import InputCheckMixin

# The miniature BERT shapes of Turc et al. (2019): layers and hidden size;
# heads = hidden / 64, intermediate = 4 · hidden.
PRESETS = {
    "tiny": {"num_layers": 2, "hidden_dim": 128},
    "mini": {"num_layers": 4, "hidden_dim": 256},
    "small": {"num_layers": 4, "hidden_dim": 512},
}

INPUT_KEYS = ("token_ids", "segment_ids", "padding_mask")

# What a head or a sentence encoder reads from an encoder's outputs: the
# raw first-token state, the encoder's pooled output (MiniBERT: the tanh
# pooler on [CLS]), or the mean over the real tokens.
POOLINGS = ("first_token", "pooled", "mean")


def as_text_tensors(inputs):
    """Python lists of strings (or a pair of them) as string tensors."""
    if isinstance(inputs, str):
        return tf.constant([inputs])
    if isinstance(inputs, list) and inputs and all(isinstance(x, (str, bytes)) for x in inputs):
        return tf.constant(inputs)
    if isinstance(inputs, tuple) and len(inputs) == 2 and is_text(inputs):
        return tuple(as_text_tensors(x) if isinstance(x, (list, str)) else x for x in inputs)
    return inputs


def text_dataset(inputs, batch_size=None, labels=None):
    """Raw strings (or a pair of string batches), with their `labels` if
    given, as a batched `tf.data` set for `fit`, `evaluate` and `predict`
    (Keras's array adapters take no string arrays)."""
    tensors = as_text_tensors(inputs)
    if isinstance(tensors, np.ndarray) or (
        isinstance(tensors, tuple) and any(isinstance(t, np.ndarray) for t in tensors)
    ):
        tensors = tf.nest.map_structure(lambda t: tf.constant(t.astype(bytes)), tensors)
    if labels is not None:
        tensors = (tensors, np.asarray(labels))
    return tf.data.Dataset.from_tensor_slices(tensors).batch(batch_size or 32)


def preprocess_text(preprocessor, inputs, owner, pairs=True):
    """Runs `preprocessor` on raw strings (or a pair of string batches).

    Args:
        preprocessor: the layer that packs strings, or None (an error).
        inputs: raw strings: a string, a list or 1-D array or tensor of
            them, or (with `pairs`) a tuple of two such batches.
        owner: str. The model's name, for error messages.
        pairs: bool. Whether the model takes text pairs. Defaults to True.
    """
    if isinstance(inputs, tuple) and not pairs:
        raise ValueError(
            f"{owner} models single texts; got a pair of text batches. Join the texts or pass one batch of strings."
        )
    if preprocessor is None:
        raise ValueError(
            f"{owner} got raw strings but has no preprocessor; pass "
            "preprocessor=MiniBERTPreprocessor(...) or feed packed "
            "{'token_ids', 'segment_ids', 'padding_mask'} dicts."
        )
    if isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, tuple):
        inputs = tuple(tf.convert_to_tensor(x, tf.string) for x in inputs)
    else:
        inputs = tf.convert_to_tensor(inputs, tf.string)
    return preprocessor(inputs)


def _check_like_token_ids(name, value, token_ids):
    if value.shape.rank != 2 or (
        value.shape[1] is not None and token_ids.shape[1] is not None and value.shape[1] != token_ids.shape[1]
    ):
        raise ValueError(f"{name} must have the shape of token_ids {token_ids.shape}; got {value.shape}.")


def standardize_inputs(inputs, keys=INPUT_KEYS, owner="MiniBERT"):
    """A packed dict of int32 `(batch, seq_len)` tensors from a dict of ids.

    `segment_ids` defaults to zeros and `padding_mask` to `token_ids !=
    [PAD]`; other dtypes (a bool `padding_mask`, float ids) are cast. (Keras
    itself hands float batches to `call` when it builds a model under a
    `tf.distribute` strategy: it averages the replicas' first batch.)

    Args:
        inputs: dict with `"token_ids"` and optionally `"segment_ids"`,
            `"padding_mask"`.
        keys: the keys of the returned dict (what the model's encoder
            takes). Defaults to all three.
        owner: str. The model's name, for error messages.
    """
    if not isinstance(inputs, dict) or "token_ids" not in inputs:
        got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        others = ", ".join(repr(k) for k in keys if k != "token_ids")
        raise ValueError(
            f"{owner} takes a dict with 'token_ids' (and {others}) of int "
            f"(batch, seq_len) tensors, or raw strings with a preprocessor; got {got}. "
            "Pack text with MiniBERTPreprocessor."
        )
    token_ids = tf.convert_to_tensor(inputs["token_ids"])
    if token_ids.dtype == tf.string:
        raise ValueError(
            "token_ids must be integer ids, got strings; pass raw text (with a "
            "preprocessor) instead of a dict, or tokenize it first."
        )
    if token_ids.shape.rank != 2:
        raise ValueError(f"token_ids must have shape (batch, seq_len); got {token_ids.shape}.")
    token_ids = tf.cast(token_ids, tf.int32)
    packed = {"token_ids": token_ids}
    if "segment_ids" in keys:
        segment_ids = inputs.get("segment_ids")
        packed["segment_ids"] = tf.zeros_like(token_ids) if segment_ids is None else tf.cast(segment_ids, tf.int32)
    if "padding_mask" in keys:
        padding_mask = inputs.get("padding_mask")
        packed["padding_mask"] = (
            tf.cast(token_ids != PAD_ID, tf.int32) if padding_mask is None else tf.cast(padding_mask, tf.int32)
        )
    for name in ("segment_ids", "padding_mask"):
        if name in inputs and inputs[name] is not None and name in packed:
            _check_like_token_ids(name, packed[name], token_ids)
    return {key: packed[key] for key in keys}


def resolve_pooling(pooling, owner, cls_means):
    """Checks `pooling` against `POOLINGS`; the old value `"cls"` is taken,
    with a `DeprecationWarning`, as what it meant to `owner` (`cls_means`:
    `"pooled"` in MiniBERTClassifier, `"first_token"` in SentenceEncoder)."""
    if pooling == "cls":
        warn_renamed(f'{owner}(pooling="cls")', f'pooling="{cls_means}"', stacklevel=4)
        pooling = cls_means
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}.")
    return pooling


def pool(outputs, padding_mask, pooling):
    """One vector per sequence, `(batch, hidden)`, from an encoder's outputs.

    Args:
        outputs: dict with `"sequence_output"` `(batch, seq_len, hidden)`
            and `"pooled_output"` `(batch, hidden)`.
        padding_mask: int `(batch, seq_len)`, 1 on real tokens.
        pooling: one of `POOLINGS`.
    """
    if pooling == "pooled":
        return outputs["pooled_output"]
    sequence = outputs["sequence_output"]  # (batch, seq, hidden)
    if pooling == "first_token":
        return sequence[:, 0, :]
    weights = tf.cast(padding_mask, sequence.dtype)[:, :, None]  # (batch, seq, 1)
    total = tf.reduce_sum(sequence * weights, axis=1)  # (batch, hidden)
    return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)


def global_count(weights):
    """The sum of `weights` over every replica, without gradient.

    Each replica divides its summed loss by this global count, so the
    replicas' gradients sum to the gradient of the global mean, though
    replicas hold different numbers of counted positions.
    """
    count = tf.reduce_sum(weights)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
    return tf.stop_gradient(count)


def compile_from_config(model, config):
    """Re-compiles a loaded model with its saved compile arguments."""
    config = keras.saving.deserialize_keras_object(config)
    model.compile(**config)
    if model.built and getattr(model, "optimizer", None) is not None:
        model.optimizer.build(model.trainable_variables)


def _resolve_vocabulary_size(vocabulary_size, preprocessor):
    tokenizer_size = None
    if preprocessor is not None:
        tokenizer = getattr(preprocessor, "tokenizer", None)
        if tokenizer is None or not hasattr(tokenizer, "vocabulary_size"):
            raise ValueError(
                "preprocessor must have a .tokenizer with vocabulary_size() "
                f"(e.g. MiniBERTPreprocessor); got {type(preprocessor).__name__}."
            )
        tokenizer_size = int(tokenizer.vocabulary_size())
    if vocabulary_size is None:
        if tokenizer_size is None:
            raise ValueError("pass vocabulary_size, or a preprocessor whose tokenizer gives it.")
        return tokenizer_size
    if tokenizer_size is not None and int(vocabulary_size) != tokenizer_size:
        raise ValueError(
            f"vocabulary_size={vocabulary_size} differs from the preprocessor's "
            f"tokenizer vocabulary_size()={tokenizer_size}; leave vocabulary_size=None "
            "to take the tokenizer's."
        )
    return int(vocabulary_size)


def check_transformer_shape(
    vocabulary_size, num_layers, hidden_dim, num_heads, intermediate_dim, activation, preprocessor
):
    """Checks a transformer stack's shape and fills in its defaults.

    Returns:
        `(vocabulary_size, hidden_dim, num_heads, intermediate_dim)`: the
        vocabulary size from the preprocessor when None, `hidden_dim // 64`
        heads and a `4 * hidden_dim` intermediate width when None.
    """
    vocabulary_size = _resolve_vocabulary_size(vocabulary_size, preprocessor)
    if int(vocabulary_size) <= NUM_SPECIAL_TOKENS:
        raise ValueError(f"vocabulary_size must exceed the {NUM_SPECIAL_TOKENS} special tokens; got {vocabulary_size}.")
    if int(num_layers) < 1:
        raise ValueError(f"num_layers must be a positive int; got {num_layers}.")
    hidden_dim = int(hidden_dim)
    num_heads = max(1, hidden_dim // 64) if num_heads is None else int(num_heads)
    if hidden_dim < 1 or hidden_dim % num_heads:
        raise ValueError(f"hidden_dim={hidden_dim} must be a positive multiple of num_heads={num_heads}.")
    intermediate_dim = 4 * hidden_dim if intermediate_dim is None else int(intermediate_dim)
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return vocabulary_size, hidden_dim, num_heads, intermediate_dim


class TextModel(InputCheckMixin, TokenIdCheckMixin):
    """The shared base of the text models (MiniBERT, MiniGPT,
    SentenceEncoder, MiniBERTClassifier). Mix in before `keras.Model`.

    Raw strings (with the model's `preprocessor`) or packed dicts in, token
    ids checked on the host, `pack_inputs` to one int32 packed dict, named
    presets, the global count of a loss's positions, and a `preprocessor`
    (de)serialized with the config.

    Python strings become string tensors before Keras sees them, and
    `predict` batches them as a `tf.data` set (Keras's array adapters take
    no string arrays). Token ids given to `fit`, `evaluate` and `predict`
    are checked on the host (`TokenIdCheckMixin`).
    """

    # Whether raw inputs may be pairs of text batches (sentence pairs).
    TEXT_PAIRS = True
    # The keys of the packed dict the model's encoder takes.
    INPUT_KEYS = INPUT_KEYS

    @classmethod
    def from_preset(cls, name, vocabulary_size=None, **overrides):
        """A model with a named shape: `"tiny"` (2 layers, hidden 128),
        `"mini"` (4/256) or `"small"` (4/512); heads = hidden / 64,
        intermediate = 4 · hidden. `overrides` are passed to the
        constructor (e.g. `max_sequence_length=128`, `preprocessor=...`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown {cls.__name__} preset {name!r}; choose one of {', '.join(PRESETS)}.")
        config = dict(PRESETS[name])
        config["num_heads"] = config["hidden_dim"] // 64
        config["intermediate_dim"] = 4 * config["hidden_dim"]
        config.update(overrides)
        return cls(vocabulary_size=vocabulary_size, **config)

    TAKES = "raw strings (with a preprocessor) or a dict with 'token_ids' of int (batch, sequence_length)"
    TAKES_TEXT = True

    def __call__(self, inputs, *args, **kwargs):
        self._check_x(inputs, "call")
        return super().__call__(as_text_tensors(inputs), *args, **kwargs)

    def _prepared(self, x, y, where, kwargs):
        # Keras's array adapters take no string arrays: raw strings (with
        # their labels, checked already) become a batched data set.
        if is_text(x) and not isinstance(x, tf.data.Dataset):
            return text_dataset(x, kwargs.pop("batch_size", None), labels=y), None
        return x, y

    def predict(self, x, batch_size=None, **kwargs):
        self._check_x(x, "predict")
        if is_text(x) and not isinstance(x, tf.data.Dataset):
            return super().predict(text_dataset(x, batch_size), **kwargs)
        return super().predict(x, batch_size=batch_size, **kwargs)

    def _preprocessor(self):
        """The layer that packs raw strings (None: strings are refused)."""
        return getattr(self, "preprocessor", None)

    def pack_inputs(self, inputs, keys=INPUT_KEYS):
        """The packed int32 dict for `inputs` (raw strings go through the
        preprocessor), with the `keys` the encoder takes."""
        name = type(self).__name__
        if is_text(inputs):
            inputs = preprocess_text(self._preprocessor(), inputs, name, self.TEXT_PAIRS)
        return standardize_inputs(inputs, keys, name)

    def pack(self, inputs):
        """The packed int32 dict for `inputs` (raw strings go through the
        preprocessor), its length checked against the learned positions."""
        packed = self.pack_inputs(inputs, self.INPUT_KEYS)
        self.embedding.check_sequence_length(packed["token_ids"].shape[1])
        return packed

    # === Parts of a model whose `encoder` it built itself ===

    @property
    def embedding(self):
        """The `BertEmbedding` layer (its `token_embeddings` feed the LM head)."""
        return self.encoder.get_layer("embedding")

    @property
    def transformer_layers(self):
        return [self.encoder.get_layer(f"transformer_layer_{i}") for i in range(self.num_layers)]

    def _global_count(self, weights):
        return global_count(weights)

    def _check_own_loss(self, kwargs):
        """Refuses `compile(loss=...)` and `metrics=` (the model has its own)."""
        for name in ("loss", "metrics"):
            if kwargs.pop(name, None) not in (None, "auto"):
                raise ValueError(f"{type(self).__name__} has its own loss and metrics; do not pass {name}=.")

    def _transformer_config(self):
        """The config entries of a transformer stack the model built itself."""
        return {
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
        }

    def _preprocessor_config(self):
        preprocessor = getattr(self, "preprocessor", None)
        return None if preprocessor is None else keras.layers.serialize(preprocessor)

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        for name in cls._SERIALIZED_LAYERS:
            if config.get(name) is not None:
                config[name] = keras.layers.deserialize(config[name])
        return cls(**config)

    # Config entries that hold serialized layers.
    _SERIALIZED_LAYERS = ("preprocessor",)


# The raw-string plumbing's former name.
TextInputsMixin = TextModel
