"""examples/train_gan.py runs end to end with tiny flag values."""

import glob
import os
import re
import uuid
import pytest

import numpy as np
import tensorflow as tf

from tests import fixtures
from tests.binaries import run_in_process
from tests.test_case import TestCase

TINY = (
    "--base_filters=4",
    "--latent_dim=8",
    "--classifier_epochs=1",
    "--num_eval_samples=50",
    "--svm_steps=2",
    "--labels_per_class=2",
    "--strategy=default",
    "--verbose=0",
)


class TrainGANExampleTest(TestCase):
    @pytest.mark.slow
    def test_main_with_tiny_flags(self):
        model_dir = self.get_temp_dir()
        code, stdout, stderr = run_in_process(
            "train_gan.py", "--epochs=2", "--probe_draws=2", f"--model_dir={model_dir}", *TINY
        )
        self.assertEqual(code, 0, stderr[-3000:])
        distances = re.search(r"Fréchet distance per epoch: (.*)", stdout).group(1).split()
        self.assertLen(distances, 3)
        self.assertRegex(stdout, r"SVM on trained discriminator features +\d\.\d{3} ± \d\.\d{3}")
        self.assertRegex(stdout, r"paired difference +-?\d\.\d{3} ± \d\.\d{3}")
        self.assertRegex(stdout, r"raw pixels: linear SVM \(LinearSVC\) +\d\.\d{3} ± \d\.\d{3}")
        self.assertLen(glob.glob(os.path.join(model_dir, "samples", "*.png")), 2)
        for name in ("gan.keras", "gan.keras.sha256", "feature_classifier.keras", "generator_savedmodel"):
            self.assertTrue(os.path.exists(os.path.join(model_dir, name)), name)

    @pytest.mark.slow
    def test_main_on_a_npz_file_and_a_ram_filesystem(self):
        images, labels = fixtures.digits(600)
        path = fixtures.write_npz(os.path.join(self.get_temp_dir(), "digits.npz"), images, labels)
        model_dir = f"ram://gan-npz-{uuid.uuid4().hex}"  # any tf.io.gfile path
        code, stdout, stderr = run_in_process(
            "train_gan.py", f"--dataset={path}", "--epochs=1", "--probe_draws=1", f"--model_dir={model_dir}", *TINY
        )
        self.assertEqual(code, 0, stderr[-3000:])
        for name in ("gan.keras", "gan.keras.sha256", "feature_classifier.keras", "settings.json"):
            self.assertTrue(tf.io.gfile.exists(f"{model_dir}/{name}"), name)
        self.assertLen(tf.io.gfile.glob(f"{model_dir}/samples/*.png"), 1)
        self.assertTrue(tf.io.gfile.exists(f"{model_dir}/generator_savedmodel/saved_model.pb"))
        self.assertIn("raw pixels", stdout)
        self.assertTrue(np.isfinite(float(re.search(r"per epoch: (\S+)", stdout).group(1))))
