"""Exact resumption after SIGKILL: a run killed at several points (mid-epoch,
while writing a checkpoint, in the second phase) and restarted each time ends
with exactly the weights, optimizer state and seed states of an
uninterrupted run."""

import json
import os
import signal
import tempfile
import unittest

import pytest

import numpy as np

from keras_pt import data
from tests import multiprocess

WORKER = "tests/resume_worker.py"


@pytest.mark.multiprocess
@pytest.mark.slow
class KillResumeTest(unittest.TestCase):
    def test_killed_and_resumed_run_equals_uninterrupted_run(self):
        root = tempfile.mkdtemp(prefix="resume_")
        data_dir = os.path.join(root, "tfds")
        data.load_image_dataset("digits", data_dir=data_dir)  # built once, read by all

        def start(name, *flags):
            out = os.path.join(root, f"{name}.npz")
            args = [WORKER, f"--data_dir={data_dir}", f"--out={out}", *flags]
            return multiprocess.start(args, out + ".log"), out

        reference, reference_out = start("reference", f"--model_dir={os.path.join(root, 'reference')}")
        chain = f"--model_dir={os.path.join(root, 'chain')}"
        # Step 6: mid-epoch (22 steps per epoch), two steps after a checkpoint.
        # Step 24: in epoch 2, killed between writing and renaming its checkpoint.
        # SVM step 7: mid-epoch of the second phase (5 steps per epoch).
        runs = [
            ("kill_dae_6", "--kill_at=dae:6"),
            ("kill_dae_save_24", "--kill_in_save=dae:24"),
            ("kill_svm_7", "--kill_at=svm:7"),
        ]
        first, _ = start(runs[0][0], chain, runs[0][1])
        codes = multiprocess.wait_all([first, reference], timeout=300)
        first_log = os.path.join(root, "kill_dae_6.npz.log")
        self.assertEqual(codes[0], -signal.SIGKILL, multiprocess.tail(first_log))
        self.assertEqual(codes[1], 0, multiprocess.tail(reference_out + ".log"))
        for name, flag in runs[1:]:
            process, out = start(name, chain, flag)
            code = multiprocess.wait_all([process], timeout=300)[0]
            self.assertEqual(code, -signal.SIGKILL, multiprocess.tail(out + ".log"))
        # Each restart resumed from the newest complete checkpoint.
        starts = {}
        for name, _ in runs:
            log = multiprocess.tail(os.path.join(root, f"{name}.npz.log"), 100000)
            starts[name] = [line for line in log.splitlines() if line.startswith("phase ")]
        self.assertEqual(starts["kill_dae_6"], ["phase dae starts at step 0"])
        self.assertEqual(starts["kill_dae_save_24"], ["phase dae starts at step 4"])
        self.assertEqual(starts["kill_svm_7"], ["phase dae starts at step 20", "phase svm starts at step 0"])
        # The killed save left a partial folder, never a complete checkpoint.
        process, final_out = start("final", chain)
        self.assertEqual(multiprocess.wait_all([process])[0], 0, multiprocess.tail(final_out + ".log"))
        with open(final_out + ".json") as f:
            info = json.load(f)
        # The final run found the DAE done and resumed the SVM at its checkpoint.
        self.assertEqual(info, {"dae_initial_step": 30, "svm_initial_step": 6})

        with np.load(reference_out) as want, np.load(final_out) as got:
            self.assertEqual(sorted(want.files), sorted(got.files))
            self.assertGreater(len(want.files), 20)
            for key in want.files:
                self.assertTrue(np.array_equal(want[key], got[key]), f"{key} differs")

        checkpoints = sorted(os.listdir(os.path.join(root, "chain", "dae", "checkpoints")))
        self.assertEqual(checkpoints, ["ckpt-00000024", "ckpt-00000028", "ckpt-00000030"])


if __name__ == "__main__":
    unittest.main()
