"""Learning test on the embedded digits, and the main job's binary."""

import os

import pytest

from keras_pt import recipes
from tests.binaries import run_example
from tests.test_case import TestCase

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EXAMPLE = os.path.join(ROOT, "examples", "pretrain_finetune.py")




class PretrainFinetuneTest(TestCase):
    @pytest.mark.slow
    def test_linear_probe_beats_raw_pixels_on_digits(self):
        result = recipes.pretrain_finetune(
            model_dir=self.get_temp_dir(), strategy="default", pretrain_epochs=10,
            finetune_steps=5, label_draws=3, verbose=0,
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

    def test_autoencoder_pretraining(self):
        result = recipes.pretrain_finetune(
            model_dir=self.get_temp_dir(), strategy="default", pretraining="denoising_autoencoder",
            pretrain_epochs=2, finetune_steps=2, label_draws=1, verbose=0,
        )
        self.assertLess(result.reconstruction_loss, result.mean_image_loss)
        self.assertTrue(result.files["grid"].endswith("reconstructions.png"))
        self.assertIn("logistic regression", result.table())

    def test_example_binary(self):
        model_dir = self.get_temp_dir()
        proc = run_example("pretrain_finetune.py", 
            f"--model_dir={model_dir}", "--pretrain_epochs=1", "--finetune_steps=3",
            "--labels_per_class=2", "--label_draws=2", "--strategy=default", "--verbose=0",
            "--architecture=conv", "--mixed_precision=mixed_bfloat16",
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertRegex(proc.stdout, r"svm   frozen +\d\.\d{3} ± \d\.\d{3} +\d\.\d{3} ± \d\.\d{3}")
        self.assertRegex(proc.stdout, r"linear SVM \(LinearSVC\) +\d\.\d{3} ± \d\.\d{3}")
        self.assertTrue(os.path.exists(os.path.join(model_dir, "pretrained.keras")))
        self.assertTrue(os.path.exists(os.path.join(model_dir, "views.png")))
        self.assertTrue(os.listdir(os.path.join(model_dir, "logs")))
        self.assertTrue(os.listdir(os.path.join(model_dir, "pretrain", "checkpoints")))

    def test_bad_flags(self):
        proc = run_example("pretrain_finetune.py", "--strategy=gpu", f"--model_dir={self.get_temp_dir()}")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("unknown strategy 'gpu'", proc.stderr)

    def test_tpu_flag_without_a_tpu(self):
        # The tpu path runs up to the point a TPU is needed, then stops with
        # a message that says what is there and what to do.
        proc = run_example("pretrain_finetune.py", "--strategy=tpu", f"--model_dir={self.get_temp_dir()}")
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(proc.stderr, r"strategy 'tpu' needs a TPU.*available: .*CPU.*--tpu=")


def _digit_folders(root, per_class=20, sizes=((8, 8), (12, 12))):
    """scikit-learn's digits as PNG class folders of two image sizes."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts = {}
    for image, label in zip(digits.images, digits.target):
        if counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        folder = os.path.join(root, f"digit_{label}")
        os.makedirs(folder, exist_ok=True)
        size = sizes[counts[label] % len(sizes)]
        picture = Image.fromarray((image * 255 / 16).astype("uint8")).resize(size)
        picture.save(os.path.join(folder, f"{counts[label]}.png"))
    return root


class OwnImagesTest(TestCase):
    def test_binary_on_a_folder_of_class_folders(self):
        root = _digit_folders(os.path.join(self.get_temp_dir(), "my_digits"))
        model_dir = os.path.join(self.get_temp_dir(), "run")
        proc = run_example("pretrain_finetune.py", f"--dataset={root}", f"--model_dir={model_dir}", "--verbose=0",
                           "--strategy=default", "--pretrain_epochs=1", "--finetune_steps=2",
                           "--labels_per_class=2", "--label_draws=1")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("different sizes", proc.stderr)
        self.assertIn("--image_size", proc.stderr)
        proc = run_example("pretrain_finetune.py", f"--dataset={root}", "--image_size=8,8", f"--model_dir={model_dir}",
                           "--verbose=0", "--strategy=default", "--pretrain_epochs=1",
                           "--finetune_steps=2", "--labels_per_class=2", "--label_draws=1")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertIn("my_digits", proc.stdout)
        self.assertRegex(proc.stdout, r"linear SVM \(LinearSVC\) +\d\.\d{3}")

    def test_unknown_name_and_missing_path(self):
        for dataset, message in (("no_such_images", "unknown data set 'no_such_images'"),
                                 ("./missing_folder", "no file or folder './missing_folder'")):
            proc = run_example("pretrain_finetune.py", f"--dataset={dataset}", f"--model_dir={self.get_temp_dir()}")
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn(message, proc.stderr)
