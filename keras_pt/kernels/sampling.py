"""Next-token choice for autoregressive sampling: greedy, top-k, temperature.

Pure, stateless and XLA-compatible: randomness comes from an explicit
shape-(2,) seed (`tf.random.stateless_uniform`) and sampling from a
categorical distribution uses the Gumbel-max trick, `argmax(logits / T + g)`
with `g = −log(−log(u))`, `u ~ U(0, 1)`: one uniform per logit, no
data-dependent shapes. The same logits and seed always give the same
tokens.
"""

import tensorflow as tf

SAMPLING_STRATEGIES = ("greedy", "top_k", "temperature")


def check_sampling_args(strategy, temperature, top_k, vocabulary_size=None):
    """Raises a ValueError for an unknown strategy or invalid parameters."""
    if strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {', '.join(SAMPLING_STRATEGIES)}.")
    if not float(temperature) > 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if strategy == "top_k":
        if int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k}.")
        if vocabulary_size is not None and top_k > vocabulary_size:
            raise ValueError(f"top_k={top_k} exceeds the vocabulary size {vocabulary_size}; lower top_k.")


def gumbel_noise(shape, seed):
    """Standard Gumbel noise `−log(−log(u))` from a stateless uniform draw."""
    tiny = tf.constant(1e-20, tf.float32)
    u = tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int32), minval=0.0, maxval=1.0)
    return -tf.math.log(-tf.math.log(u + tiny) + tiny)


def next_token(logits, seed, strategy="greedy", temperature=1.0, top_k=10, banned_ids=()):
    """Chooses one token per row of `logits`.

    Args:
        logits: float tensor `(batch, vocabulary_size)` (unnormalised).
        seed: int tensor of shape `(2,)`; unused by `"greedy"`.
        strategy: str, static. `"greedy"`: the most likely token.
            `"temperature"`: a sample from `softmax(logits / temperature)`.
            `"top_k"`: a sample from the `top_k` most likely tokens,
            renormalised, at `temperature`.
        temperature: float scalar (may be a tensor), `> 0`.
        top_k: int, static. Candidates kept by `"top_k"`.
        banned_ids: tuple of int, static. Token ids never chosen (e.g.
            `[PAD]`, `[CLS]`, `[MASK]`).

    Returns:
        int32 tensor `(batch,)`.
    """
    logits = tf.cast(logits, tf.float32)
    if strategy != "greedy":
        logits = logits / tf.cast(temperature, tf.float32)
    if banned_ids:
        banned = tf.scatter_nd(
            tf.constant([[i] for i in banned_ids], tf.int32),
            tf.ones([len(banned_ids)], tf.bool),
            [logits.shape[-1]],
        )
        logits = tf.where(banned[None, :], tf.float32.min, logits)
    if strategy == "greedy":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    if strategy == "top_k":
        kth = tf.math.top_k(logits, k=int(top_k)).values[:, -1:]  # (batch, 1)
        logits = tf.where(logits < kth, tf.float32.min, logits)
    elif strategy != "temperature":
        check_sampling_args(strategy, 1.0, 1)
    # Gumbel-max: argmax(logits + g) ~ softmax(logits). Masked logits sit at
    # float32.min, which no Gumbel draw (bounded by ~46) can lift.
    noise = gumbel_noise(tf.shape(logits), seed)
    return tf.argmax(logits + noise, axis=-1, output_type=tf.int32)
