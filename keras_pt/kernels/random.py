"""Replica-consistent random draws for train steps.

Under a strategy with N replicas each replica sees a 1/N slice of the global
batch. Drawing `shape` values per replica from the same seed would give every
replica the same noise, and different noise from a one-device run on the
whole batch. These helpers draw for the *global* batch and return this
replica's slice, so that noise, masks and latent vectors are the same
whatever the number of replicas: one device and N replicas train alike.

All helpers are stateless: `seed` is a shape-(2,) integer tensor, e.g. from
`keras.random.SeedGenerator.next()`.
"""

import tensorflow as tf

from keras_pt import distribute


def _as_seed(seed):
    return tf.cast(seed, tf.int32)


def _global_draw(draw, seed, local_shape, dtype):
    local_shape = list(local_shape)
    n = distribute.num_replicas()
    if n == 1:
        return draw(local_shape, seed=_as_seed(seed), dtype=dtype)
    local_batch = local_shape[0]
    values = draw([local_batch * n] + local_shape[1:], seed=_as_seed(seed), dtype=dtype)
    start = distribute.replica_id() * local_batch
    return values[start : start + local_batch]


def uniform(seed, local_shape, dtype=tf.float32):
    """U[0, 1) values for this replica's `local_shape` slice of the batch."""
    return _global_draw(tf.random.stateless_uniform, seed, local_shape, dtype)


def normal(seed, local_shape, dtype=tf.float32):
    """N(0, 1) values for this replica's `local_shape` slice of the batch."""
    return _global_draw(tf.random.stateless_normal, seed, local_shape, dtype)


def uniform_int(seed, local_shape, maxval, dtype=tf.int32):
    """Integers in [0, maxval) for this replica's slice of the batch."""

    def draw(shape, seed, dtype):
        return tf.random.stateless_uniform(
            shape, seed=seed, minval=0, maxval=maxval, dtype=dtype
        )

    return _global_draw(draw, seed, local_shape, dtype)
