"""Exact cosine nearest-neighbour search over a small index of embeddings."""

import numpy as np


class NearestNeighborIndex:
    """Brute-force cosine-similarity search over stored embeddings.

    Embeddings are L2-normalised when stored and when queried, so the
    score is the cosine similarity. Exact and simple: one matrix product per
    query batch, which suits indexes up to a few hundred thousand rows.

    Args:
        embeddings: array `(n, dim)`.
        items: sequence of length `n` or None. What each row stands for
            (e.g. the indexed texts), returned by `search`. Defaults to the
            row numbers.

    Example:

    >>> index = NearestNeighborIndex(np.eye(3), items=["a", "b", "c"])
    >>> index.search(np.array([[0.1, 0.9, 0.0]]), k=2)
    [[('b', 0.9939), ('a', 0.1104)]]
    """

    def __init__(self, embeddings, items=None):
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or not len(embeddings):
            raise ValueError(f"embeddings must be a non-empty 2-D array (n, dim); got shape {embeddings.shape}.")
        if items is not None and len(items) != len(embeddings):
            raise ValueError(f"items has {len(items)} entries but there are {len(embeddings)} embeddings.")
        self.embeddings = _normalize(embeddings)
        self.items = list(range(len(embeddings))) if items is None else list(items)

    def __len__(self):
        return len(self.embeddings)

    def scores(self, queries, k=5):
        """`(similarities, indices)`, each `(num_queries, k)`, best first."""
        queries = _normalize(np.asarray(queries, np.float32).reshape(-1, self.embeddings.shape[1]))
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}.")
        k = min(int(k), len(self))
        similarities = queries @ self.embeddings.T  # (num_queries, n)
        top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(similarities, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        indices = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(similarities, indices, axis=1), indices

    def search(self, queries, k=5):
        """The `k` nearest items of each query, as lists of `(item, score)`."""
        similarities, indices = self.scores(queries, k)
        return [
            [(self.items[j], round(float(s), 4)) for j, s in zip(row, scores, strict=True)]
            for row, scores in zip(indices, similarities, strict=True)
        ]


def _normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
