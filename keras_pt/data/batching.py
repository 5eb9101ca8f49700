"""One batching primitive: shuffle, repeat, static batches, map, prefetch.

Every batched input pipeline of `keras_pt.data` (images, texts, sentence
pairs) goes through `batch`; `epoch_batches` shares its size check.
"""

import tensorflow as tf


def check_batchable(dataset, batch_size, noun="examples", count_unknown=True):
    """The number of elements of `dataset` (None when unknown or infinite),
    after checking that it fills at least one static batch.

    Args:
        dataset: unbatched `tf.data.Dataset`.
        batch_size: int. The global batch size.
        noun: str. What an element is, for error messages. Defaults to
            `"examples"`.
        count_unknown: bool. Where the size is unknown (a filtered data
            set), count up to `batch_size` elements. Defaults to True.

    Raises:
        ValueError: for a non-positive batch size, or a data set that is
            empty or smaller than one batch.
    """
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    n = int(dataset.cardinality())
    if n == tf.data.UNKNOWN_CARDINALITY and count_unknown:
        head = int(dataset.take(batch_size).reduce(0, lambda count, *_: count + 1))
        n = None if head == batch_size else head
    elif n < 0:  # unknown (not counted) or infinite
        n = None
    if n == 0:
        raise ValueError("the data set is empty: there is nothing to train on.")
    if n is not None and n < batch_size:
        raise ValueError(
            f"the data set has {n} {noun}, fewer than batch_size={batch_size}, "
            "so drop_remainder would leave no batch; lower the batch size."
        )
    return n


def batch(
    dataset,
    batch_size,
    shuffle_seed=None,
    repeat=False,
    shuffle_buffer_size=None,
    map_fn=None,
    noun="examples",
):
    """Batches with `drop_remainder=True` (static shapes), then prefetches.

    Args:
        dataset: unbatched `tf.data.Dataset`.
        batch_size: int. The global batch size.
        shuffle_seed: int or None. Shuffle with this seed each epoch (the
            same order for the same seed). Defaults to None (no shuffle).
        repeat: bool. Repeat forever. Defaults to False.
        shuffle_buffer_size: int or None. Defaults to the data set size
            (10,000 when unknown).
        map_fn: callable or None. Mapped over the batches (e.g. a text
            preprocessor). Defaults to None.
        noun: str. What an element is, for error messages. Defaults to
            `"examples"`.

    Returns:
        A batched, prefetched `tf.data.Dataset`.

    Raises:
        ValueError: if the data set is empty or smaller than one batch.
    """
    n = check_batchable(dataset, batch_size, noun)
    if shuffle_seed is not None:
        buffer = shuffle_buffer_size or n or 10_000
        dataset = dataset.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if map_fn is not None:
        dataset = dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
