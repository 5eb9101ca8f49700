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

    def test_unknown_objective(self):
        with self.assertRaisesRegex(ValueError, "objective 'nsp'"):
            recipes.pretrain_minibert(model_dir=tempfile.mkdtemp(), objective="nsp", steps=1)
