"""`pretrain_minibert(objective=...)`: every objective writes the MiniBERT the
fine-tuning recipe reads."""

import math
import os
import tempfile

import keras
import numpy as np
import pytest

import keras_pt
from keras_pt import recipes
from keras_pt.recipes.minibert_pretraining import corpus_token_vectors
from tests.test_case import TestCase


class PretrainingObjectivesTest(TestCase):
    @pytest.mark.slow
    def test_electra_objective_writes_a_minibert(self):
        model_dir = tempfile.mkdtemp()
        result = recipes.pretrain_minibert(
            model_dir=model_dir,
            strategy="default",
            objective="electra",
            sequence_length=32,
            vocabulary_size=2000,
            steps=6,
            verbose=0,
        )
        self.assertEqual(result.objective, "electra")
        self.assertTrue(0.0 <= result.mlm_accuracy <= 1.0)
        self.assertTrue(0.0 < result.rtd_accuracy <= 1.0)
        bert = keras.saving.load_model(result.model_path)
        self.assertIsInstance(bert, keras_pt.MiniBERT)
        electra = keras.saving.load_model(result.files["electra"])
        self.assertIsInstance(electra, keras_pt.ElectraPretrainer)
        self.assertAllClose(bert.get_weights(), electra.discriminator.get_weights())
        self.assertTrue(os.path.exists(os.path.join(model_dir, "vocabulary.txt")))

    @pytest.mark.slow
    def test_crops_objective_trains_the_encoder(self):
        model_dir = tempfile.mkdtemp()
        result = recipes.pretrain_minibert(
            model_dir=model_dir,
            strategy="default",
            objective="crops",
            sequence_length=32,
            vocabulary_size=2000,
            steps=4,
            learning_rate=1e-2,
            verbose=0,
        )
        self.assertEqual(result.objective, "crops")
        self.assertTrue(math.isnan(result.mlm_accuracy))
        bert = keras.saving.load_model(result.model_path)
        self.assertIsInstance(bert, keras_pt.MiniBERT)
        states = bert.encoder(bert.preprocessor(["Return the logger.", "Open a file."]))
        self.assertTrue(np.all(np.isfinite(states["sequence_output"])))

    @pytest.mark.slow
    def test_zero_steps_keep_the_cooccurrence_vectors(self):
        result = recipes.pretrain_minibert(
            model_dir=tempfile.mkdtemp(),
            strategy="default",
            embedding_init="ppmi",
            sequence_length=32,
            vocabulary_size=2000,
            steps=0,
            verbose=0,
        )
        self.assertEqual(result.steps, 0)
        self.assertTrue(math.isnan(result.mlm_accuracy))  # no masked-LM was trained
        bert = keras.saving.load_model(result.model_path)
        texts = keras_pt.data.load_pretraining_texts("stdlib_docs")
        expected = corpus_token_vectors(texts, bert.preprocessor, bert.hidden_dim)
        self.assertAllClose(keras.ops.convert_to_numpy(bert.embedding.token_embeddings), expected)
        # Tokens that share docstrings are closer than unrelated ones.
        vocabulary = bert.preprocessor.tokenizer.get_vocabulary()
        unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)

        def cosine(a, b):
            return float(unit[vocabulary.index(a)] @ unit[vocabulary.index(b)])

        self.assertGreater(cosine("socket", "connection"), cosine("socket", "decimal"))

    def test_zero_steps_need_the_cooccurrence_vectors(self):
        with self.assertRaisesRegex(ValueError, "steps must be a positive int"):
            recipes.pretrain_minibert(model_dir=tempfile.mkdtemp(), embedding_init="random", steps=0)

    def test_unknown_embedding_init(self):
        with self.assertRaisesRegex(ValueError, "embedding_init 'glove'"):
            recipes.pretrain_minibert(model_dir=tempfile.mkdtemp(), embedding_init="glove", steps=1)

    def test_unknown_objective(self):
        with self.assertRaisesRegex(ValueError, "objective 'nsp'"):
            recipes.pretrain_minibert(model_dir=tempfile.mkdtemp(), objective="nsp", steps=1)
