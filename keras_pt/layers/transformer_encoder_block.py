"""TransformerEncoderBlock: a post-LN BERT encoder layer with fused attention."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import random
from keras_pt.kernels import transformer as kernels
from keras_pt.kernels.transformer import ACTIVATIONS


def mask_value(dtype):
    """A large negative logit for masked keys, safe in `dtype`.

    Half of the dtype's lowest finite value: adding it to any attention score
    cannot overflow to -inf, and a row with every key masked still gives a
    finite (uniform) softmax instead of NaN.
    """
    return 0.5 * tf.as_dtype(dtype).min


def _batch_and_length(x):
    """`x`'s first two dimensions, static where known."""
    batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    length = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
    return batch, length


def make_attention_bias(padding_mask, sequence_length, dtype, causal=False, query_positions=None):
    """Additive attention bias, broadcastable to `(batch, 1, queries, keys)`.

    0 where a query may attend to a key, `mask_value(dtype)` where not (a
    padded key, or a later key when `causal`). `padding_mask` may be None
    (no padding), bool or int `(batch, sequence_length)`. Queries are all
    positions, or the int `query_positions` `(batch, num_queries)`.
    """
    bias = None
    if padding_mask is not None:
        keep = tf.cast(padding_mask, dtype)  # (batch, keys), 1 = real token
        bias = ((1.0 - keep) * mask_value(dtype))[:, None, None, :]
    if causal:
        keys = tf.range(sequence_length)
        if query_positions is None:
            later = keys[None, :] > keys[:, None]  # (queries, keys)
            later = later[None, None, :, :]
        else:
            later = keys[None, None, :] > tf.cast(query_positions, tf.int32)[:, :, None]
            later = later[:, None, :, :]  # (batch, 1, queries, keys)
        causal_bias = tf.cast(later, dtype) * mask_value(dtype)
        # Both masks at once stay above the dtype's lowest value.
        bias = causal_bias if bias is None else tf.minimum(bias, causal_bias)
    return bias


