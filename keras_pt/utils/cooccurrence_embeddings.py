"""Token vectors from corpus co-occurrence statistics (PPMI + truncated SVD).

Count-based distributional vectors: how often two tokens occur in the same
packed text, reweighted by positive pointwise mutual information (with
context-distribution smoothing, exponent 0.75) and factorised by a
truncated SVD. They take seconds on a CPU, need nothing but the corpus, and
carry which tokens share topics — what a bag of words lacks and what a few
minutes of pre-training a transformer from random token embeddings does
not yet learn (see BUILD_NOTES, "Token embeddings from co-occurrence counts").

Example:

>>> import numpy as np
>>> ids = np.array([[2, 5, 6, 3, 0], [2, 5, 6, 7, 3], [2, 8, 9, 3, 0], [2, 9, 8, 7, 3]])
>>> cooccurrence_embeddings(ids, vocabulary_size=10, dim=2).shape
(10, 2)

References:
    Levy, Goldberg & Dagan, "Improving Distributional Similarity with
    Lessons Learned from Word Embeddings", TACL 2015 (PPMI with smoothed
    context counts, SVD with the singular values' square root).
"""

import numpy as np
import scipy.sparse

from keras_pt import special_tokens


def cooccurrence_counts(token_ids, vocabulary_size, chunk_size=65536):
    """Symmetric counts of ordinary tokens occurring in the same sequence.

    Args:
        token_ids: int array `(num_texts, sequence_length)` (packed texts) or
            an iterable of such arrays. Special tokens and padding (ids
            below `keras_pt.special_tokens.NUM_SPECIAL_TOKENS`) are left out.
        vocabulary_size: int. Rows and columns of the result.
        chunk_size: int. Texts per sparse product.

    Returns:
        A `scipy.sparse.csr_matrix` `(vocabulary_size, vocabulary_size)`:
        entry `(i, j)` sums, over the texts, `count_i · count_j` (the pairs
        of positions holding `i` and `j`), without the diagonal.
    """
    if isinstance(token_ids, np.ndarray):
        token_ids = [token_ids]
    total = scipy.sparse.csr_matrix((vocabulary_size, vocabulary_size), dtype=np.float64)
    for block in token_ids:
        block = np.asarray(block)
        if block.ndim != 2:
            raise ValueError(f"token_ids must be (num_texts, sequence_length); got shape {block.shape}.")
        if block.size and block.max() >= vocabulary_size:
            raise ValueError(f"token id {block.max()} is outside a vocabulary of {vocabulary_size} tokens.")
        for start in range(0, len(block), chunk_size):
            part = block[start : start + chunk_size]
            rows, cols = np.nonzero(part >= special_tokens.NUM_SPECIAL_TOKENS)
            bag = scipy.sparse.csr_matrix(
                (np.ones(len(rows)), (rows, part[rows, cols])), shape=(len(part), vocabulary_size)
            )  # (texts, vocabulary): token counts per text
            total = total + (bag.T @ bag).tocsr()
    total.setdiag(0)
    total.eliminate_zeros()
    return total


def ppmi(counts, alpha=0.75):
    """Positive pointwise mutual information of a co-occurrence count matrix.

    `max(0, log(P(i, j) / (P(i) · P_α(j))))` with `P_α(j) ∝ count(j)^α`
    (context-distribution smoothing), on the non-zero counts only.
    """
    counts = scipy.sparse.coo_matrix(counts)
    total = counts.data.sum()
    if total <= 0:
        raise ValueError("the co-occurrence counts are all zero: no text holds two ordinary tokens.")
    marginal = np.asarray(scipy.sparse.csr_matrix(counts).sum(axis=1)).ravel()
    smoothed = marginal**alpha
    smoothed = smoothed / smoothed.sum()
    pmi = np.log(counts.data / total) - np.log(marginal[counts.row] / total) - np.log(smoothed[counts.col])
    keep = pmi > 0
    return scipy.sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)


def cooccurrence_embeddings(token_ids, vocabulary_size, dim, alpha=0.75, row_norm=1.0, seed=0):
    """`(vocabulary_size, dim)` token vectors: PPMI of in-text co-occurrence, then SVD.

    The vectors are `U · sqrt(S)` of the rank-`dim` truncated SVD of
    `ppmi(cooccurrence_counts(token_ids))`, scaled so that their mean row
    norm is `row_norm`. Tokens never seen with another (special tokens,
    unused pieces) get small random vectors of the same scale, as a
    randomly initialised embedding would.

    Args:
        token_ids: int array `(num_texts, sequence_length)` of packed texts,
            or an iterable of them.
        vocabulary_size: int. Rows of the result.
        dim: int. Columns (an embedding's `hidden_dim`); beyond
            `vocabulary_size - 1` they are 0 (rank of the SVD).
        alpha: float. Context-distribution smoothing. Defaults to 0.75.
        row_norm: float. Mean L2 norm of the rows of seen tokens. Defaults to 1.
        seed: int. Seed of the SVD's random projection and the vectors of
            unseen tokens.

    Returns:
        A float32 NumPy array `(vocabulary_size, dim)`.
    """
    from sklearn.utils.extmath import randomized_svd

    if dim < 1 or vocabulary_size < 2:
        raise ValueError(f"need dim >= 1 and vocabulary_size >= 2; got {dim} and {vocabulary_size}.")
    matrix = ppmi(cooccurrence_counts(token_ids, vocabulary_size), alpha=alpha)
    rank = min(dim, vocabulary_size - 1)  # a small vocabulary: the rest of the columns 0
    u, s, _ = randomized_svd(matrix, rank, random_state=seed)
    vectors = np.zeros((vocabulary_size, dim))
    vectors[:, :rank] = u * np.sqrt(s)  # (vocabulary, dim)
    norms = np.linalg.norm(vectors, axis=1)
    seen = norms > 1e-8
    if not seen.any():
        raise ValueError("no token co-occurs with another; the corpus is too small.")
    vectors *= row_norm / norms[seen].mean()
    rng = np.random.default_rng(seed)
    vectors[~seen] = rng.normal(0.0, 0.1 * row_norm / np.sqrt(dim), size=(int((~seen).sum()), dim))
    return vectors.astype(np.float32)
