"""Learning test on the embedded digits, and the main job's binary."""

import os
import sys

import numpy as np
from absl.testing import flagsaver

from keras_pt import recipes
from tests.test_case import TestCase

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import pretrain_finetune  # noqa: E402


class PretrainFinetuneTest(TestCase):
    def test_pretraining_pays_off_on_digits(self):
        result = recipes.pretrain_finetune(
            model_dir=self.get_temp_dir(), strategy="default", pretrain_epochs=40,
            finetune_steps=300, verbose=0,
        )
        # Reconstruction error far below predicting the mean image.
        self.assertLess(result.reconstruction_loss, 0.35 * result.mean_image_loss)
        # The SVM probe on the pre-trained code is accurate, and far ahead of
        # the same probe on an untrained encoder.
        pretrained = result.accuracy[("pretrained", "svm", "frozen")]
        untrained = result.accuracy[("untrained", "svm", "frozen")]
        self.assertGreater(pretrained, 0.75)
        self.assertGreater(pretrained, untrained + 0.15)
        self.assertGreater(result.accuracy[("pretrained", "mlp", "frozen")], 0.8)
        for path in result.files.values():
            self.assertTrue(os.path.exists(path), path)

    def test_example_binary(self):
        model_dir = self.get_temp_dir()
        with flagsaver.flagsaver(
            model_dir=model_dir, pretrain_epochs=1, finetune_steps=3, labels_per_class=2,
            strategy="default", verbose=0, architecture="conv",
        ):
            pretrain_finetune.FLAGS(["pretrain_finetune"])
            pretrain_finetune.main([])
        self.assertTrue(os.path.exists(os.path.join(model_dir, "autoencoder.keras")))
        self.assertTrue(os.path.exists(os.path.join(model_dir, "reconstructions.png")))
        self.assertTrue(os.listdir(os.path.join(model_dir, "logs")))

    def test_bad_flags(self):
        with flagsaver.flagsaver(strategy="gpu", model_dir=self.get_temp_dir()):
            pretrain_finetune.FLAGS(["pretrain_finetune"])
            with self.assertRaisesRegex(ValueError, "unknown strategy 'gpu'"):
                pretrain_finetune.main([])
