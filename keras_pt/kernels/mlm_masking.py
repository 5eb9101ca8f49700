"""Dynamic masking for masked-LM pre-training (BERT's 80/10/10 recipe).

Selection scheme (as in BERT's `create_pretraining_data.py`): a sequence
with `n` candidate tokens — real (padding mask 1) and not special (id >=
`NUM_SPECIAL_TOKENS`) — gets exactly `k = min(max_predictions, max(1,
round(mask_selection_rate · n)))` positions selected (`k = 0` when `n = 0`),
uniformly at random among its candidates (the `k` largest of i.i.d. uniform
scores). Each selected position is then, independently, replaced by
`[MASK]` with probability `mask_token_rate`, by a uniformly random ordinary
token (ids in `[NUM_SPECIAL_TOKENS, vocabulary_size)`, possibly the original
one, as in BERT) with probability `random_token_rate`, and kept otherwise.

A fixed count per sequence, rather than an independent coin per token,
makes the number of predictions a function of the data alone: the selected
positions fit into a static `(batch, max_predictions)` gather with nothing
dropped, where `max_predictions = ceil(rate · seq_len)` by default, and the
global number of predictions is known without depending on the draws.

`apply_mlm_mask` is the pure, `jit_compile=True` kernel (given the random
draws it is deterministic, so it is tested against a NumPy reference);
`mask_tokens` draws through `keras_pt.kernels.random`, so one device and N
replicas with the same seed mask the global batch identically.
"""

import math

import tensorflow as tf

from keras_pt.kernels import random
from keras_pt.kernels.xla import xla_kernel
from keras_pt.special_tokens import MASK_ID, NUM_SPECIAL_TOKENS


def default_max_predictions(sequence_length, mask_selection_rate=0.15):
    """`ceil(rate · sequence_length)`: enough slots for every selection.

    `round(rate · n) <= ceil(rate · L)` for the `n <= L` candidates of any
    sequence, so no selected position is ever dropped.
    """
    # Round first so that 0.15 · 20 = 3.0000000000000004 gives 3, not 4.
    return max(1, min(int(sequence_length), math.ceil(round(mask_selection_rate * sequence_length, 6))))


def check_rates(mask_selection_rate, mask_token_rate, random_token_rate):
    """Raises a ValueError for rates outside their ranges."""
    if not 0.0 < float(mask_selection_rate) <= 1.0:
        raise ValueError(f"mask_selection_rate must lie in (0, 1]; got {mask_selection_rate}.")
    if float(mask_token_rate) < 0 or float(random_token_rate) < 0:
        raise ValueError(
            f"mask_token_rate ({mask_token_rate}) and random_token_rate ({random_token_rate}) must be >= 0."
        )
    if float(mask_token_rate) + float(random_token_rate) > 1.0 + 1e-9:
        raise ValueError(
            f"mask_token_rate + random_token_rate must be <= 1; got {mask_token_rate} + {random_token_rate}."
        )


@xla_kernel
def apply_mlm_mask(
    token_ids,
    padding_mask,
    selection_scores,
    action_draws,
    random_tokens,
    mask_selection_rate,
    mask_token_rate,
    random_token_rate,
    max_predictions,
):
    """Masks a batch given the random draws (pure and deterministic).

    Args:
        token_ids: int32 `(batch, seq_len)`.
        padding_mask: `(batch, seq_len)`, nonzero/True for real tokens.
        selection_scores: float `(batch, seq_len)` U[0, 1) draws; the
            candidates with the largest scores are selected.
        action_draws: float `(batch, seq_len)` U[0, 1) draws choosing
            `[MASK]` (`< mask_token_rate`), random token (`< mask_token_rate
            + random_token_rate`) or keep, per position.
        random_tokens: int32 `(batch, seq_len)` replacement ids in
            `[NUM_SPECIAL_TOKENS, vocabulary_size)`.
        mask_selection_rate, mask_token_rate, random_token_rate: Python
            floats (static).
        max_predictions: Python int (static), slots per sequence.

    Returns:
        A dict of tensors:
        `token_ids` int32 `(batch, seq_len)`: the masked ids;
        `labels` int32 `(batch, seq_len)`: the original ids;
        `weights` float32 `(batch, seq_len)`: 1.0 at selected positions;
        `mask_positions` int32 `(batch, max_predictions)`: the selected
        positions (by decreasing score), 0 in unused slots;
        `mask_labels` int32 `(batch, max_predictions)`: original ids there;
        `mask_weights` float32 `(batch, max_predictions)`: 1.0 for used slots.
    """
    token_ids = tf.cast(token_ids, tf.int32)
    seq_len = token_ids.shape[1]
    candidates = tf.logical_and(token_ids >= NUM_SPECIAL_TOKENS, tf.cast(padding_mask, tf.bool))  # (batch, seq)
    num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32), axis=1)  # (batch,)
    count = tf.cast(tf.floor(tf.cast(num_candidates, tf.float32) * mask_selection_rate + 0.5), tf.int32)
    count = tf.minimum(tf.maximum(count, tf.minimum(num_candidates, 1)), max_predictions)

    # The `count` candidates with the largest scores (non-candidates score -1).
    scores = tf.where(candidates, tf.cast(selection_scores, tf.float32), -1.0)
    _, top_positions = tf.math.top_k(scores, k=max_predictions)  # (batch, P)
    slot_used = tf.range(max_predictions)[None, :] < count[:, None]  # (batch, P)
    mask_weights = tf.cast(slot_used, tf.float32)
    mask_positions = tf.where(slot_used, top_positions, 0)
    selected = tf.reduce_sum(
        tf.one_hot(top_positions, seq_len, dtype=tf.float32) * mask_weights[:, :, None],
        axis=1,
    )  # (batch, seq): 1.0 at selected positions

    # 80% [MASK], 10% random ordinary token, 10% unchanged.
    is_selected = selected > 0.5
    use_mask = tf.logical_and(is_selected, action_draws < mask_token_rate)
    use_random = tf.logical_and(
        is_selected,
        tf.logical_and(
            action_draws >= mask_token_rate,
            action_draws < mask_token_rate + random_token_rate,
        ),
    )
    masked = tf.where(use_mask, MASK_ID, token_ids)
    masked = tf.where(use_random, tf.cast(random_tokens, tf.int32), masked)
    return {
        "token_ids": masked,
        "labels": token_ids,
        "weights": selected,
        "mask_positions": mask_positions,
        "mask_labels": tf.gather(token_ids, mask_positions, batch_dims=1),
        "mask_weights": mask_weights,
    }


