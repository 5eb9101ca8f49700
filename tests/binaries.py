"""Runs the example binaries in their own processes (each owns its absl flags)."""

import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_example(name, *flags, timeout=600):
    """Runs `examples/<name>` with `flags`; returns the `CompletedProcess`
    (text `stdout`/`stderr`). TPU and cluster variables are removed so that
    `--strategy=auto` picks the CPU."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    for variable in ("COLAB_TPU_ADDR", "TPU_NAME", "TF_CONFIG"):
        env.pop(variable, None)
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name), *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
