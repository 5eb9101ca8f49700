"""examples/train_gan.py runs end to end with tiny flag values."""

import glob
import os
import sys

from absl import flags
from absl.testing import flagsaver

from tests.test_case import TestCase

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import train_gan  # noqa: E402


class TrainGANExampleTest(TestCase):
    def test_main_with_tiny_flags(self):
        flags.FLAGS.mark_as_parsed()
        model_dir = self.get_temp_dir()
        with flagsaver.flagsaver(
            epochs=2,
            base_filters=4,
            latent_dim=8,
            classifier_epochs=1,
            num_eval_samples=50,
            svm_steps=2,
            labels_per_class=2,
            probe_draws=2,
            model_dir=model_dir,
            data_dir=os.path.join(model_dir, "tfds"),
            verbose=0,
        ):
            result = train_gan.run()
        self.assertLen(result.frechet_distances, 3)
        self.assertBetween(result.probe["trained"].mean, 0.0, 1.0)
        self.assertLen(result.probe["trained"].values, 2)
        self.assertLen(result.probe["untrained"].values, 2)
        self.assertLen(result.baselines["linear_svm"].values, 2)
        self.assertIn("paired difference", result.table())
        self.assertLen(glob.glob(os.path.join(model_dir, "samples", "*.png")), 2)
        for name in ("gan.keras", "feature_classifier.keras", "generator_savedmodel"):
            self.assertTrue(os.path.exists(os.path.join(model_dir, name)), name)

    def test_main_on_a_npz_file(self):
        import numpy as np
        from sklearn.datasets import load_digits

        digits = load_digits()
        path = os.path.join(self.get_temp_dir(), "digits.npz")
        np.savez(path, x_train=(digits.images[:400] * 255 / 16).astype("uint8"),
                 y_train=digits.target[:400], x_test=(digits.images[400:600] * 255 / 16).astype("uint8"),
                 y_test=digits.target[400:600])
        flags.FLAGS.mark_as_parsed()
        model_dir = os.path.join(self.get_temp_dir(), "gan_npz")
        with flagsaver.flagsaver(
            dataset=path, epochs=1, base_filters=4, latent_dim=8, classifier_epochs=1,
            num_eval_samples=50, svm_steps=2, labels_per_class=2, probe_draws=1,
            model_dir=model_dir, verbose=0,
        ):
            result = train_gan.run()
        self.assertTrue(os.path.exists(os.path.join(model_dir, "gan.keras")))
        self.assertLen(result.baselines["linear_svm"].values, 1)
