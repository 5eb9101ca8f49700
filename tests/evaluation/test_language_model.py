"""Held-out perplexity computed outside the strategy's loop equals Keras's evaluate."""

import tensorflow as tf

import keras_pt
from keras_pt import data, evaluation
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer
from tests.test_case import TestCase


class PerplexityTest(TestCase):
    def test_equals_evaluate_with_a_short_last_batch(self):
        texts = tf.data.Dataset.from_tensor_slices(["hello world the cat sat on the mat", "the dog ran"] * 20)
        vocabulary = data.learn_vocabulary(texts, 60, min_frequency=1)
        preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), 12)
        model = keras_pt.MiniGPT(
            preprocessor=preprocessor,
            num_layers=1,
            hidden_dim=16,
            num_heads=1,
            intermediate_dim=32,
            max_sequence_length=12,
        )
        model.compile()
        batches = data.preprocess_text_dataset(texts, preprocessor, 7)  # 40 texts: a short last batch
        expected = model.evaluate(batches, verbose=0, return_dict=True)["perplexity"]
        self.assertAllClose(evaluation.perplexity(model, batches), expected, rtol=1e-5)
        with self.assertRaisesRegex(ValueError, "no next-token targets"):
            evaluation.perplexity(model, batches.take(0))
