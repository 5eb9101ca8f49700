"""XLA kernels for the non-matmul work of a BERT transformer block.

A transformer step is mostly matrix products, which TensorFlow runs through
oneDNN on CPU (and cuBLAS/TPU MXUs elsewhere). What remains — head
reshapes and transposes, softmax with the mask, bias + GELU, dropout,
residual + LayerNorm — is many small memory-bound ops that plain TF runs
one kernel (and one pass over memory) at a time, with transposes and
element-wise gradients that cost as much as a matmul on CPU. Each function
here is a `keras_pt.kernels.xla.fused_kernel`: XLA fuses its forward into
one cluster and its gradient (recomputing the cheap forward) into another,
while the surrounding matmuls stay ordinary TF ops. Inside a step that is
itself compiled with XLA they are simply inlined, so the same code runs on
TPUs.

Dropout uses the counter-based masks of `keras_pt.kernels.dropout`
(`replica` is this replica's index, so masks are the same on 1 or N
replicas). A `rate` of 0 (e.g. at inference) skips it.
"""

import math

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as tf_xla

from keras_pt.kernels import dropout as dropout_kernel
from keras_pt.kernels.xla import fused_kernel, xla_kernel

ACTIVATIONS = ("gelu", "gelu_approximate", "relu")


def activation(x, name):
    """The feed-forward activation `name` (one of `ACTIVATIONS`)."""
    if name == "gelu":
        # 0.5·x·(1 + erf(x/√2)), the exact form.
        return tf.nn.gelu(x, approximate=False)
    if name == "gelu_approximate":
        # 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), the original BERT code's form.
        return tf.nn.gelu(x, approximate=True)
    if name == "relu":
        return tf.nn.relu(x)
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")


def layer_norm(x, gamma, beta, epsilon):
    """LayerNorm over the last axis, computed in float32."""
    x32 = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
    y = (x32 - mean) * tf.math.rsqrt(variance + epsilon)
    y = y * tf.cast(gamma, tf.float32) + tf.cast(beta, tf.float32)
    return tf.cast(y, x.dtype)


def _dropout(x, rate, seed, replica, counter=None, full_size=None):
    """Dropout of `x`; with `counter` (int32, `x`'s shape) the element
    indices in a larger "full" tensor of `full_size` elements, whose mask
    `x` then shares."""
    if not rate:
        return x
    if counter is not None:
        counter = counter + tf.cast(replica, tf.int32) * full_size
        scale = dropout_kernel.dropout_scale_at(counter, rate, seed)
        return x * tf.cast(scale, x.dtype)
    if x.shape.is_fully_defined():
        shape, size = tuple(x.shape.as_list()), x.shape.num_elements()
    else:
        shape, size = tf.shape(x), tf.size(x)
    offset = tf.cast(replica, tf.int32) * size
    scale = dropout_kernel._dropout_scale(shape, rate, seed, offset)
    return x * tf.cast(scale, x.dtype)