def mask_tokens(
    token_ids,
    padding_mask,
    seed,
    vocabulary_size,
    mask_selection_rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    max_predictions=None,
):
    """Dynamic MLM masking of this replica's batch (see the module doc).

    Draws for the global batch and slices this replica's part, so that one
    device and N replicas with the same `seed` mask the same global batch
    identically. The sequence length must be static; the batch size may be
    dynamic (a last partial batch), though TPUs need it static.

    Args:
        token_ids: int `(batch, seq_len)` with a static `seq_len`.
        padding_mask: `(batch, seq_len)` int or bool, 1/True for real
            tokens, or None (all real).
        seed: shape-(2,) int seed, e.g. `SeedGenerator.next()`.
        vocabulary_size: int. Random replacement ids are drawn from
            `[NUM_SPECIAL_TOKENS, vocabulary_size)`.
        mask_selection_rate: float. Fraction of candidate tokens selected.
            Defaults to 0.15.
        mask_token_rate: float. Fraction of selected tokens replaced by
            `[MASK]`. Defaults to 0.8.
        random_token_rate: float. Fraction replaced by a random token.
            Defaults to 0.1.
        max_predictions: int or None. Prediction slots per sequence.
            Defaults to `default_max_predictions(seq_len, rate)`.

    Returns:
        The dict of `apply_mlm_mask`.

    Example:

    >>> ids = tf.constant([[2] + list(range(10, 40)) + [3]])
    >>> out = mask_tokens(ids, None, tf.constant([1, 2]), vocabulary_size=100)
    >>> int(tf.reduce_sum(out["weights"]))  # round(0.15 · 30 candidates)
    5
    """
    check_rates(mask_selection_rate, mask_token_rate, random_token_rate)
    if int(vocabulary_size) <= NUM_SPECIAL_TOKENS:
        raise ValueError(f"vocabulary_size must exceed the {NUM_SPECIAL_TOKENS} special tokens; got {vocabulary_size}.")
    token_ids = tf.cast(token_ids, tf.int32)
    shape = token_ids.shape
    if shape.rank != 2 or shape[1] is None:
        raise ValueError(
            f"token_ids must have shape (batch, seq_len) with a static seq_len; "
            f"got {shape}. Pad every sequence to a fixed length."
        )
    seq_len = shape[1]
    if max_predictions is None:
        max_predictions = default_max_predictions(seq_len, mask_selection_rate)
    max_predictions = int(max_predictions)
    if not 1 <= max_predictions <= seq_len:
        raise ValueError(
            f"max_predictions must lie in [1, {seq_len}] for sequences of length {seq_len}; got {max_predictions}."
        )
    if padding_mask is None:
        padding_mask = tf.ones_like(token_ids)
    selection_seed, action_seed, replacement_seed = random.split(
        seed, ("mlm_selection", "mlm_action", "mlm_replacement")
    )
    # A dynamic batch size (e.g. a last partial batch) is drawn for as a tensor.
    shape = [shape[0] if shape[0] is not None else tf.shape(token_ids)[0], seq_len]
    selection_scores = random.uniform(selection_seed, shape)
    action_draws = random.uniform(action_seed, shape)
    random_tokens = NUM_SPECIAL_TOKENS + random.uniform_int(
        replacement_seed, shape, int(vocabulary_size) - NUM_SPECIAL_TOKENS
    )
    return apply_mlm_mask(
        token_ids,
        padding_mask,
        selection_scores,
        action_draws,
        random_tokens,
        float(mask_selection_rate),
        float(mask_token_rate),
        float(random_token_rate),
        max_predictions,
    )
