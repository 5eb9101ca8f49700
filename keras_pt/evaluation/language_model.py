"""Language-model evaluation: held-out perplexity of a causal LM, and the
unigram perplexity of next-token targets (the context-free baseline)."""

import math

import numpy as np
import tensorflow as tf

from keras_pt.special_tokens import CLS_ID, MASK_ID, PAD_ID

# Ids that are never a next-token target of a packed text.
NON_TARGET_IDS = (PAD_ID, CLS_ID, MASK_ID)


def next_token_counts(dataset, vocabulary_size):
    """Counts of each token id as a next-token target in packed batches.

    Targets are `token_ids[:, 1:]` where `padding_mask[:, 1:]` is 1 (as in
    `MiniGPT`'s loss): every real token after the first, `[SEP]` included.

    Args:
        dataset: iterable of packed dicts (`token_ids`, `padding_mask`),
            batched, e.g. from `keras_pt.data.preprocess_text_dataset`.
        vocabulary_size: int.

    Returns:
        int64 array `(vocabulary_size,)`.
    """
    counts = np.zeros(int(vocabulary_size), np.int64)
    for batch in dataset:
        if isinstance(batch, tuple):
            batch = batch[0]
        ids = np.asarray(batch["token_ids"])[:, 1:]
        mask = np.asarray(batch["padding_mask"])[:, 1:].astype(bool)
        counts += np.bincount(ids[mask].ravel(), minlength=len(counts))[: len(counts)]
    return counts


def unigram_perplexity(train_counts, test_counts, smoothing=1.0):
    """Perplexity on test targets of the add-`smoothing` unigram model of train targets.

    `p(t) = (train_count(t) + smoothing) / (Σ train_count + smoothing · V')`
    over the `V'` ids that can be targets (all but `[PAD]`, `[CLS]`,
    `[MASK]`); the perplexity is `exp(−Σ test_count(t) · log p(t) / Σ
    test_count)`. It is the best a model that ignores context can do (up to
    smoothing), so a language model must beat it to have learned anything
    from the context.

    Args:
        train_counts: array `(vocabulary_size,)` from `next_token_counts`.
        test_counts: array `(vocabulary_size,)`.
        smoothing: float >= 0. Added to every count. Defaults to 1.0.

    Returns:
        float.

    Example:

    >>> train = np.array([0, 0, 0, 1, 0, 3])  # ids 3 and 5 seen
    >>> round(unigram_perplexity(train, np.array([0, 0, 0, 1, 0, 1]), 0.0), 4)
    2.3094
    """
    train_counts = np.asarray(train_counts, np.float64)
    test_counts = np.asarray(test_counts, np.float64)
    if train_counts.shape != test_counts.shape or train_counts.ndim != 1:
        raise ValueError(
            f"train and test counts must be 1-D arrays of the same length; got "
            f"{train_counts.shape} and {test_counts.shape}."
        )
    if test_counts.sum() <= 0:
        raise ValueError("test_counts is empty: there is no target to score.")
    allowed = np.ones_like(train_counts, bool)
    allowed[[i for i in NON_TARGET_IDS if i < len(allowed)]] = False
    smoothed = np.where(allowed, train_counts + smoothing, 0.0)
    probabilities = smoothed / smoothed.sum()
    seen = test_counts > 0
    if np.any(probabilities[seen] == 0):
        raise ValueError("a test target has probability 0 under the unigram model; use smoothing > 0.")
    log_likelihood = np.sum(test_counts[seen] * np.log(probabilities[seen]))
    return float(np.exp(-log_likelihood / test_counts.sum()))


def perplexity(model, dataset):
    """Held-out perplexity of a causal LM (`MiniGPT`): exp of the mean
    next-token cross-entropy over every real target token of `dataset`.

    Computed from `model.token_losses` in a `tf.function` outside any
    replica context, so every worker of every strategy gets the same value
    with no cross-replica traffic (Keras's `evaluate` fails under
    `MultiWorkerMirroredStrategy`).

    Args:
        model: a model with `token_losses(packed) -> (losses, weights)`.
        dataset: batched `tf.data.Dataset` of packed dicts (or `(packed, ...)`).

    Returns:
        float.
    """
    losses_of = tf.function(
        lambda packed: model.token_losses(model.pack(packed), training=False), reduce_retracing=True
    )
    total = count = 0.0
    for batch in dataset:
        losses, weights = losses_of(batch[0] if isinstance(batch, tuple) else batch)
        total += float(tf.reduce_sum(losses * weights))
        count += float(tf.reduce_sum(weights))
    if count == 0:
        raise ValueError("the data set holds no next-token targets to score.")
    return math.exp(total / count)
