"""WGAN-GP gradient penalty (Gulrajani et al., 2017).

`E[(||grad_x D(x_hat)||_2 - 1)^2]` at `x_hat = alpha * real + (1 - alpha) *
fake`, one interpolation weight `alpha ~ U[0, 1]` per example. The weights are
an argument so that the caller draws them from its own seed (see
`keras_pt.kernels.random.uniform`), which keeps one device and N replicas
identical.

References:
    Gulrajani et al., "Improved Training of Wasserstein GANs", 2017.
"""

import tensorflow as tf

# Keeps the norm differentiable where the critic's input gradient is zero.
_EPSILON = 1e-12


def interpolate(real, fake, alpha):
    """`alpha * real + (1 - alpha) * fake`, `alpha` broadcast per example."""
    alpha = tf.reshape(tf.cast(alpha, real.dtype), [-1] + [1] * (real.shape.rank - 1))
    return alpha * real + (1.0 - alpha) * fake


def _gradient_penalty(critic, real, fake, alpha, target_norm):
    x_hat = interpolate(real, fake, alpha)  # (batch, ...)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat)  # (batch, 1)
    grads = tape.gradient(scores, x_hat)  # (batch, ...)
    axes = list(range(1, grads.shape.rank))
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + _EPSILON)  # (batch,)
    return tf.reduce_mean(tf.square(norms - target_norm))


def gradient_penalty(critic, real, fake, alpha, target_norm=1.0, jit_compile=True):
    """Mean squared deviation of the critic's input-gradient norm from 1.

    Differentiable with respect to the critic's weights (the penalty's
    gradient is a second derivative), so it can be added to the critic loss.

    Args:
        critic: callable mapping a batch shaped like `real` to scores
            `(batch, 1)` or `(batch,)`. Its scores must be independent per
            example (no batch statistics), as WGAN-GP requires.
        real: float tensor `(batch, ...)`. Real data.
        fake: float tensor `(batch, ...)`. Generated data, same shape.
        alpha: float tensor `(batch,)` or `(batch, 1)`. Interpolation weights
            in [0, 1].
        target_norm: float. The gradient norm the penalty pulls towards.
            Defaults to 1.0.
        jit_compile: bool. Run as one XLA-compiled function. Defaults to True.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> w = tf.constant([[3.0], [4.0]])
    >>> critic = lambda x: tf.matmul(x, w)  # gradient norm 5 everywhere
    >>> x = tf.constant(np.zeros((4, 2), "float32"))
    >>> float(gradient_penalty(critic, x, x + 1.0, tf.fill([4], 0.5)))
    16.0
    """
    if real.shape.rank is not None and fake.shape.rank is not None:
        if real.shape.as_list()[1:] != fake.shape.as_list()[1:]:
            raise ValueError(
                f"gradient_penalty needs real and fake batches of the same shape; got {real.shape} and {fake.shape}."
            )
    if jit_compile:
        # A fresh tf.function per call: a shared one would cache traces keyed
        # on the critic callable, and a new callable can reuse a freed one's
        # id and hit a trace that captured another model's weights. Inside a
        # train step this traces once per step trace.
        return tf.function(_gradient_penalty, jit_compile=True, autograph=False)(
            critic, real, fake, alpha, float(target_norm)
        )
    return _gradient_penalty(critic, real, fake, alpha, float(target_norm))