@keras.saving.register_keras_serializable(package="keras_pt")
class TransformerEncoderBlock(keras.layers.Layer):
    """A post-LN transformer encoder layer as in BERT.

    ```
    h = LayerNorm(x + Dropout(Attention(x)))
    y = LayerNorm(h + Dropout(W2 · act(W1 · h + b1) + b2))
    ```

    Attention is multi-head scaled dot-product self-attention with one fused
    projection for queries, keys and values (`(hidden, 3·hidden)`, one matmul)
    and one output projection; dropout is applied to the attention
    probabilities as in BERT. Masked keys get `mask_value(dtype)` added to
    their scores before the softmax (dtype-aware, safe in float16/bfloat16;
    the softmax runs in float32 under mixed precision).

    The four matmuls are plain TF ops (oneDNN on CPU); everything between
    them — bias adds, head split and merge, masked softmax, GELU, dropout,
    residual + LayerNorm — runs in the fused XLA kernels of
    `keras_pt.kernels.transformer` (forward and gradient). Dropout masks
    are counter-based (`keras_pt.kernels.dropout`): Bernoulli(1 - rate)
    like `keras.layers.Dropout`, cheap under XLA, and identical on one
    device and N replicas for the same seed.

    `call(x, padding_mask=None, attention_bias=None, query_positions=None)`
    takes `x` of shape `(batch, seq_len, hidden_dim)` and returns the same
    shape. Keys where `padding_mask` is 0/False are ignored; with
    `causal=True` position `i` attends only to positions `<= i`. A
    precomputed `attention_bias` (from `make_attention_bias(...)`,
    broadcastable to `(batch, heads, queries, keys)`) replaces
    `padding_mask` and `causal`. With `query_positions` (int `(batch,
    num_queries)`) the block computes its outputs only at those positions,
    `(batch, num_queries, hidden_dim)` — exactly the rows the full output
    would have there (in training too: the dropout masks are the full
    block's at those rows), since keys and values still come from every
    position — which is how a masked-LM step skips the last block's work at
    positions it does not predict.

    `call_with_cache(x, key_cache, value_cache, cache_index)` runs a causal
    block at new positions only, reading and updating fixed-shape key/value
    caches `(batch, num_heads, max_length, head_dim)`: autoregressive
    decoding (`MiniGPT.generate`).

    Args:
        num_heads: int. Attention heads; must divide the hidden size.
        intermediate_dim: int. Width of the feed-forward layer.
        dropout: float. Dropout rate for the attention probabilities, the
            attention output and the feed-forward output. Defaults to 0.1.
        activation: str. `"gelu"` (exact erf form), `"gelu_approximate"`
            (tanh form) or `"relu"`. Defaults to `"gelu"`.
        layer_norm_epsilon: float. Defaults to 1e-12 (BERT).
        causal: bool. Mask later positions (a decoder-only LM). Defaults to
            False.
        initializer_range: float. Stddev of the truncated-normal kernel
            initializer. Defaults to 0.02 (BERT).
        seed: int or None. Seed of the dropout `SeedGenerator`. Defaults to
            None.

    Example:

    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64)
    >>> x = tf.random.normal((2, 8, 32))
    >>> block(x, padding_mask=tf.ones((2, 8), tf.int32)).shape
    TensorShape([2, 8, 32])

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
        Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers
        for Language Understanding", 2019.
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        causal=False,
        initializer_range=0.02,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"num_heads must be a positive int; got {num_heads}.")
        if int(intermediate_dim) < 1:
            raise ValueError(f"intermediate_dim must be a positive int; got {intermediate_dim}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}.")

        # === Config ===
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.causal = bool(causal)
        self.initializer_range = float(initializer_range)
        self.seed = seed

        # === Layers ===
        # LayerNorm weights (the normalisation itself runs in fused kernels).
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="attention_layer_norm",
        )
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="feedforward_layer_norm",
        )
        # Dropout masks: fresh, independent seeds for each call's three
        # masks (counter-based masks, `keras_pt.kernels.random.split`).
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def _kernel_initializer(self):
        return keras.initializers.TruncatedNormal(stddev=self.initializer_range)

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim is None:
            raise ValueError("TransformerEncoderBlock needs a known hidden size.")
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide the hidden size {hidden_dim}; change num_heads or hidden_dim."
            )
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // self.num_heads
        # Q, K and V in one (hidden, 3·hidden) projection: one matmul.
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel",
            shape=(hidden_dim, 3 * hidden_dim),
            initializer=self._kernel_initializer(),
        )
        self.qkv_bias = self.add_weight(name="qkv_bias", shape=(3 * hidden_dim,), initializer="zeros")
        self.attention_output_kernel = self.add_weight(
            name="attention_output_kernel",
            shape=(hidden_dim, hidden_dim),
            initializer=self._kernel_initializer(),
        )
        self.attention_output_bias = self.add_weight(
            name="attention_output_bias", shape=(hidden_dim,), initializer="zeros"
        )
        self.intermediate_kernel = self.add_weight(
            name="intermediate_kernel",
            shape=(hidden_dim, self.intermediate_dim),
            initializer=self._kernel_initializer(),
        )
        self.intermediate_bias = self.add_weight(
            name="intermediate_bias", shape=(self.intermediate_dim,), initializer="zeros"
        )
        self.output_kernel = self.add_weight(
            name="output_kernel",
            shape=(self.intermediate_dim, hidden_dim),
            initializer=self._kernel_initializer(),
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(hidden_dim,), initializer="zeros")
        self.attention_layer_norm.build(input_shape)
        self.feedforward_layer_norm.build(input_shape)
        self.built = True

    def _seeds(self, rate):
        if not rate:
            zero = tf.zeros([2], tf.int32)
            return zero, zero, zero
        return random.draw_seeds(
            self.seed_generator,
            ("attention_dropout", "attention_output_dropout", "feedforward_dropout"),
        )

    def _attend_all(self, x, attention_bias, seeds):
        """Attention of every position: `(context (batch, seq, hidden), residual rows)`."""
        batch, length = _batch_and_length(x)
        hidden = self.hidden_dim
        rows = tf.reshape(x, [-1, hidden])  # (batch·seq, hidden)
        qkv = tf.reshape(tf.matmul(rows, tf.convert_to_tensor(self.qkv_kernel)), [batch, length, 3 * hidden])
        rate, seed, replica = seeds
        context = kernels.self_attention(
            qkv, tf.convert_to_tensor(self.qkv_bias), attention_bias, self.num_heads, rate, seed, replica
        )  # (batch, seq, hidden)
        return context, rows

    def _attend_queries(self, x, query_positions, attention_bias, seeds):
        """Attention at `query_positions` only: keys and values still come
        from every position, the rest of the block runs on the queries.
        Returns `(context (batch, queries, hidden), residual (batch·queries, hidden))`."""
        batch, length = _batch_and_length(x)
        hidden = self.hidden_dim
        num_queries = query_positions.shape[1]
        qkv_kernel = tf.convert_to_tensor(self.qkv_kernel)
        qkv_bias = tf.convert_to_tensor(self.qkv_bias)
        rows = tf.reshape(x, [-1, hidden])  # (batch·seq, hidden)
        kv = tf.reshape(tf.matmul(rows, qkv_kernel[:, hidden:]), [batch, length, 2 * hidden])  # (batch, seq, 2·hidden)
        residual = tf.reshape(tf.gather(x, query_positions, batch_dims=1), [-1, hidden])  # (batch·queries, hidden)
        query = tf.reshape(tf.matmul(residual, qkv_kernel[:, :hidden]), [batch, num_queries, hidden])
        rate, seed, replica = seeds
        context = kernels.query_attention(
            query,
            qkv_bias[:hidden],
            kv,
            qkv_bias[hidden:],
            attention_bias,
            self.num_heads,
            rate,
            seed,
            replica,
            query_positions,
        )  # (batch, queries, hidden)
        return context, residual

    def call(
        self,
        x,
        padding_mask=None,
        attention_bias=None,
        query_positions=None,
        training=None,
    ):
        batch, length = _batch_and_length(x)
        hidden = self.hidden_dim
        if attention_bias is None:
            attention_bias = make_attention_bias(
                padding_mask,
                length,
                x.dtype,
                causal=self.causal,
                query_positions=query_positions,
            )
        rate = self.dropout if training else 0.0
        attention_seed, attention_output_seed, feedforward_seed = self._seeds(rate)
        replica = tf.cast(distribute.replica_id(), tf.int32)

        # Self-attention: the matmuls run as plain (oneDNN) ops, the rest in
        # fused XLA kernels.
        seeds = (rate, attention_seed, replica)
        if query_positions is None:
            num_queries = length
            context, residual = self._attend_all(x, attention_bias, seeds)
            rows_index = total_rows = None
        else:
            query_positions = tf.cast(query_positions, tf.int32)
            num_queries = query_positions.shape[1]
            context, residual = self._attend_queries(x, query_positions, attention_bias, seeds)
            # The queries' rows among the batch·seq rows: their dropout masks
            # are the full block's at those rows.
            rows_index = tf.reshape(tf.range(batch)[:, None] * length + query_positions, [-1])
            total_rows = batch * length
        attended = tf.matmul(tf.reshape(context, [-1, hidden]), self.attention_output_kernel)
        h = kernels.residual_layer_norm(
            attended,
            tf.convert_to_tensor(self.attention_output_bias),
            residual,
            tf.convert_to_tensor(self.attention_layer_norm.gamma),
            tf.convert_to_tensor(self.attention_layer_norm.beta),
            self.layer_norm_epsilon,
            rate,
            attention_output_seed,
            replica,
            rows_index,
            total_rows,
        )  # (batch·queries, hidden)

        # Feed-forward
        inner = kernels.bias_activation(
            tf.matmul(h, self.intermediate_kernel),
            tf.convert_to_tensor(self.intermediate_bias),
            self.activation,
        )  # (batch·queries, intermediate)
        y = kernels.residual_layer_norm(
            tf.matmul(inner, self.output_kernel),
            tf.convert_to_tensor(self.output_bias),
            h,
            tf.convert_to_tensor(self.feedforward_layer_norm.gamma),
            tf.convert_to_tensor(self.feedforward_layer_norm.beta),
            self.layer_norm_epsilon,
            rate,
            feedforward_seed,
            replica,
            rows_index,
            total_rows,
        )  # (batch·queries, hidden)
        return tf.reshape(y, [batch, num_queries, hidden])

    def call_with_cache(self, x, key_cache, value_cache, cache_index):
        """The causal block at new positions, with a key/value cache (inference).

        `x` `(batch, n, hidden_dim)` holds the inputs at positions
        `cache_index, ..., cache_index + n - 1`. Their keys and values are
        written into the caches at those positions, and each attends to the
        cached positions up to its own, so the outputs equal `call`'s rows
        there when the caches hold the keys and values of every earlier
        position. No dropout. With `n = seq_len` and `cache_index = 0` it
        is `call(x)` that also fills the caches (a prompt's prefill); with
        `n = 1` it is one decoding step.

        Args:
            x: `(batch, n, hidden_dim)`.
            key_cache: `(batch, num_heads, max_length, head_dim)`.
            value_cache: `(batch, num_heads, max_length, head_dim)`.
            cache_index: int32 scalar (may be a tensor), the position of `x`'s
                first row.

        Returns:
            `(outputs (batch, n, hidden_dim), key_cache, value_cache)`.
        """
        if not self.causal:
            raise ValueError(
                "call_with_cache needs a causal block (causal=True): a key/value cache only holds earlier positions."
            )
        batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
        length = x.shape[1]
        hidden = self.hidden_dim
        zero_seed = tf.zeros([2], tf.int32)
        replica = tf.zeros([], tf.int32)

        def weight(variable):
            # In the compute dtype: called directly, not through `__call__`'s autocast.
            return tf.cast(tf.convert_to_tensor(variable), x.dtype)

        # Self-attention over the cache
        rows = tf.reshape(x, [-1, hidden])  # (batch·n, hidden)
        qkv = tf.reshape(tf.matmul(rows, weight(self.qkv_kernel)), [batch, length, 3 * hidden])
        context, key_cache, value_cache = kernels.cached_attention(
            qkv,
            weight(self.qkv_bias),
            key_cache,
            value_cache,
            cache_index,
            self.num_heads,
        )  # (batch, n, hidden)
        attended = tf.matmul(tf.reshape(context, [-1, hidden]), weight(self.attention_output_kernel))
        h = kernels.residual_layer_norm(
            attended,
            weight(self.attention_output_bias),
            rows,
            weight(self.attention_layer_norm.gamma),
            weight(self.attention_layer_norm.beta),
            self.layer_norm_epsilon,
            0.0,
            zero_seed,
            replica,
        )  # (batch·n, hidden)

        # Feed-forward
        inner = kernels.bias_activation(
            tf.matmul(h, weight(self.intermediate_kernel)),
            weight(self.intermediate_bias),
            self.activation,
        )  # (batch·n, intermediate)
        y = kernels.residual_layer_norm(
            tf.matmul(inner, weight(self.output_kernel)),
            weight(self.output_bias),
            h,
            weight(self.feedforward_layer_norm.gamma),
            weight(self.feedforward_layer_norm.beta),
            self.layer_norm_epsilon,
            0.0,
            zero_seed,
            replica,
        )  # (batch·n, hidden)
        return tf.reshape(y, [batch, length, hidden]), key_cache, value_cache

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "causal": self.causal,
                "initializer_range": self.initializer_range,
                "seed": self.seed,
            }
        )
        return config
