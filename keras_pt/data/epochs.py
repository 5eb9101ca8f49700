"""Epoch pipelines whose order is a pure function of (seed, epoch).

`keras_pt.training.train` asks a data set function for the batches of one
epoch at a time; when it resumes at step `s` it asks for epoch
`s // steps_per_epoch` again and skips the batches already trained on. That
is exact only if the same `(seed, epoch)` always gives the same batches in
the same order, which `epoch_batches` guarantees: it shuffles with a seed
derived from `(seed, epoch)` and never reshuffles on re-iteration.
"""

import numpy as np
import tensorflow as tf

from keras_pt.data.batching import check_batchable


def epoch_seed(seed, epoch):
    """A 31-bit shuffle seed derived from `(seed, epoch)`, the same everywhere."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]
    return int(state & 0x7FFFFFFF)


def epoch_batches(dataset, batch_size, seed, epoch, shuffle=True, buffer_size=None, passes=1):
    """The batches of one epoch, shuffled by `(seed, epoch)`, static shapes.

    The order depends only on `(seed, epoch)` and TensorFlow's global seed,
    which `keras_pt.training.train` sets to its `seed` before it asks for
    data. Batches use `drop_remainder=True`, so every batch has exactly
    `batch_size` examples (static shapes for XLA and TPUs).

    Args:
        dataset: unbatched `tf.data.Dataset`.
        batch_size: int. The global batch size.
        seed: int. Seed of the run.
        epoch: int. Epoch number (0-based).
        shuffle: bool. Shuffle the examples. Defaults to True.
        buffer_size: int or None. Shuffle buffer. Defaults to the whole data
            set when its size is known, else 10,000.
        passes: int. Passes over `dataset` in one epoch, each shuffled
            with its own seed (for small data sets, so that an epoch is not
            just a few steps). Defaults to 1.

    Returns:
        A batched, prefetched `tf.data.Dataset`.

    Raises:
        ValueError: for a non-positive batch size or a data set with fewer
            examples than one batch.

    Example:

    >>> ds = tf.data.Dataset.range(10)
    >>> [b.tolist() for b in epoch_batches(ds, 4, seed=0, epoch=0).as_numpy_iterator()] == \\
    ...     [b.tolist() for b in epoch_batches(ds, 4, seed=0, epoch=0).as_numpy_iterator()]
    True
    """
    n = check_batchable(dataset, batch_size, count_unknown=False)
    if int(passes) < 1:
        raise ValueError(f"passes must be at least 1, got {passes}.")
    buffer_size = buffer_size or n or 10_000
    base = epoch_seed(seed, epoch)

    def one_pass(index):
        if not shuffle:
            return dataset
        # Never reshuffled on re-iteration (Keras may iterate a data set
        # once to build the model before training on it).
        return dataset.shuffle(
            buffer_size,
            seed=(base + index * 1_000_003) % 0x7FFFFFFF,
            reshuffle_each_iteration=False,
        )

    epoch_data = one_pass(0)
    for index in range(1, int(passes)):
        epoch_data = epoch_data.concatenate(one_pass(index))
    return epoch_data.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def count_examples(dataset):
    """Examples in an unbatched data set: its cardinality where known,
    else one pass (filtered data sets have no known length)."""
    n = int(dataset.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError("the data set repeats forever; count it before .repeat().")
    if n < 0:
        n = int(dataset.reduce(0, lambda count, *_: count + 1))
    return n
