"""A rerun never mixes two runs: the image binary run again on its own folder.

Each scenario runs `examples/pretrain_finetune.py` as a user would (its
`main`, in this process: flag parsing, the messages and the exit code), on
a finished folder and on a half-finished one (pre-training done, heads not).
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from tests.binaries import run_in_process
from tests.test_case import TestCase

TINY = (
    "--pretraining=autoencoder",
    "--architecture=dense",
    "--pretrain_epochs=1",
    "--finetune_steps=2",
    "--labels_per_class=2",
    "--label_draws=1",
    "--strategy=default",
    "--verbose=0",
    "--checkpoint_every=10",  # output-only: several checkpoints per phase
)


def run_example(name, *argv):
    code, stdout, stderr = run_in_process(name, *argv)
    return subprocess.CompletedProcess(name, code, stdout, stderr)


def _table(stdout):
    return stdout[stdout.index("Test accuracy with") : stdout.index("model:")]


@pytest.mark.slow
class RerunTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.finished = os.path.join(cls.root, "finished")
        proc = run_example("pretrain_finetune.py", f"--model_dir={cls.finished}", *TINY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        cls.table = _table(proc.stdout)
        # Pre-training done, the heads not yet trained.
        cls.half = os.path.join(cls.root, "half")
        shutil.copytree(cls.finished, cls.half)
        shutil.rmtree(os.path.join(cls.half, "heads"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def assertRefused(self, proc, *patterns):
        self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
        self.assertNotIn("Traceback", proc.stderr)
        for pattern in patterns:
            self.assertRegex(proc.stderr, pattern)

    def test_other_settings_are_refused_on_finished_and_half_finished_folders(self):
        changes = {
            "--learning_rate=0.01": r"learning_rate: 0\.001 -> 0\.01",
            "--svm_c=5": r"svm_c: 1\.0 -> 5\.0",
            "--pretrain_epochs=2": r"pretrain_epochs: 1 -> 2",
            "--seed=1": r"seed: 0 -> 1",
        }
        for folder in (self.finished, self.half):
            for flag, difference in changes.items():
                with self.subTest(folder=os.path.basename(folder), flag=flag):
                    proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY, flag)
                    self.assertRefused(proc, difference, "new --model_dir", re.escape(folder))
        self.assertFalse(os.path.exists(os.path.join(self.half, "heads")))

    def test_the_same_settings_resume_to_the_same_table(self):
        for folder in (self.finished, self.half):
            with self.subTest(folder=os.path.basename(folder)):
                proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY)
                self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
                self.assertEqual(_table(proc.stdout), self.table)

    def test_divergence_then_a_sane_learning_rate(self):
        folder = os.path.join(self.root, "diverged")
        proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY, "--learning_rate=1e6")
        self.assertRefused(proc, "(NaN|Inf|diverged|exploded)", "--restart_from_healthy")
        # The advice without the flag: the changed learning rate is refused.
        proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY)
        self.assertRefused(proc, r"learning_rate: 1000000\.0 -> 0\.001")
        # With it, the run continues from the last healthy point and finishes.
        proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY, "--restart_from_healthy")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertIn("linear SVM (LinearSVC)", proc.stdout)

    def test_a_corrupt_newest_checkpoint_is_set_aside_once(self):
        folder = os.path.join(self.root, "corrupt")
        shutil.copytree(self.finished, folder)
        newest = sorted(glob.glob(os.path.join(folder, "pretrain", "checkpoints", "ckpt-*")))[-1]
        with open(os.path.join(newest, "state.npz"), "r+b") as f:
            f.truncate(64)
        proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertIn("corrupt", proc.stderr)
        self.assertTrue(glob.glob(newest + ".corrupt-*"))
        self.assertEqual(_table(proc.stdout), self.table)
        proc = run_example("pretrain_finetune.py", f"--model_dir={folder}", *TINY)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertNotIn("corrupt", proc.stderr)
        self.assertEqual(_table(proc.stdout), self.table)
