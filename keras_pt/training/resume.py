"""Continuing a run: the checkpoint `train` resumes from, after checks."""

import json
import warnings

import tensorflow as tf

from keras_pt import distribute
from keras_pt.checkpointing import Checkpointer, checkpoint_step, find_optimizers, training_state
from keras_pt.training.optimizers import _constant_learning_rates, _flatten

CHECKPOINT_SUBDIR = "checkpoints"
DIVERGENCE_FILE = "divergence.json"


def _read_json(path):
    """The JSON in `path`, or None when there is none (or the chief has just
    removed it)."""
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            return json.loads(f.read())
    except tf.errors.NotFoundError:
        return None


def _resume(
    model,
    checkpointer,
    metadata,
    settings,
    divergence_file,
    restart_from_healthy,
    allow_optimizer_change,
):
    """Restores the checkpoint `train` continues from; returns its manifest.

    Refuses one written with other `metadata` (data stream, `config`) or
    other optimizer `settings`, unless allowed; after a recorded divergence
    and with `restart_from_healthy`, restores the newest checkpoint before
    it and renames the newer ones aside.
    """
    diverged = _read_json(divergence_file)
    before_step = None
    if restart_from_healthy and diverged is not None:
        before_step = int(diverged["first_suspect_step"])

    def check(manifest):
        for key, value in metadata.items():
            saved = manifest.get(key)
            if saved == value or (key == "config" and restart_from_healthy):
                continue
            if isinstance(saved, dict) and isinstance(value, dict):
                differ = sorted(k for k in {**saved, **value} if saved.get(k) != value.get(k))
                saved = {k: saved.get(k) for k in differ}
                value = {k: value.get(k) for k in differ}
            raise ValueError(
                f"the checkpoint {manifest['path']} was written with "
                f"{key}={saved}, this run has {key}={value}; resuming "
                "would mix two different runs. Use the same settings, "
                f"or a new model_dir (or delete {checkpointer.directory})."
            )
        saved = manifest.get("optimizers")
        if saved is None or saved == settings or allow_optimizer_change:
            return
        saved, new = _flatten(saved), _flatten(settings)
        differ = [k for k in sorted({**saved, **new}) if saved.get(k) != new.get(k)]
        changes = "; ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in differ)
        raise ValueError(
            f"the checkpoint {manifest['path']} was trained with other optimizer "
            f"settings ({changes}); resuming would continue it with the new ones "
            "and mix two runs. Use the checkpoint's settings; or start afresh in a "
            f"new model_dir (or delete {checkpointer.directory}); or pass "
            "allow_optimizer_change=True to continue from it with the new settings "
            "(restart_from_healthy=True after a divergence)."
        )

    rates = _constant_learning_rates(model)
    manifest = checkpointer.restore(before_step=before_step, check=check)
    if manifest is not None and manifest.get("optimizers", settings) != settings:
        # The learning rate is an optimizer variable: set this call's again.
        for name, optimizer in find_optimizers(model):
            if name in rates:
                optimizer.learning_rate = rates[name]
    if diverged is None:
        return manifest
    if before_step is not None:
        for path in checkpointer.complete_checkpoints():
            if checkpoint_step(path) >= before_step:
                checkpointer.set_aside(path, "diverged")
    elif manifest is not None and int(manifest["step"]) >= int(diverged["first_suspect_step"]):
        warnings.warn(
            f"{manifest['path']} holds the weights that diverged at step "
            f"{diverged['step']} ({diverged['error']}); resuming from it. To "
            f"continue from the last healthy checkpoint ({diverged['healthy']}) "
            "instead, pass restart_from_healthy=True.",
            RuntimeWarning,
            stacklevel=4,
        )
    if checkpointer.is_writer:
        tf.io.gfile.remove(divergence_file)
    return manifest


def _open_checkpoints(
    model,
    model_dir,
    validation,
    metadata,
    settings,
    strategy,
    keep,
    restart_from_healthy,
    allow_optimizer_change,
):
    """The checkpoints of `model_dir` and the one this run continues from.

    Returns:
        `(checkpointer, manifest, divergence_file)`: all None without a
        `model_dir`; `manifest` is None when the run starts afresh.
    """
    if not model_dir:
        return None, None, None
    model_dir = str(model_dir).rstrip("/")
    divergence_file = f"{model_dir}/{DIVERGENCE_FILE}"
    checkpointer = Checkpointer(
        f"{model_dir}/{CHECKPOINT_SUBDIR}",
        training_state(model) + validation.state(),
        keep=keep,
        is_writer=distribute.is_chief(strategy),
    )
    checkpointer.remove_partial()
    manifest = _resume(
        model,
        checkpointer,
        metadata,
        settings,
        divergence_file,
        restart_from_healthy=restart_from_healthy,
        allow_optimizer_change=allow_optimizer_change or restart_from_healthy,
    )
    if manifest is not None:
        validation.load(manifest)
    return checkpointer, manifest, divergence_file
