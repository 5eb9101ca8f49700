"""`keras_pt.utils.cooccurrence_embeddings`: counts, PPMI and SVD vectors
against direct NumPy references."""

import numpy as np
import scipy.sparse

from keras_pt import special_tokens
from keras_pt.utils.cooccurrence_embeddings import (
    cooccurrence_counts,
    cooccurrence_embeddings,
    ppmi,
)
from tests.test_case import TestCase

S = special_tokens.NUM_SPECIAL_TOKENS


def reference_counts(token_ids, vocabulary_size):
    counts = np.zeros((vocabulary_size, vocabulary_size))
    for row in token_ids:
        ordinary = [t for t in row if t >= S]
        for i, a in enumerate(ordinary):
            for j, b in enumerate(ordinary):
                if i != j and a != b:
                    counts[a, b] += 1
    return counts


class CooccurrenceEmbeddingsTest(TestCase):
    def test_counts_match_pairs_of_positions(self):
        rng = np.random.default_rng(0)
        ids = rng.integers(0, 12, size=(30, 9))
        counts = cooccurrence_counts([ids[:10], ids[10:]], 12, chunk_size=4)
        self.assertAllClose(counts.toarray(), reference_counts(ids, 12))

    def test_ppmi_matches_the_formula(self):
        rng = np.random.default_rng(1)
        counts = rng.integers(0, 4, size=(7, 7)).astype(float)
        counts = counts + counts.T
        np.fill_diagonal(counts, 0)
        total = counts.sum()
        row = counts.sum(1)
        context = row**0.75 / (row**0.75).sum()
        with np.errstate(divide="ignore"):
            expected = np.log(counts / total / np.outer(row / total, context))
        expected = np.where(counts > 0, np.maximum(expected, 0), 0)
        self.assertAllClose(ppmi(scipy.sparse.csr_matrix(counts)).toarray(), expected)

    def test_tokens_of_one_topic_get_close_vectors(self):
        # Two topics, each with its own tokens; texts mix tokens of one topic.
        rng = np.random.default_rng(2)
        topics = [np.arange(5, 15), np.arange(15, 25)]
        ids = np.stack([np.concatenate([[2], rng.choice(topics[i % 2], 6), [3, 0]]) for i in range(400)])
        vectors = cooccurrence_embeddings(ids, 30, dim=4)
        self.assertEqual(vectors.shape, (30, 4))
        self.assertEqual(vectors.dtype, np.float32)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        cosine = unit @ unit.T
        same = np.mean([cosine[a, b] for t in topics for a in t for b in t if a != b])
        across = np.mean([cosine[a, b] for a in topics[0] for b in topics[1]])
        self.assertGreater(same, across + 0.5)
        self.assertAllClose(np.linalg.norm(vectors[5:25], axis=1).mean(), 1.0, atol=1e-5)
        # Tokens never seen (special ones, 25-29) get small random vectors.
        self.assertLess(np.linalg.norm(vectors[25:], axis=1).max(), 0.5)

    def test_a_vocabulary_smaller_than_dim(self):
        ids = np.array([[2, 5, 6, 7, 3], [2, 6, 7, 8, 3], [2, 5, 8, 3, 0]])
        vectors = cooccurrence_embeddings(ids, 9, dim=16)
        self.assertEqual(vectors.shape, (9, 16))
        self.assertTrue(np.all(np.isfinite(vectors)))
        self.assertAllClose(vectors[5:, 8:], np.zeros((4, 8)))  # seen tokens: rank 8

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "outside a vocabulary"):
            cooccurrence_counts(np.array([[5, 40]]), 10)
        with self.assertRaisesRegex(ValueError, "need dim >= 1"):
            cooccurrence_embeddings(np.array([[5, 6]]), 10, dim=0)
        with self.assertRaisesRegex(ValueError, "all zero"):
            cooccurrence_embeddings(np.array([[2, 5, 3]]), 10, dim=2)