def _split_heads(x, num_heads):
    # (batch, seq, heads·head_dim) -> (batch, heads, seq, head_dim)
    batch, length, width = x.shape
    x = tf.reshape(x, [-1 if batch is None else batch, length, num_heads, width // num_heads])
    return tf.transpose(x, [0, 2, 1, 3])


def _merge_heads(x):
    # (batch, heads, seq, head_dim) -> (batch, seq, heads·head_dim)
    batch, heads, length, head_dim = x.shape
    x = tf.transpose(x, [0, 2, 1, 3])
    return tf.reshape(x, [-1 if batch is None else batch, length, heads * head_dim])


def _probs_dropout_scale(probs, rate, seed, replica, query_positions=None):
    """The dropout scale of the attention probabilities, or None (no dropout).

    With `query_positions` (the queries' positions in the sequence) it is
    the full self-attention's mask at those rows.
    """
    if not rate:
        return None
    batch, heads, queries, length = probs.shape
    batch = tf.shape(probs)[0] if batch is None else batch
    full_size = batch * heads * length * length
    if query_positions is not None:
        # Index of (b, h, position, k) in the full (batch, heads, seq, seq) probabilities.
        rows = (tf.range(batch)[:, None, None] * heads + tf.range(heads)[None, :, None]) * length + tf.cast(
            query_positions, tf.int32
        )[:, None, :]  # (batch, heads, queries)
        counter = rows[..., None] * length + tf.range(length)  # (batch, heads, queries, seq)
    else:
        counter = tf.reshape(tf.range(full_size), [batch, heads, queries, length])
    counter = counter + tf.cast(replica, tf.int32) * full_size
    return tf.cast(dropout_kernel.dropout_scale_at(counter, rate, seed), probs.dtype)


def _attention_probs(query, key, attention_bias, value_dtype):
    scaled = query * tf.cast(1.0 / math.sqrt(query.shape[-1]), query.dtype)
    scores = tf.matmul(scaled, key, transpose_b=True)  # (batch, heads, queries, keys)
    if attention_bias is not None:
        scores = scores + tf.cast(attention_bias, scores.dtype)
    return tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32)), value_dtype)


def _attend(query, key, value, attention_bias, rate, seed, replica, query_positions=None):
    """Softmax attention over split heads: context `(batch, heads, queries,
    head_dim)` and the probabilities before dropout."""
    probs = _attention_probs(query, key, attention_bias, value.dtype)
    scale = _probs_dropout_scale(probs, rate, seed, replica, query_positions)
    dropped = probs if scale is None else probs * scale
    return tf.matmul(dropped, value), probs


def _attend_backward(d_context, probs, query, key, value, rate, seed, replica, query_positions=None):
    """Gradients of `_attend`'s context w.r.t. query, key and value, from the
    saved probabilities (the dropout mask is recomputed from its counters)."""
    scale = _probs_dropout_scale(probs, rate, seed, replica, query_positions)
    dropped = probs if scale is None else probs * scale
    d_value = tf.matmul(dropped, d_context, transpose_a=True)  # (batch, heads, keys, head_dim)
    d_probs = tf.matmul(d_context, value, transpose_b=True)  # (batch, heads, queries, keys)
    if scale is not None:
        d_probs = d_probs * scale
    d_scores = probs * (d_probs - tf.reduce_sum(d_probs * probs, axis=-1, keepdims=True))
    factor = tf.cast(1.0 / math.sqrt(query.shape[-1]), query.dtype)
    d_query = tf.matmul(d_scores, key) * factor
    d_key = tf.matmul(d_scores, query * factor, transpose_a=True)
    return d_query, d_key, d_value


def self_attention(qkv, qkv_bias, attention_bias, num_heads, rate, seed, replica):
    """Multi-head self-attention from fused projections.

    Args:
        qkv: `(batch, seq, 3·hidden)`, the inputs times the fused Q|K|V
            kernel (before the bias).
        qkv_bias: `(3·hidden,)`.
        attention_bias: additive mask broadcastable to `(batch, heads, seq,
            seq)`, or None.
        num_heads: int (static).
        rate: float (static). Dropout on the attention probabilities.
        seed: shape-(2,) int seed.
        replica: int32 scalar, this replica's index.

    Returns:
        The attention context `(batch, seq, hidden)`, before the output
        projection.
    """
    return _self_attention_forward(qkv, qkv_bias, attention_bias, num_heads, rate, seed, replica)[0]


def _split_qkv(qkv, qkv_bias, num_heads):
    query, key, value = tf.split(qkv + qkv_bias, 3, axis=-1)
    return (
        _split_heads(query, num_heads),
        _split_heads(key, num_heads),
        _split_heads(value, num_heads),
    )


def _self_attention_forward(qkv, qkv_bias, attention_bias, num_heads, rate, seed, replica):
    query, key, value = _split_qkv(qkv, qkv_bias, num_heads)
    context, probs = _attend(query, key, value, attention_bias, rate, seed, replica)
    return _merge_heads(context), probs


