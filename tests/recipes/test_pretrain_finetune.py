"""The main job's recipe: a learning test on the embedded digits."""

import os

import pytest

from keras_pt import recipes
from tests.test_case import TestCase


class PretrainFinetuneTest(TestCase):
    @pytest.mark.slow
    def test_linear_probe_beats_raw_pixels_on_digits(self):
        result = recipes.pretrain_finetune(
            model_dir=self.get_temp_dir(),
            strategy="default",
            pretrain_epochs=10,
            finetune_steps=5,
            label_draws=3,
            verbose=0,
        )
        print(result.table())
        raw = result.baselines["linear_svm"]
        pretrained = result.accuracy[("pretrained", "svm", "frozen")]
        untrained = result.accuracy[("untrained", "svm", "frozen")]
        self.assertLen(pretrained.values, 3)
        margin = max(raw.std, pretrained.std)
        # The linear probe on the pre-trained encoder beats a linear SVM on
        # the raw pixels of the same label draws by more than the spread...
        self.assertGreater(pretrained.mean, raw.mean + margin)
        # ...which the same probe on the untrained encoder does not.
        self.assertLess(untrained.mean, raw.mean + max(raw.std, untrained.std))
        for path in result.files.values():
            self.assertTrue(os.path.exists(path), path)

    @pytest.mark.slow
    def test_autoencoder_pretraining(self):
        result = recipes.pretrain_finetune(
            model_dir=self.get_temp_dir(),
            strategy="default",
            pretraining="denoising_autoencoder",
            pretrain_epochs=2,
            finetune_steps=2,
            label_draws=1,
            verbose=0,
        )
        self.assertLess(result.reconstruction_loss, result.mean_image_loss)
        self.assertTrue(result.files["grid"].endswith("reconstructions.png"))
        self.assertIn("logistic regression", result.table())
