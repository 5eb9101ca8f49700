"""What runs after every train step: the NaN / divergence check, scheduled
checkpoints, and SIGTERM (preemption) handling."""

import json
import math
import signal
import threading

import tensorflow as tf

from keras_pt.checkpointing import checkpoint_step
from keras_pt.training.errors import DivergenceError, NonFiniteLossError, TrainingPreempted
from keras_pt.training.validation import _to_float


class _Preemption:
    """Turns SIGTERM into a request to save and stop (main thread only)."""

    def __init__(self, enabled):
        self.requested = False
        self._previous = None
        self._enabled = enabled and threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self._enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True

    def __exit__(self, *exc):
        if self._enabled:
            signal.signal(signal.SIGTERM, self._previous)
        return False


class _Guard:
    """After each step: stop at a non-finite or exploded loss, checkpoint on
    schedule.

    The loss logged at step `s` was computed from the weights of step
    `s - 1`; so when it fails, the checkpoint of the previous logged step (if
    any) holds the weights that produced it, and the last healthy
    checkpoint is the newest one before that step.
    """

    def __init__(
        self,
        checkpointer,
        every,
        steps_per_epoch,
        metadata,
        start_step,
        checkpoint,
        validation,
        divergence_factor=None,
        loss_history=None,
        divergence_file=None,
    ):
        self.divergence_factor = divergence_factor
        # name -> [first, best] logged value, for the divergence check.
        self.loss_history = {k: list(v) for k, v in (loss_history or {}).items()}
        self.divergence_file = divergence_file
        self.validation = validation
        self.checkpointer = checkpointer
        self.every = every
        self.steps_per_epoch = steps_per_epoch
        self.metadata = metadata
        self.step = self.previous = start_step
        self.saved_step = start_step if checkpoint else None
        self.checkpoint = checkpoint
        self.logs = {}

    def after_step(self, step, logs):
        self.step = step
        floats = {k: _to_float(v) for k, v in (logs or {}).items()}
        self.logs = {k: v for k, v in floats.items() if v is not None}
        self._check_losses(step)
        # Validation (and early stopping) at epoch ends, before the epoch's
        # checkpoint, which then holds its outcome.
        stop = False
        if step % self.steps_per_epoch == 0 and step > self.previous:
            stop = self.validation.after_epoch(step // self.steps_per_epoch - 1)
        # With steps_per_execution > 1 steps advance in chunks: save when a
        # multiple of `every` was reached or passed.
        if self.checkpointer is not None and (stop or step // self.every > self.previous // self.every):
            self.save()
        self.previous = step

    def _reference(self, name):
        """The divergence reference of a loss: its best value so far, but at
        least its first value / `divergence_factor` (a loss that fell by
        more than the factor counts as diverged only above its first value).
        None before the first value, or once a value <= 0 was seen (a signed
        objective, for which ratios mean nothing)."""
        if name not in self.loss_history:
            return None
        first, best = self.loss_history[name]
        if best <= 0:
            return None
        return max(best, first / self.divergence_factor)

    def _check_losses(self, step):
        """Raises at a NaN/Inf loss or one above `divergence_factor` x its
        reference; otherwise records the values."""
        where = f"at step {step} (epoch {(step - 1) // self.steps_per_epoch})"
        losses = {k: v for k, v in self.logs.items() if "loss" in k}
        for name, value in losses.items():
            if not math.isfinite(value):
                raise self._diverged(NonFiniteLossError, f"training stopped: {name} = {value} {where}.")
            factor = self.divergence_factor
            reference = self._reference(name) if factor else None
            if reference is not None and value > factor * reference:
                raise self._diverged(
                    DivergenceError,
                    f"training stopped: {name} = {value:.4g} {where} is more than "
                    f"divergence_factor={factor:g} times its reference {reference:.4g} "
                    f"(the best {name} so far, at least the first / divergence_factor): "
                    "training diverged (if this loss may rise that much in a healthy "
                    "run, pass a larger divergence_factor, or None).",
                )
        for name, value in losses.items():
            first, best = self.loss_history.get(name, (value, value))
            self.loss_history[name] = [first, min(best, value)]

    def _healthy_checkpoint(self):
        """The newest checkpoint before the previous logged step."""
        if self.checkpointer is None:
            return None
        earlier = [path for path in self.checkpointer.complete_checkpoints() if checkpoint_step(path) < self.previous]
        return earlier[-1] if earlier else None

    def _diverged(self, error_class, what):
        """The error to raise; records the divergence for a restart."""
        advice = "Lower the learning rate, check the data for NaN or Inf, or use float32"
        if self.checkpointer is None:
            return error_class(f"{what} No checkpoint was written. {advice}.", step=self.step, checkpoint=None)
        healthy = self._healthy_checkpoint()
        if healthy:
            intact = f"The last healthy checkpoint, {healthy}, is intact."
            restart = f"from it (step {checkpoint_step(healthy)})"
        else:
            intact = "No checkpoint before the divergence was confirmed healthy."
            restart = "from step 0"
        if self.divergence_file and self.checkpointer.is_writer:
            # The folder may not exist yet: a divergence before the first checkpoint.
            tf.io.gfile.makedirs(self.divergence_file.rsplit("/", 1)[0])
            record = {
                "step": self.step,
                "first_suspect_step": self.previous,
                "healthy": healthy,
                "error": what,
            }
            with tf.io.gfile.GFile(self.divergence_file, "w") as f:
                f.write(json.dumps(record, indent=1))
        return error_class(
            f"{what} {intact} {advice}; then run again on the same model_dir with "
            f"train(..., restart_from_healthy=True), which continues {restart} with "
            "the new settings and sets aside the newer checkpoints, or start afresh "
            f"in a new model_dir (or delete {self.checkpointer.directory}).",
            step=self.step,
            checkpoint=healthy,
        )

    def save(self):
        if self.checkpointer is None or self.saved_step == self.step:
            return self.checkpoint
        epoch, offset = divmod(self.step, self.steps_per_epoch)
        metadata = dict(
            self.metadata,
            epoch=epoch,
            batches_done_in_epoch=offset,
            divergence={"first_and_best_loss": self.loss_history},
            **self.validation.metadata(),
        )
        try:
            self.checkpoint = self.checkpointer.save(self.step, metadata)
        except FloatingPointError as error:
            raise self._diverged(NonFiniteLossError, f"training stopped at step {self.step}: {error}") from error
        self.saved_step = self.step
        return self.checkpoint


def _stop_preempted(guard):
    path = guard.save()
    raise TrainingPreempted(
        f"SIGTERM: saved step {guard.step} to {path}; run again to resume.",
        step=guard.step,
        checkpoint=path,
    )
