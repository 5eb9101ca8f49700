"""BertEmbedding: token + position + segment embeddings, LayerNorm, dropout."""

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import random
from keras_pt.kernels import transformer as kernels
from keras_pt.kernels.xla import in_xla_context


@keras.saving.register_keras_serializable(package="keras_pt")
class BertEmbedding(keras.layers.Layer):
    """BERT's input embeddings: `Dropout(LayerNorm(E_tok[id] + E_pos[i] + E_seg[s]))`.

    The sum, LayerNorm and (counter-based, see `FastDropout`) dropout run in
    one fused XLA kernel.

    `call(token_ids, segment_ids=None, start_index=0)` maps int ids
    `(batch, seq_len)` to `(batch, seq_len, hidden_dim)`. Positions are
    `start_index .. start_index + seq_len - 1` (learned absolute
    embeddings; `start_index` may be a tensor, e.g. one decoding step's
    position). `segment_ids=None` means segment 0 everywhere.
    The token embedding matrix, `token_embeddings` `(vocabulary_size,
    hidden_dim)`, is the one a tied `MaskedLMHead` projects onto.

    Inputs are checked: a sequence longer than `max_sequence_length` raises
    a ValueError when its length is static (a graph assertion otherwise);
    token ids outside `[0, vocabulary_size)` and segment ids outside
    `[0, num_segments)` stop the step with an `InvalidArgumentError` in eager
    and graph mode. XLA (`jit_compile=True`) cannot assert, so under XLA the
    layer adds no assertion and the ids are checked on the host instead:
    the text models' `fit`, `evaluate` and `predict` run `check_token_ids`
    on their inputs (arrays at once, `tf.data` sets element by element in
    the input pipeline), and `keras_pt` preprocessors only emit valid ids.

    Args:
        vocabulary_size: int. Number of token ids.
        hidden_dim: int. Embedding width.
        max_sequence_length: int. Number of learned positions.
        num_segments: int. Number of segment (token type) ids. Defaults to 2.
        dropout: float. Dropout after the LayerNorm. Defaults to 0.1.
        layer_norm_epsilon: float. Defaults to 1e-12 (BERT).
        initializer_range: float. Stddev of the truncated-normal
            initializer of the three tables. Defaults to 0.02.
        check_inputs: bool. Assert id ranges (graph mode). Defaults to True.
        seed: int or None. Seed of the dropout `SeedGenerator`. Defaults to
            None.

    Example:

    >>> embed = BertEmbedding(vocabulary_size=100, hidden_dim=32,
    ...                       max_sequence_length=16)
    >>> embed(tf.constant([[2, 7, 9, 3, 0]])).shape
    TensorShape([1, 5, 32])
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        max_sequence_length,
        num_segments=2,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        check_inputs=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("hidden_dim", hidden_dim),
            ("max_sequence_length", max_sequence_length),
            ("num_segments", num_segments),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive int; got {value}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}.")

        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.hidden_dim = int(hidden_dim)
        self.max_sequence_length = int(max_sequence_length)
        self.num_segments = int(num_segments)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)
        self.check_inputs = bool(check_inputs)
        self.seed = seed

        # === Layers ===
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def build(self, input_shape=None):
        initializer = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        self.token_embeddings = self.add_weight(
            name="token_embeddings",
            shape=(self.vocabulary_size, self.hidden_dim),
            initializer=initializer,
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.max_sequence_length, self.hidden_dim),
            initializer=initializer,
        )
        self.segment_embeddings = self.add_weight(
            name="segment_embeddings",
            shape=(self.num_segments, self.hidden_dim),
            initializer=initializer,
        )
        self.layer_norm.build((None, None, self.hidden_dim))
        self.built = True

    def check_sequence_length(self, length):
        """Raises a ValueError for a static length above `max_sequence_length`."""
        if isinstance(length, int) and length > self.max_sequence_length:
            raise ValueError(
                f"sequences of length {length} exceed max_sequence_length="
                f"{self.max_sequence_length}; pack inputs to at most "
                f"{self.max_sequence_length} tokens (truncate) or build the model "
                f"with max_sequence_length >= {length}."
            )

    def _checked(self, token_ids, segment_ids, length):
        vocab, segments = self.vocabulary_size, self.num_segments
        checks = [
            tf.debugging.assert_non_negative(token_ids, message="token ids must be >= 0"),
            tf.debugging.assert_less(
                token_ids,
                tf.constant(vocab, token_ids.dtype),
                message=(
                    f"token ids must be < vocabulary_size={vocab}; the data was "
                    "tokenized with a larger vocabulary than the model's. Use the "
                    "model's preprocessor or build the model with the "
                    "tokenizer's vocabulary_size()"
                ),
            ),
        ]
        if not isinstance(length, int):
            checks.append(
                tf.debugging.assert_less_equal(
                    length,
                    self.max_sequence_length,
                    message=(
                        f"sequence length exceeds max_sequence_length={self.max_sequence_length}; truncate the inputs"
                    ),
                )
            )
        if segment_ids is not None:
            checks += [
                tf.debugging.assert_non_negative(segment_ids, message="segment ids must be >= 0"),
                tf.debugging.assert_less(
                    segment_ids,
                    tf.constant(segments, segment_ids.dtype),
                    message=f"segment ids must be < num_segments={segments}",
                ),
            ]
        with tf.control_dependencies(checks):
            token_ids = tf.identity(token_ids)
        return token_ids

    def call(self, token_ids, segment_ids=None, start_index=0, training=None):
        token_ids = tf.convert_to_tensor(token_ids)
        if not token_ids.dtype.is_integer:
            raise ValueError(
                f"token_ids must be integers, got dtype {token_ids.dtype.name}; "
                "tokenize text with a preprocessor first."
            )
        length = token_ids.shape[1] if token_ids.shape[1] is not None else tf.shape(token_ids)[1]
        self.check_sequence_length(length)
        if self.check_inputs and not in_xla_context():
            token_ids = self._checked(token_ids, segment_ids, length)
        tokens = tf.gather(self.token_embeddings, token_ids)  # (batch, seq, hidden)
        if isinstance(start_index, int) and start_index == 0:
            positions = self.position_embeddings[:length][None]  # (1, seq, hidden)
        else:
            positions = tf.slice(
                self.position_embeddings,
                tf.stack([tf.cast(start_index, tf.int32), 0]),
                [length, self.hidden_dim],
            )[None]  # (1, seq, hidden)
        if segment_ids is not None:
            segments = tf.gather(self.segment_embeddings, segment_ids)  # (batch, seq, hidden)
        else:
            segments = self.segment_embeddings[:1][None]  # (1, 1, hidden)
        rate = self.dropout if training else 0.0
        if rate:
            (seed,) = random.draw_seeds(self.seed_generator, ("embedding_dropout",))
        else:
            seed = tf.zeros([2], tf.int32)
        return kernels.embedding_layer_norm(
            tokens,
            tf.convert_to_tensor(positions),
            tf.convert_to_tensor(segments),
            tf.convert_to_tensor(self.layer_norm.gamma),
            tf.convert_to_tensor(self.layer_norm.beta),
            self.layer_norm_epsilon,
            rate,
            seed,
            tf.cast(distribute.replica_id(), tf.int32),
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
                "check_inputs": self.check_inputs,
                "seed": self.seed,
            }
        )
        return config


def _id_error(name, bad, limit, limit_name, advice):
    return f"{name} must lie in [0, {limit_name}={limit}); found {sorted(set(bad))[:5]}. " + advice


_TOKEN_ADVICE = (
    "The data was tokenized with another vocabulary than the model's: use the "
    "model's preprocessor, or build the model with the tokenizer's "
    "vocabulary_size()."
)
_SEGMENT_ADVICE = "Pack at most num_segments texts per example."


def _packed_of(element):
    """The packed dict (with 'token_ids') in a batch or `(x, y, ...)` tuple."""
    if isinstance(element, dict):
        return element if "token_ids" in element else None
    if isinstance(element, (tuple, list)) and element:
        return _packed_of(element[0])
    return None


def check_token_ids(x, vocabulary_size, num_segments=None):
    """Checks the token (and segment) ids of model inputs on the host.

    XLA-compiled steps cannot assert, and a gather there clamps an
    out-of-range id silently, so the text models check their inputs before
    they reach the step.

    Args:
        x: what `fit`/`evaluate`/`predict` take: a packed dict (or an
            `(x, y)` tuple of one) of arrays, checked now; a `tf.data.Dataset`
            of such elements, returned with a check on each element (it runs
            in the input pipeline, on the host); anything else is returned
            as it is.
        vocabulary_size: int. Token ids must lie in `[0, vocabulary_size)`.
        num_segments: int or None. Segment ids must lie in `[0, num_segments)`.

    Returns:
        `x`, or the data set with the check mapped over it.

    Raises:
        ValueError: for out-of-range ids in arrays (an `InvalidArgumentError`
            with the same message from a data set's iterator).
    """
    checks = [("token_ids", vocabulary_size, "vocabulary_size", _TOKEN_ADVICE)]
    if num_segments is not None:
        checks.append(("segment_ids", num_segments, "num_segments", _SEGMENT_ADVICE))
    if isinstance(x, tf.data.Dataset):
        if _packed_of(x.element_spec) is None:
            return x

        def check(*element):
            packed = _packed_of(element)
            asserts = []
            for key, limit, limit_name, advice in checks:
                if packed.get(key) is None:
                    continue
                ids = tf.cast(packed[key], tf.int64)
                ok = tf.reduce_all((ids >= 0) & (ids < limit))
                asserts.append(
                    tf.debugging.Assert(
                        ok,
                        [
                            f"{key} must lie in [0, {limit_name}={limit}); got values from",
                            tf.reduce_min(ids),
                            "to",
                            tf.reduce_max(ids),
                            ". " + advice,
                        ],
                    )
                )
            with tf.control_dependencies(asserts):
                element = tf.nest.map_structure(tf.identity, element)
            return element[0] if len(element) == 1 else element

        return x.map(check)
    packed = _packed_of(x)
    if packed is None:
        return x
    for key, limit, limit_name, advice in checks:
        value = packed.get(key)
        if value is None or (isinstance(value, tf.Tensor) and not tf.executing_eagerly()):
            continue
        ids = np.asarray(value)
        if ids.dtype.kind not in "iu":
            continue
        bad = ids[(ids < 0) | (ids >= limit)]
        if bad.size:
            raise ValueError(_id_error(key, bad.tolist(), limit, limit_name, advice))
    return x


class TokenIdCheckMixin:
    """Runs `check_token_ids` on the inputs of `fit`, `evaluate` and
    `predict` of a model with a `BertEmbedding`. Mix in before `keras.Model`."""

    def _checked_inputs(self, x):
        embeddings = [layer for layer in self._flatten_layers(include_self=False) if isinstance(layer, BertEmbedding)]
        if not embeddings or x is None:
            return x
        embedding = embeddings[0]
        return check_token_ids(x, embedding.vocabulary_size, embedding.num_segments)

    def fit(self, x=None, *args, **kwargs):
        return super().fit(self._checked_inputs(x), *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        return super().evaluate(self._checked_inputs(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(self._checked_inputs(x), *args, **kwargs)
