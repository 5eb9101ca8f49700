"""Counter-based dropout masks: cheap under XLA, the same on 1 or N replicas.

Standard dropout draws a Philox uniform per element. XLA on CPU lowers that
random generator to slow scalar code (about a second per 2M values here),
which would dominate a transformer step. These kernels instead hash each
element's global index with a key derived from the seed — two rounds of
the `lowbias32` integer hash (C. Wellons' hash-prospector), keyed by two
32-bit words from the seed — and keep the element when the 32-bit hash is
at least `round(rate · 2³²)`. That is Bernoulli dropout with keep
probability `1 - rate` (to 2⁻³²), a handful of fused integer ops per
element under XLA, and counter-based: the mask of element `i` depends only
on `(seed, i)`.

Replica consistency for free: replica `r` of `N` holds rows `[r·b, (r+1)·b)`
of the global batch, so it hashes indices offset by `r · size(local x)`;
one device and N replicas with the same seed drop exactly the same
elements of the global batch (the batch must be the leading axis).
"""

import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels.xla import xla_kernel

_GOLDEN = 0x9E3779B9


def _u32(value):
    return tf.constant(value, tf.uint32)


def lowbias32(x):
    """A 32-bit integer hash with strong avalanche (uint32 in, uint32 out)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))
    x = x * _u32(0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(15)))
    x = x * _u32(0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))


def hash_bits(counter, seed):
    """uint32 hash bits of int32 `counter` values under a shape-(2,) seed."""
    seed = tf.bitcast(tf.cast(seed, tf.int32), tf.uint32)
    key0 = lowbias32(tf.bitwise.bitwise_xor(seed[0], _u32(_GOLDEN)))
    key1 = lowbias32(seed[1] + key0)
    counter = tf.bitcast(tf.cast(counter, tf.int32), tf.uint32)
    return lowbias32(lowbias32(tf.bitwise.bitwise_xor(counter, key0)) + key1)


def random_bits(shape, seed, offset=0):
    """uint32 hash bits for the elements of `shape`, counter `offset + i`.

    Args:
        shape: list of ints, or an int32 shape tensor.
        seed: shape-(2,) int seed.
        offset: int scalar added to the flat element index (replica offset).
    """
    size = tf.reduce_prod(shape) if isinstance(shape, tf.Tensor) else _num_elements(shape)
    counter = tf.range(size, dtype=tf.int32) + tf.cast(offset, tf.int32)
    return tf.reshape(hash_bits(counter, seed), shape)


def _num_elements(shape):
    size = 1
    for d in shape:
        size *= int(d)
    return size


def keep_threshold(rate):
    """The uint32 threshold: keep an element when its bits are >= it."""
    return min(int(round(float(rate) * 2**32)), 2**32 - 1)


def _dropout_scale(shape, rate, seed, offset):
    """`1/(1-rate)` where an element is kept, 0 where dropped, float32.

    Args:
        shape: static shape (tuple of ints; the XLA kernel) or an int32
            shape tensor (`_dropout_scale`, for dynamic shapes).
        rate: Python float in [0, 1) (static).
        seed: shape-(2,) int seed.
        offset: int32 scalar, the flat index of this replica's first element.
    """
    keep = random_bits(shape, seed, offset) >= _u32(keep_threshold(rate))
    return tf.where(keep, tf.constant(1.0 / (1.0 - rate), tf.float32), 0.0)


dropout_scale = xla_kernel(_dropout_scale)


def dropout_scale_at(counter, rate, seed):
    """Like `_dropout_scale`, for explicit int32 element indices `counter`:
    the mask a sub-tensor gets when it must equal the matching elements of
    the full tensor's mask."""
    keep = hash_bits(counter, seed) >= _u32(keep_threshold(rate))
    return tf.where(keep, tf.constant(1.0 / (1.0 - rate), tf.float32), 0.0)


def dropout(x, rate, seed):
    """Inverted dropout of `x` (batch leading), replica-consistent.

    Args:
        x: float tensor with a static shape, this replica's slice of the
            global batch along axis 0.
        rate: Python float in [0, 1).
        seed: shape-(2,) int seed, e.g. `SeedGenerator.next()`.
    """
    if not rate:
        return x
    if x.shape.is_fully_defined():
        shape = tuple(x.shape.as_list())
        offset = tf.cast(distribute.replica_id(), tf.int32) * x.shape.num_elements()
        scale = dropout_scale(shape, float(rate), seed, offset)
    else:  # a dynamic shape (graph mode only; train steps have static shapes)
        shape = tf.shape(x)
        offset = tf.cast(distribute.replica_id(), tf.int32) * tf.size(x)
        scale = _dropout_scale(shape, float(rate), seed, offset)
    return x * tf.cast(scale, x.dtype)
