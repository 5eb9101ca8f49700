"""Retrieval evaluation of sentence embeddings: find each query's partner."""

import numpy as np


def _normalize(x):
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {x.shape}.")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval_accuracy(queries, candidates, num_candidates=None, seed=0):
    """Top-1 accuracy of finding each query's partner among N candidates.

    Query `i`'s partner is `candidates[i]`. The pairs are shuffled (with
    `seed`) into groups of `num_candidates`; within a group each query ranks
    the group's candidates by cosine similarity and is right when its own
    partner comes first. Chance is `1 / num_candidates`. Pairs left over
    after the last full group are not scored.

    Args:
        queries: array `(n, dim)`.
        candidates: array `(n, dim)`, row `i` the partner of query `i`.
        num_candidates: int or None. Group size N (>= 2). Defaults to all
            `n` pairs in one group.
        seed: int. Seed of the grouping. Defaults to 0.

    Returns:
        float, the fraction of scored queries whose partner ranks first.

    Raises:
        ValueError: for mismatched shapes, or fewer pairs than one group.

    Example:

    >>> q = np.eye(4)
    >>> retrieval_accuracy(q, q + 0.1, num_candidates=2)
    1.0
    """
    queries, candidates = _normalize(queries), _normalize(candidates)
    if queries.shape != candidates.shape:
        raise ValueError(
            f"queries {queries.shape} and candidates {candidates.shape} must have "
            "the same shape: candidate i is the partner of query i."
        )
    n = len(queries)
    num_candidates = n if num_candidates is None else int(num_candidates)
    if num_candidates < 2 or num_candidates > n:
        raise ValueError(f"num_candidates must lie in [2, {n}] (the number of pairs); got {num_candidates}.")
    order = np.random.RandomState(seed).permutation(n)
    groups = order[: n - n % num_candidates].reshape(-1, num_candidates)
    correct = 0
    for group in groups:
        scores = queries[group] @ candidates[group].T  # (N, N)
        correct += int(np.sum(np.argmax(scores, axis=1) == np.arange(num_candidates)))
    return correct / groups.size
