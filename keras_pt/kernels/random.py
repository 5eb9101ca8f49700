"""Replica-consistent random draws for train steps.

Under a strategy with N replicas each replica sees a 1/N slice of the global
batch. Drawing `shape` values per replica from the same seed would give every
replica the same noise, and different noise from a one-device run on the
whole batch. These helpers draw for the *global* batch and return this
replica's slice, so that noise, masks and latent vectors are the same
whatever the number of replicas: one device and N replicas train alike.

All helpers are stateless: `seed` is a shape-(2,) integer tensor.

Independent streams. `keras.random.SeedGenerator.next()` returns its state
`[s, c]` and advances it to `[s, c + 1]`, so a seed derived from a drawn
one by adding a constant (`seed + [0, 1]`) *is* a later call's seed: the
two draws would repeat each other from one call to the next. Every draw in
the package therefore takes its seed from `split` (or `draw_seeds`), which
hashes the drawn seed into as many unrelated seeds as the call has draws
(`tf.random.experimental.stateless_split`, a counter-based Philox draw,
keyed also by each draw's name):
no derived seed equals a generator state or another derived seed, except
with probability about 2⁻⁶⁴ per pair. The split is a pure function of the
drawn seed, so one device and N replicas still draw the same values.
"""

import contextlib
import zlib

import tensorflow as tf

from keras_pt import distribute

# Seeds split in eager mode are appended here while `record_seeds` is active.
_tape = None


@contextlib.contextmanager
def record_seeds():
    """Records the seed of every draw split while the context is active.

    Yields a list that fills with `(name, seed)` pairs, `seed` a NumPy
    `(2,)` array, one per draw, in the order the draws were made. Only
    eager execution records (a traced function sees symbolic seeds): run a
    model's `call` eagerly, or compile it with `run_eagerly=True`, to list
    every seed its steps use. Used by the tests to check that no two draws
    share a seed.
    """
    global _tape
    previous, _tape = _tape, []
    try:
        yield _tape
    finally:
        _tape = previous


def split(seed, names):
    """One independent shape-(2,) int32 seed per name in `names`.

    Args:
        seed: shape-(2,) integer seed, e.g. `SeedGenerator.next()`.
        names: sequence of str, one per draw (what each seed is for; the
            names label the seeds in `record_seeds`).

    Returns:
        A tuple of `len(names)` shape-(2,) int32 tensors.
    """
    names = tuple(names)
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=len(names))
    # Each name's seed is also keyed by the name, so that two generators in
    # the same state (two layers given equal seeds) still give different
    # seeds to draws made for different purposes.
    salts = tf.constant([[_name_salt(name), 0] for name in names], tf.int32)
    seeds = tuple(tf.unstack(tf.bitwise.bitwise_xor(seeds, salts)))
    if _tape is not None and tf.executing_eagerly():
        _tape.extend((name, s.numpy()) for name, s in zip(names, seeds))
    return seeds


def _name_salt(name):
    """A fixed int32 from a draw's name (CRC-32, stable across processes)."""
    value = zlib.crc32(name.encode("utf-8"))
    return value - 2**32 if value >= 2**31 else value


def draw_seeds(seed_generator, names):
    """`split(seed_generator.next(), names)`: fresh seeds for one call."""
    return split(seed_generator.next(), names)


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
        return tf.random.stateless_uniform(shape, seed=seed, minval=0, maxval=maxval, dtype=dtype)

    return _global_draw(draw, seed, local_shape, dtype)
