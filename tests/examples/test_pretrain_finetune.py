"""examples/pretrain_finetune.py, the main job's binary, end to end."""

import uuid
import pytest

import tensorflow as tf

from tests import fixtures
from tests.binaries import run_in_process
from tests.test_case import TestCase

TINY = (
    "--pretrain_epochs=1",
    "--finetune_steps=2",
    "--labels_per_class=2",
    "--label_draws=1",
    "--strategy=default",
    "--verbose=0",
)


class PretrainFinetuneBinaryTest(TestCase):
    @pytest.mark.slow
    def test_on_a_ram_filesystem_with_bfloat16(self):
        model_dir = f"ram://pretrain-finetune-{uuid.uuid4().hex}"  # any tf.io.gfile path
        code, stdout, stderr = run_in_process(
            "pretrain_finetune.py",
            f"--model_dir={model_dir}",
            *TINY,
            "--label_draws=2",
            "--architecture=conv",
            "--mixed_precision=mixed_bfloat16",
        )
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertRegex(stdout, r"svm   frozen +\d\.\d{3} ± \d\.\d{3} +\d\.\d{3} ± \d\.\d{3}")
        self.assertRegex(stdout, r"linear SVM \(LinearSVC\) +\d\.\d{3} ± \d\.\d{3}")
        for name in ("pretrained.keras", "pretrained.keras.sha256", "views.png", "settings.json"):
            self.assertTrue(tf.io.gfile.exists(f"{model_dir}/{name}"), name)
        self.assertTrue(tf.io.gfile.listdir(f"{model_dir}/logs"))
        self.assertTrue(tf.io.gfile.listdir(f"{model_dir}/pretrain/checkpoints"))

    @pytest.mark.slow
    def test_on_a_folder_of_class_folders(self):
        images, labels = fixtures.digits(200)
        root = fixtures.write_image_folder(f"{self.get_temp_dir()}/my_digits", images, labels, resize_odd_to=(12, 12))
        model_dir = f"{self.get_temp_dir()}/run"
        code, _, stderr = run_in_process("pretrain_finetune.py", f"--dataset={root}", f"--model_dir={model_dir}", *TINY)
        self.assertEqual(code, 1)
        self.assertRegex(stderr, "different sizes.*--image_size")
        code, stdout, stderr = run_in_process(
            "pretrain_finetune.py", f"--dataset={root}", "--image_size=8,8", f"--model_dir={model_dir}", *TINY
        )
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertIn("my_digits", stdout)
        self.assertRegex(stdout, r"linear SVM \(LinearSVC\) +\d\.\d{3}")

    def test_tpu_flag_without_a_tpu(self):
        # The tpu path runs up to the point a TPU is needed, then stops with
        # a message that says what is there and what to do.
        code, _, stderr = run_in_process("pretrain_finetune.py", "--strategy=tpu", f"--model_dir={self.get_temp_dir()}")
        self.assertEqual(code, 1)
        self.assertRegex(stderr, r"strategy 'tpu' needs a TPU.*available: .*CPU.*--tpu=")
