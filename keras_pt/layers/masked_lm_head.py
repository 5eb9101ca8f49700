"""MaskedLMHead: BERT's masked-LM output layer with tied output embeddings."""

import keras
import tensorflow as tf

from keras_pt.kernels import transformer as kernels
from keras_pt.kernels.transformer import ACTIVATIONS


@keras.saving.register_keras_serializable(package="keras_pt")
class MaskedLMHead(keras.layers.Layer):
    """Token logits from encoder outputs: `LN(act(W·h + b)) · Eᵀ + b_out`.

    The output projection is tied to the token embedding matrix `E`
    `(vocabulary_size, hidden_dim)`, passed to `call`; the head owns the
    transform (dense, activation, LayerNorm) and the output bias.

    `call(sequence, token_embeddings, mask_positions=None)`:
    `sequence` is `(batch, seq_len, hidden_dim)`. With `mask_positions`
    (int `(batch, num_predictions)`) only those positions are gathered and
    scored, giving `(batch, num_predictions, vocabulary_size)` — the cheap
    path for training, as in BERT; without, every position is scored,
    `(batch, seq_len, vocabulary_size)`.

    Args:
        vocabulary_size: int. Number of output tokens (rows of `E`).
        activation: str. Transform activation, as in
            `TransformerEncoderBlock`. Defaults to `"gelu"` (exact).
        layer_norm_epsilon: float. Defaults to 1e-12 (BERT).
        initializer_range: float. Stddev of the truncated-normal kernel
            initializer. Defaults to 0.02.

    Example:

    >>> head = MaskedLMHead(vocabulary_size=100)
    >>> E = tf.random.normal((100, 32))
    >>> h = tf.random.normal((2, 8, 32))
    >>> head(h, E, mask_positions=tf.constant([[1, 3], [0, 5]])).shape
    TensorShape([2, 2, 100])
    """

    def __init__(
        self,
        vocabulary_size,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(vocabulary_size) < 1:
            raise ValueError(f"vocabulary_size must be a positive int; got {vocabulary_size}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}.")

        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.initializer_range = float(initializer_range)

        # === Layers ===
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )

    def build(self, sequence_shape, token_embeddings_shape=None, mask_positions_shape=None):
        hidden_dim = sequence_shape[-1]
        self.hidden_dim = hidden_dim
        self.transform_kernel = self.add_weight(
            name="transform_kernel",
            shape=(hidden_dim, hidden_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
        )
        self.transform_bias = self.add_weight(name="transform_bias", shape=(hidden_dim,), initializer="zeros")
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocabulary_size,), initializer="zeros")
        self.layer_norm.build((None, hidden_dim))
        self.built = True

    def call(self, sequence, token_embeddings, mask_positions=None):
        if token_embeddings.shape[0] != self.vocabulary_size:
            raise ValueError(
                f"token_embeddings has {token_embeddings.shape[0]} rows but the "
                f"head scores vocabulary_size={self.vocabulary_size} tokens."
            )
        if mask_positions is not None:
            # (batch, num_predictions, hidden)
            sequence = tf.gather(sequence, tf.cast(mask_positions, tf.int32), batch_dims=1)
        batch = tf.shape(sequence)[0]
        length = sequence.shape[1] if sequence.shape[1] is not None else tf.shape(sequence)[1]
        rows = tf.reshape(sequence, [-1, self.hidden_dim])  # (batch·positions, hidden)
        x = kernels.bias_activation_layer_norm(
            tf.matmul(rows, self.transform_kernel),
            tf.convert_to_tensor(self.transform_bias),
            tf.convert_to_tensor(self.layer_norm.gamma),
            tf.convert_to_tensor(self.layer_norm.beta),
            self.activation,
            self.layer_norm_epsilon,
        )  # (batch·positions, hidden)
        embeddings = tf.cast(token_embeddings, x.dtype)
        logits = tf.nn.bias_add(
            tf.matmul(x, embeddings, transpose_b=True), self.output_bias
        )  # (batch·positions, vocabulary)
        return tf.reshape(logits, [batch, length, self.vocabulary_size])

    def compute_output_shape(self, sequence_shape, token_embeddings_shape=None, mask_positions_shape=None):
        length = sequence_shape[1] if mask_positions_shape is None else mask_positions_shape[1]
        return (sequence_shape[0], length, self.vocabulary_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
            }
        )
        return config
