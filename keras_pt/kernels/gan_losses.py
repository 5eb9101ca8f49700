"""Adversarial losses for the discriminator and generator phases.

Each function maps logits (the discriminator's unbounded scores, shape
`(batch,)` or `(batch, 1)`) to a scalar mean over this replica's batch.

Loss names:
    non_saturating: the minimax objective in its practical form (Goodfellow
        et al., 2014): the discriminator minimises the logistic loss
        `softplus(-D(x)) + softplus(D(G(z)))`, the generator minimises
        `softplus(-D(G(z)))` instead of `-softplus(D(G(z)))`.
    hinge: `relu(1 - D(x)) + relu(1 + D(G(z)))` for the discriminator,
        `-D(G(z))` for the generator (Lim & Ye, 2017; SAGAN).
    wasserstein: `D(G(z)) - D(x)` for the critic, `-D(G(z))` for the
        generator (Arjovsky et al., 2017); pair it with a gradient penalty.
"""

import tensorflow as tf

LOSS_NAMES = ("non_saturating", "hinge", "wasserstein")


def check_loss_name(loss):
    """Returns `loss` if it names a GAN loss, else raises a clear ValueError."""
    if loss not in LOSS_NAMES:
        raise ValueError(f"unknown GAN loss {loss!r}; choose one of {', '.join(LOSS_NAMES)}.")
    return loss


def _flat(logits):
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


@tf.function(jit_compile=True, autograph=False)
def _d_non_saturating(real_logits, fake_logits):
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits))


@tf.function(jit_compile=True, autograph=False)
def _d_hinge(real_logits, fake_logits):
    return tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))


@tf.function(jit_compile=True, autograph=False)
def _d_wasserstein(real_logits, fake_logits):
    return tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)


@tf.function(jit_compile=True, autograph=False)
def _g_non_saturating(fake_logits):
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


@tf.function(jit_compile=True, autograph=False)
def _g_linear(fake_logits):
    return -tf.reduce_mean(fake_logits)


_D_LOSSES = {
    "non_saturating": _d_non_saturating,
    "hinge": _d_hinge,
    "wasserstein": _d_wasserstein,
}
_G_LOSSES = {
    "non_saturating": _g_non_saturating,
    "hinge": _g_linear,
    "wasserstein": _g_linear,
}


def discriminator_loss(real_logits, fake_logits, loss="non_saturating"):
    """Mean discriminator loss of a batch of real and a batch of fake logits.

    Args:
        real_logits: float tensor `(batch,)` or `(batch, 1)`. D on real data.
        fake_logits: float tensor `(batch,)` or `(batch, 1)`. D on samples.
        loss: str. One of `LOSS_NAMES`. Defaults to `"non_saturating"`.

    Returns:
        A float32 scalar.
    """
    check_loss_name(loss)
    return _D_LOSSES[loss](_flat(real_logits), _flat(fake_logits))


def generator_loss(fake_logits, loss="non_saturating"):
    """Mean generator loss of a batch of fake logits (see module docstring)."""
    check_loss_name(loss)
    return _G_LOSSES[loss](_flat(fake_logits))
