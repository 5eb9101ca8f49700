"""Learning test on the embedded digits, and the main job's binary."""

import os
import subprocess
import sys

from keras_pt import recipes
from tests.test_case import TestCase

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EXAMPLE = os.path.join(ROOT, "examples", "pretrain_finetune.py")


def run_example(*flags):
    """Runs the binary in its own process (each example owns its absl flags)."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    for name in ("COLAB_TPU_ADDR", "TPU_NAME", "TF_CONFIG"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, EXAMPLE, *flags], capture_output=True, text=True, env=env, timeout=600
    )


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
        proc = run_example(
            f"--model_dir={model_dir}", "--pretrain_epochs=1", "--finetune_steps=3",
            "--labels_per_class=2", "--strategy=default", "--verbose=0", "--architecture=conv",
            "--mixed_precision=mixed_bfloat16",
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertRegex(proc.stdout, r"svm   frozen +\d\.\d{3} +\d\.\d{3}")
        self.assertTrue(os.path.exists(os.path.join(model_dir, "autoencoder.keras")))
        self.assertTrue(os.path.exists(os.path.join(model_dir, "reconstructions.png")))
        self.assertTrue(os.listdir(os.path.join(model_dir, "logs")))
        self.assertTrue(os.listdir(os.path.join(model_dir, "pretrain", "checkpoints")))

    def test_bad_flags(self):
        proc = run_example("--strategy=gpu", f"--model_dir={self.get_temp_dir()}")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("unknown strategy 'gpu'", proc.stderr)

    def test_tpu_flag_without_a_tpu(self):
        # The tpu path runs up to the point a TPU is needed, then stops with
        # a message that says what is there and what to do.
        proc = run_example("--strategy=tpu", f"--model_dir={self.get_temp_dir()}")
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(proc.stderr, r"strategy 'tpu' needs a TPU.*available: .*CPU.*--tpu=")
