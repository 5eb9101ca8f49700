"""Learning tests on the embedded stdlib_docs text: MiniGPT and SentenceEncoder learn."""

import functools
import os
import pytest

from keras_pt import data, recipes
from tests.test_case import TestCase


@functools.lru_cache(maxsize=None)
def vocabulary():
    """One learned vocabulary for both tests (learning it takes seconds)."""
    return tuple(data.learn_vocabulary(data.load_pretraining_texts("stdlib_docs"), 1000, max_texts=2000))


SMALL = dict(
    strategy="default",
    hidden_dim=64,
    num_layers=2,
    sequence_length=48,
    batch_size=32,
    steps=200,
    verbose=0,
)


@pytest.mark.slow
class TextLearningTest(TestCase):
    def test_minigpt_perplexity_far_below_unigram(self):
        result = recipes.pretrain_minigpt(model_dir=self.get_temp_dir(), vocabulary=list(vocabulary()), **SMALL)
        # Held-out (test split) perplexity: context must help a lot.
        self.assertLess(result.perplexity, 0.5 * result.unigram_perplexity)
        self.assertLess(result.perplexity, 0.2 * result.initial_perplexity)
        for prompt, outputs in result.samples.items():
            self.assertTrue(outputs["greedy"].startswith(prompt.lower()), outputs)
        self.assertTrue(os.path.exists(result.files["model"]))

    def test_sentence_embeddings_retrieve_pairs(self):
        result = recipes.train_sentence_embeddings(
            model_dir=self.get_temp_dir(),
            vocabulary=list(vocabulary()),
            num_candidates=32,
            embedding_init="random",
            **SMALL,
        )
        # From random token embeddings (the co-occurrence start already
        # retrieves well untrained), a first sentence finds its own remainder
        # among 32 held-out candidates.
        self.assertGreater(result.accuracy, 5 * result.chance)
        self.assertGreater(result.accuracy, result.untrained_accuracy + 0.15)
        self.assertGreaterEqual(result.num_pairs, 100)