def _self_attention_backward(d_output, probs, qkv, qkv_bias, attention_bias, num_heads, rate, seed, replica):
    query, key, value = _split_qkv(qkv, qkv_bias, num_heads)
    d_context = _split_heads(d_output, num_heads)
    grads = _attend_backward(d_context, probs, query, key, value, rate, seed, replica)
    d_qkv = tf.concat([_merge_heads(g) for g in grads], axis=-1)  # (batch, seq, 3·hidden)
    return d_qkv, tf.reduce_sum(d_qkv, axis=[0, 1])


def query_attention(query, query_bias, kv, kv_bias, attention_bias, num_heads, rate, seed, replica, query_positions):
    """Multi-head attention of some positions' queries over every key.

    Args:
        query: `(batch, queries, hidden)` projected queries (before bias).
        query_bias: `(hidden,)`.
        kv: `(batch, seq, 2·hidden)` projected keys|values (before bias).
        kv_bias: `(2·hidden,)`.
        attention_bias, num_heads, rate, seed, replica: as in
            `self_attention` (the bias broadcastable to `(batch, heads,
            queries, seq)`).
        query_positions: int32 `(batch, queries)`, the queries' positions;
            the dropout mask equals the full self-attention's at those rows.

    Returns:
        `(batch, queries, hidden)`.
    """
    return _query_attention_forward(
        query,
        query_bias,
        kv,
        kv_bias,
        attention_bias,
        num_heads,
        rate,
        seed,
        replica,
        query_positions,
    )[0]


def _split_query_kv(query, query_bias, kv, kv_bias, num_heads):
    key, value = tf.split(kv + kv_bias, 2, axis=-1)
    return (
        _split_heads(query + query_bias, num_heads),
        _split_heads(key, num_heads),
        _split_heads(value, num_heads),
    )


def _query_attention_forward(
    query, query_bias, kv, kv_bias, attention_bias, num_heads, rate, seed, replica, query_positions
):
    query, key, value = _split_query_kv(query, query_bias, kv, kv_bias, num_heads)
    context, probs = _attend(query, key, value, attention_bias, rate, seed, replica, query_positions)
    return _merge_heads(context), probs


def _query_attention_backward(
    d_output,
    probs,
    query,
    query_bias,
    kv,
    kv_bias,
    attention_bias,
    num_heads,
    rate,
    seed,
    replica,
    query_positions,
):
    query, key, value = _split_query_kv(query, query_bias, kv, kv_bias, num_heads)
    d_context = _split_heads(d_output, num_heads)
    d_query, d_key, d_value = _attend_backward(
        d_context, probs, query, key, value, rate, seed, replica, query_positions
    )
    d_query = _merge_heads(d_query)  # (batch, queries, hidden)
    d_kv = tf.concat([_merge_heads(d_key), _merge_heads(d_value)], axis=-1)
    return d_query, tf.reduce_sum(d_query, [0, 1]), d_kv, tf.reduce_sum(d_kv, [0, 1])


