"""TransformerEncoderBlock: a post-LN BERT encoder layer with fused attention."""

import math

import keras
import tensorflow as tf

from keras_pt.layers.fast_dropout import FastDropout

ACTIVATIONS = ("gelu", "gelu_approximate", "relu")


def activation_fn(name):
    """The feed-forward activation for a name in `ACTIVATIONS`."""
    if name == "gelu":
        # 0.5·x·(1 + erf(x/√2)), the exact form.
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name == "gelu_approximate":
        # 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), the original BERT code's form.
        return lambda x: tf.nn.gelu(x, approximate=True)
    if name == "relu":
        return tf.nn.relu
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")


def mask_value(dtype):
    """A large negative logit for masked keys, safe in `dtype`.

    Half of the dtype's lowest finite value: adding it to any attention score
    cannot overflow to -inf, and a row with every key masked still gives a
    finite (uniform) softmax instead of NaN.
    """
    return 0.5 * tf.as_dtype(dtype).min


def make_attention_bias(
    padding_mask, sequence_length, dtype, causal=False, query_positions=None
):
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

    `call(x, padding_mask=None, attention_bias=None, query_positions=None)`
    takes `x` of shape `(batch, seq_len, hidden_dim)` and returns the same
    shape. Keys where `padding_mask` is 0/False are ignored; with
    `causal=True` position `i` attends only to positions `<= i`. A
    precomputed `attention_bias` (from `make_attention_bias(...)`,
    broadcastable to `(batch, heads, queries, keys)`) replaces
    `padding_mask` and `causal`. With `query_positions` (int `(batch,
    num_queries)`) the block computes its outputs only at those positions,
    `(batch, num_queries, hidden_dim)` — exactly the rows the full output
    would have there, since keys and values still come from every position —
    which is how a masked-LM step skips the last block's work at positions
    it does not predict.

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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"num_heads must be a positive int; got {num_heads}.")
        if int(intermediate_dim) < 1:
            raise ValueError(
                f"intermediate_dim must be a positive int; got {intermediate_dim}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}.")
        self._activation = activation_fn(activation)

        # === Config ===
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.causal = bool(causal)
        self.initializer_range = float(initializer_range)

        # === Layers ===
        self.attention_dropout = FastDropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.attention_output_dropout = FastDropout(
            self.dropout, dtype=self.dtype_policy, name="attention_output_dropout"
        )
        self.feedforward_dropout = FastDropout(
            self.dropout, dtype=self.dtype_policy, name="feedforward_dropout"
        )
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

    def _kernel_initializer(self):
        return keras.initializers.TruncatedNormal(stddev=self.initializer_range)

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim is None:
            raise ValueError("TransformerEncoderBlock needs a known hidden size.")
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide the hidden size "
                f"{hidden_dim}; change num_heads or hidden_dim."
            )
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // self.num_heads
        # Q, K and V in one (hidden, 3·hidden) projection: one matmul.
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel",
            shape=(hidden_dim, 3 * hidden_dim),
            initializer=self._kernel_initializer(),
        )
        self.qkv_bias = self.add_weight(
            name="qkv_bias", shape=(3 * hidden_dim,), initializer="zeros"
        )
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
        self.output_bias = self.add_weight(
            name="output_bias", shape=(hidden_dim,), initializer="zeros"
        )
        self.attention_layer_norm.build(input_shape)
        self.feedforward_layer_norm.build(input_shape)
        self.built = True

    def _dense(self, x, kernel, bias):
        # (rows, in) @ (in, out) + (out,): MatMul + BiasAdd, which the CPU
        # graph optimiser fuses (with a following GELU) into one kernel.
        return tf.nn.bias_add(tf.matmul(x, kernel), bias)

    def call(
        self,
        x,
        padding_mask=None,
        attention_bias=None,
        query_positions=None,
        training=None,
    ):
        batch = tf.shape(x)[0]
        length = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
        hidden, heads, head_dim = self.hidden_dim, self.num_heads, self.head_dim
        compute_dtype = x.dtype
        if attention_bias is None:
            attention_bias = make_attention_bias(
                padding_mask,
                length,
                compute_dtype,
                causal=self.causal,
                query_positions=query_positions,
            )

        # Self-attention: queries, keys and values from one projection
        rows = tf.reshape(x, [-1, hidden])  # (batch·seq, hidden)
        if query_positions is None:
            num_queries = length
            qkv = self._dense(rows, self.qkv_kernel, self.qkv_bias)  # (batch·seq, 3·hidden)
            qkv = tf.reshape(qkv, [batch, length, 3, heads, head_dim])
            qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # (3, batch, heads, seq, head_dim)
            query, key, value = qkv[0], qkv[1], qkv[2]
            residual = rows
        else:
            # Outputs only at `query_positions`: keys and values still come
            # from every position, the rest of the block runs on the queries.
            query_positions = tf.cast(query_positions, tf.int32)
            num_queries = query_positions.shape[1]
            kv = self._dense(rows, self.qkv_kernel[:, hidden:], self.qkv_bias[hidden:])
            kv = tf.reshape(kv, [batch, length, 2, heads, head_dim])
            kv = tf.transpose(kv, [2, 0, 3, 1, 4])  # (2, batch, heads, seq, head_dim)
            key, value = kv[0], kv[1]
            residual = tf.reshape(
                tf.gather(x, query_positions, batch_dims=1), [-1, hidden]
            )  # (batch·queries, hidden)
            query = self._dense(residual, self.qkv_kernel[:, :hidden], self.qkv_bias[:hidden])
            query = tf.transpose(
                tf.reshape(query, [batch, num_queries, heads, head_dim]), [0, 2, 1, 3]
            )  # (batch, heads, queries, head_dim)
        query = query * tf.cast(1.0 / math.sqrt(head_dim), compute_dtype)
        scores = tf.matmul(query, key, transpose_b=True)  # (batch, heads, queries, seq)
        if attention_bias is not None:
            scores = scores + tf.cast(attention_bias, scores.dtype)
        if scores.dtype != tf.float32:
            probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32)), compute_dtype)
        else:
            probs = tf.nn.softmax(scores)
        probs = self.attention_dropout(probs, training=training)
        context = tf.matmul(probs, value)  # (batch, heads, queries, head_dim)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [-1, hidden])
        attended = self._dense(
            context, self.attention_output_kernel, self.attention_output_bias
        )  # (batch·queries, hidden)
        attended = self.attention_output_dropout(attended, training=training)
        h = self.attention_layer_norm(residual + attended)  # (batch·queries, hidden)

        # Feed-forward
        inner = self._activation(
            self._dense(h, self.intermediate_kernel, self.intermediate_bias)
        )  # (batch·queries, intermediate)
        out = self._dense(inner, self.output_kernel, self.output_bias)
        out = self.feedforward_dropout(out, training=training)
        y = self.feedforward_layer_norm(h + out)  # (batch·queries, hidden)
        return tf.reshape(y, [batch, num_queries, hidden])

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
            }
        )
        return config