def cached_attention(qkv, qkv_bias, key_cache, value_cache, index, num_heads):
    """Causal multi-head attention of new positions over a key/value cache.

    For autoregressive inference (no dropout, no gradient). The inputs are
    the rows at positions `index, ..., index + n - 1`; their keys and values
    are written into the caches there (`dynamic_update_slice`, static
    shapes), then each query attends to every cached position up to its
    own. Cache positions after the new rows may hold anything: they are
    masked.

    Args:
        qkv: `(batch, n, 3·hidden)`, the new rows times the fused Q|K|V
            kernel (before the bias).
        qkv_bias: `(3·hidden,)`.
        key_cache: `(batch, heads, max_length, head_dim)`.
        value_cache: `(batch, heads, max_length, head_dim)`.
        index: int32 scalar (may be a tensor), the first new row's position.
        num_heads: int (static).

    Returns:
        `(context, key_cache, value_cache)`: the attention context `(batch,
        n, hidden)` before the output projection, and the updated caches.
    """
    query, key, value = _split_qkv(qkv, qkv_bias, num_heads)  # (batch, heads, n, head_dim)
    index = tf.cast(index, tf.int32)
    zero = tf.zeros([], tf.int32)
    start = tf.stack([zero, zero, index, zero])
    key_cache = tf_xla.dynamic_update_slice(key_cache, tf.cast(key, key_cache.dtype), start)
    value_cache = tf_xla.dynamic_update_slice(value_cache, tf.cast(value, value_cache.dtype), start)
    num_new, max_length = query.shape[2], key_cache.shape[2]
    later = tf.range(max_length)[None, :] > index + tf.range(num_new)[:, None]  # (n, max_length)
    bias = tf.cast(later, query.dtype) * (0.5 * query.dtype.min)  # as mask_value(dtype)
    context, _ = _attend(query, key_cache, value_cache, bias[None, None], 0.0, None, None)
    return _merge_heads(context), key_cache, value_cache


def residual_layer_norm(x, bias, residual, gamma, beta, epsilon, rate, seed, replica, rows=None, total_rows=None):
    """`LayerNorm(residual + Dropout(x + bias))`, BERT's post-LN sublayer end.

    `x` is `(rows, hidden)`. With `rows` (int32 `(rows,)`, the indices of
    these rows among `total_rows`) the dropout mask equals the full
    tensor's at those rows.
    """
    counter = full_size = None
    if rows is not None and rate:
        hidden = x.shape[-1]
        counter = tf.cast(rows, tf.int32)[:, None] * hidden + tf.range(hidden)[None, :]
        full_size = total_rows * hidden
    x = _dropout(x + bias, rate, seed, replica, counter, full_size)
    return layer_norm(residual + x, gamma, beta, epsilon)


def bias_activation(x, bias, name):
    """`act(x + bias)` for the feed-forward layer."""
    return activation(x + bias, name)


def bias_activation_layer_norm(x, bias, gamma, beta, name, epsilon):
    """`LayerNorm(act(x + bias))`, the masked-LM head transform."""
    return layer_norm(activation(x + bias, name), gamma, beta, epsilon)


def embedding_layer_norm(tokens, positions, segments, gamma, beta, epsilon, rate, seed, replica):
    """`Dropout(LayerNorm(tokens + positions + segments))` (broadcasting)."""
    x = layer_norm(tokens + positions + segments, gamma, beta, epsilon)
    return _dropout(x, rate, seed, replica)


def sparse_cross_entropy(logits, labels):
    """Per-row `logsumexp(logits) - logits[label]`, float32.

    Args:
        logits: float `(rows, classes)`.
        labels: int `(rows,)`.
    """
    logits = tf.cast(logits, tf.float32)
    picked = tf.gather(logits, tf.cast(labels, tf.int32), batch_dims=1)
    return tf.reduce_logsumexp(logits, axis=-1) - picked


@xla_kernel
def correct_predictions(logits, labels):
    """1.0 where the argmax of a row of `logits` is its label, else 0.0."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32)


# Differentiable arguments first; the rest (masks, seeds, static values) pass through.
# Attention saves its probabilities and has a hand-written backward pass
# (recomputing the score matmuls in the backward kernel would cost more).
self_attention = fused_kernel(self_attention, 2, _self_attention_forward, _self_attention_backward)
query_attention = fused_kernel(query_attention, 4, _query_attention_forward, _query_attention_backward)
residual_layer_norm = fused_kernel(residual_layer_norm, 5)
bias_activation = fused_kernel(bias_activation, 2)
bias_activation_layer_norm = fused_kernel(bias_activation_layer_norm, 4)
embedding_layer_norm = fused_kernel(embedding_layer_norm, 5)
sparse_cross_entropy = fused_kernel(sparse_cross_entropy, 1)
# Inference only: one XLA cluster (or inlined in an XLA loop), no gradient.
cached_attention = xla_kernel(cached_attention)
