"""One training entry point for every keras_pt model, on any strategy.

`train(build_model, dataset_fn, batch_size=...)` builds the strategy, seeds
everything, sets the mixed-precision policy, builds and compiles the model
inside the strategy's scope, scales the batch size and learning rate by the
replica count where asked, resumes from the newest checkpoint in
`model_dir`, and trains:

- default, one-device, Mirrored and TPU strategies: Keras `fit` (a resumed
  partial epoch in a call of its own, whole epochs in chunks);
- MultiWorkerMirroredStrategy: the model's own `train_step` under
  `strategy.run` in a small loop over `strategy.distribute_datasets_from_function`,
  because Keras 3's `fit` fails there (keras#20585; `loop="fit"` tries it);
  the same loop runs `steps_per_execution > 1` under a multi-replica
  MirroredStrategy, where `fit` fails too (keras#19246).

Exact resumption: checkpoints (`keras_pt.checkpointing`) hold every model
variable (with `SeedGenerator` states), every optimizer, the step counter
and the data position. The data order is a pure function of `(seed, step)`:
`dataset_fn(epoch, batch_size, seed)` must return the same batches for the
same arguments (`keras_pt.data.epoch_batches` does), and a run resumed at
step `s` asks for epoch `s // steps_per_epoch` and skips `s %
steps_per_epoch` batches. A resumed run therefore ends with exactly the
weights of an uninterrupted one.

Validation and early stopping: `validation_fn(model)` runs at the end of
every epoch (on every worker, before the epoch's checkpoint), and
`EarlyStopping` stops training when its value stops improving and restores
the best weights. The early-stopping state (best value, epochs without
improvement, best weights) is part of every checkpoint, so a resumed run
stops at the same epoch with the same weights as an uninterrupted one.

Divergence: training stops with `NonFiniteLossError` at the first step
whose loss is NaN or Inf, and with `DivergenceError` (a subclass) at the
first step whose loss exceeds `divergence_factor` times its reference
(the best loss so far, floored by the first / factor). A checkpoint is
written only after its step passed both checks; the error names the last
healthy checkpoint (one whose weights a later step's loss confirmed) and
records the divergence in `model_dir/divergence.json`, so `train(...,
restart_from_healthy=True)` with new settings continues from that
checkpoint. Resuming with other optimizer settings (class, learning
rate, any `get_config()` value) is refused unless the caller opts in
(`allow_optimizer_change=True`). A corrupt newest checkpoint is renamed
aside, and the previous one is used.

SIGTERM (preemption) makes every worker save a checkpoint at the same
step and stop with `TrainingPreempted`; running again resumes.
"""

import dataclasses
import json
import math
import signal
import threading
import time
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute
from keras_pt.checkpointing import (
    Checkpointer,
    checkpoint_step,
    find_optimizers,
    training_state,
)

LOOPS = ("auto", "fit", "custom")
MIXED_PRECISION_POLICIES = ("mixed_bfloat16", "mixed_float16")
CHECKPOINT_SUBDIR = "checkpoints"
DIVERGENCE_FILE = "divergence.json"
# A loss above this many times the best loss so far counts as divergence.
DIVERGENCE_FACTOR = 1e3


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or Inf loss (or weight) and stopped.

    Attributes:
        step: int. The step (1-based count of train steps) that produced it.
        checkpoint: str or None. The last healthy checkpoint (its weights
            gave a checked loss at a later step), left intact; what
            `train(..., restart_from_healthy=True)` continues from.
    """

    def __init__(self, message, step=None, checkpoint=None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class DivergenceError(NonFiniteLossError):
    """The loss stayed finite but exploded: it exceeded `divergence_factor`
    times the best loss of the run so far. Same attributes as
    `NonFiniteLossError`."""


class TrainingPreempted(RuntimeError):
    """SIGTERM arrived; every worker saved a checkpoint and training stopped.

    Attributes:
        step: int. Steps done, saved in `checkpoint`.
        checkpoint: str or None. The checkpoint to resume from.
    """

    def __init__(self, message, step=None, checkpoint=None):
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
        model: the trained `keras.Model`.
        strategy: the `tf.distribute.Strategy` it trained under.
        history: dict of epoch logs, name -> list (epochs trained in this call;
            a resumed partial epoch logs the means over its remaining steps).
        logs: dict. The logs of the last step (global means over the epoch so
            far).
        initial_step: int. Steps already done when this call started
            (0 unless resumed).
        step: int. Steps done when it returned.
        global_batch_size: int. Examples per step over all replicas.
        steps_per_epoch: int.
        checkpoint: str or None. The newest checkpoint.
        seconds: float. Wall-clock time of the call.
        validation: dict. `validation_fn`'s values, name -> list with one
            entry per completed epoch since step 0 (resumed runs included).
        best_epoch: int or None. With `early_stopping`, the 0-based epoch
            whose validation value was best (its weights are the model's
            when `restore_best_weights`).
        stopped_early: bool. Whether `early_stopping` ended the run.
    """

    model: keras.Model
    strategy: tf.distribute.Strategy
    history: dict
    logs: dict
    initial_step: int
    step: int
    global_batch_size: int
    steps_per_epoch: int
    checkpoint: str
    seconds: float
    validation: dict = dataclasses.field(default_factory=dict)
    best_epoch: int = None
    stopped_early: bool = False


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop `train` when a validation value stops improving.

    Attributes:
        monitor: str. A name `validation_fn` returns, e.g. `"val_accuracy"`.
        mode: str. `"max"`, `"min"` or `"auto"` (max for names with
            "acc", "auc", "precision", "recall" or "f1", else min).
        patience: int. Epochs without improvement before stopping.
        min_delta: float. The least change that counts as improvement.
        restore_best_weights: bool. At the end, set the model's weights to
            those of the best epoch (kept in every checkpoint).
    """

    monitor: str = "val_loss"
    mode: str = "auto"
    patience: int = 0
    min_delta: float = 0.0
    restore_best_weights: bool = True

    def __post_init__(self):
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(
                f"EarlyStopping mode must be 'auto', 'min' or 'max'; got {self.mode!r}."
            )
        if int(self.patience) < 0:
            raise ValueError(f"EarlyStopping patience must be >= 0; got {self.patience}.")
        if float(self.min_delta) < 0:
            raise ValueError(f"EarlyStopping min_delta must be >= 0; got {self.min_delta}.")

    @property
    def maximize(self):
        if self.mode != "auto":
            return self.mode == "max"
        return any(key in self.monitor for key in ("acc", "auc", "precision", "recall", "f1"))


_INFERENCE_FUNCTIONS = weakref.WeakKeyDictionary()


def _inference_function(model):
    """One `tf.function` of `model(inputs, training=False)` per model (a
    short last batch generalises the batch dimension, no further traces)."""
    function = _INFERENCE_FUNCTIONS.get(model)
    if function is None:

        reference = weakref.ref(model)  # the cache must not keep the model alive

        def infer(inputs):
            return reference()(inputs, training=False)

        function = _INFERENCE_FUNCTIONS[model] = tf.function(infer, reduce_retracing=True)
    return function


def classification_accuracy(dataset, name="val_accuracy"):
    """A `validation_fn`: the model's accuracy on `dataset`.

    Args:
        dataset: batched `tf.data.Dataset` of `(inputs, labels)`, labels as
            class ids. Every example counts (a short last batch too).
        name: str. The name of the value. Defaults to `"val_accuracy"`.

    Returns:
        callable `(model) -> {name: accuracy}`. It calls the model (logits
        or probabilities, `(batch, classes)`) with `training=False` in a
        `tf.function`, outside any replica context: every worker computes the
        same value from the same weights, with no cross-replica traffic.
    """
    def validate(model):
        predict = _inference_function(model)
        correct = total = 0
        for inputs, labels in dataset:
            predicted = np.argmax(np.asarray(predict(inputs)), axis=-1)
            labels = np.asarray(labels).reshape(predicted.shape)
            correct += int(np.sum(predicted == labels))
            total += int(labels.size)
        if total == 0:
            raise ValueError("the validation data set is empty.")
        return {name: correct / total}

    return validate


class _Validation:
    """Epoch-end validation and the early-stopping state, checkpointed."""

    def __init__(self, validation_fn, early_stopping, model):
        if early_stopping is not None and validation_fn is None:
            raise ValueError(
                "early_stopping needs a validation_fn that returns "
                f"{early_stopping.monitor!r}."
            )
        if validation_fn is not None and not callable(validation_fn):
            raise ValueError(
                f"validation_fn must be a callable (model) -> dict, got "
                f"{type(validation_fn).__name__}."
            )
        self.fn = validation_fn
        self.early_stopping = early_stopping
        self.model = model
        self.history = {}
        self.logs = {}
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self.stopped = False
        self.best_weights = []
        if early_stopping is not None and early_stopping.restore_best_weights:
            # Plain (per-worker) variables: every worker computes the same
            # validation value, so every worker keeps the same copy.
            with tf.init_scope():
                self.best_weights = [
                    tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False)
                    for w in model.weights
                ]

    def state(self):
        """Checkpointed variables: the best weights."""
        return [(f"early_stopping/best/{i}", v) for i, v in enumerate(self.best_weights)]

    def metadata(self):
        if self.fn is None:
            return {}
        return {
            "validation": {
                "history": self.history,
                "best": self.best,
                "best_epoch": self.best_epoch,
                "wait": self.wait,
                "stopped": self.stopped,
            }
        }

    def load(self, manifest):
        saved = manifest.get("validation")
        if self.fn is None or not saved:
            return
        self.history = {k: list(v) for k, v in saved["history"].items()}
        self.best, self.best_epoch = saved["best"], saved["best_epoch"]
        self.wait, self.stopped = int(saved["wait"]), bool(saved["stopped"])

    def after_epoch(self, epoch):
        """Validates after epoch `epoch` (0-based); returns True to stop."""
        if self.fn is None:
            return False
        logs = self.fn(self.model)
        if not isinstance(logs, dict):
            raise ValueError(
                f"validation_fn must return a dict of name -> value, got {type(logs).__name__}."
            )
        self.logs = {name: _to_float(value) for name, value in logs.items()}
        for name, value in self.logs.items():
            self.history.setdefault(name, []).append(value)
        stopping = self.early_stopping
        if stopping is None:
            return False
        if stopping.monitor not in self.logs:
            raise ValueError(
                f"early_stopping monitors {stopping.monitor!r}, but validation_fn "
                f"returned only {sorted(self.logs)}."
            )
        value = self.logs[stopping.monitor]
        sign = 1.0 if stopping.maximize else -1.0
        if value is not None and math.isfinite(value) and (
            self.best is None or sign * (value - self.best) > float(stopping.min_delta)
        ):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            for copy, weight in zip(self.best_weights, self.model.weights):
                copy.assign(weight.value)
        else:
            self.wait += 1
            self.stopped = self.wait >= int(stopping.patience)
        if self.stopped:
            self.model.stop_training = True  # both loops end at this step
        return self.stopped

    def restore_best(self):
        """Sets the best epoch's weights (with `restore_best_weights`)."""
        if self.best_weights and self.best_epoch is not None:
            for weight, copy in zip(self.model.weights, self.best_weights):
                weight.assign(copy)


@keras.saving.register_keras_serializable(package="keras_pt")
class ScaledLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule multiplied by a constant factor."""

    def __init__(self, schedule, factor):
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "factor": self.factor,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**config)


def scale_learning_rates(model, factor):
    """Multiplies the learning rate of every optimizer of `model` by `factor`.

    Constant rates are multiplied in place; a `LearningRateSchedule` is
    wrapped in `ScaledLearningRate`.
    """
    for _, optimizer in find_optimizers(model):
        current = optimizer.learning_rate
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if isinstance(inner._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            optimizer.learning_rate = ScaledLearningRate(inner._learning_rate, factor)
        else:
            optimizer.learning_rate = float(keras.ops.convert_to_numpy(current)) * factor


def check_static_batches(dataset, batch_size, fully_defined=False):
    """Raises a ValueError unless every batch has `batch_size` rows, statically.

    Args:
        dataset: a batched `tf.data.Dataset`.
        batch_size: int. The global batch size.
        fully_defined: bool. Also require every other dimension to be static
            (what TPUs need). Defaults to False.
    """
    for spec in tf.nest.flatten(dataset.element_spec):
        shape = spec.shape
        if shape.rank is None or shape.rank == 0 or shape[0] != batch_size:
            raise ValueError(
                f"every batch must have a static leading dimension of "
                f"batch_size={batch_size}, but the data set yields {spec}. Batch "
                "with `drop_remainder=True` (keras_pt.data.epoch_batches does) "
                "and the batch size train() passes to the data set function."
            )
        if fully_defined and not shape.is_fully_defined():
            raise ValueError(
                f"TPUs need fully static shapes, but the data set yields {spec}; "
                "pad or resize to a fixed shape in the input pipeline."
            )


def _check_policy(mixed_precision):
    if mixed_precision in (None, "", "float32", "none"):
        return None
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"unknown mixed_precision {mixed_precision!r}; choose one of "
            f"{', '.join(MIXED_PRECISION_POLICIES)} (mixed_bfloat16 for TPUs and "
            "CPUs, mixed_float16 with loss scaling for GPUs) or None for float32."
        )
    return mixed_precision


def _is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _is_tpu(strategy):
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def _choose_loop(loop, strategy, model):
    """`"auto"`: the `strategy.run` loop where Keras 3.15's `fit` fails.

    That is under MultiWorkerMirroredStrategy (keras#20585) and under a
    multi-replica MirroredStrategy with `steps_per_execution > 1`
    (keras#19246); `fit` everywhere else.
    """
    if loop != "auto":
        return loop
    if _is_multi_worker(strategy):
        return "custom"
    per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    if (
        isinstance(strategy, tf.distribute.MirroredStrategy)
        and strategy.num_replicas_in_sync > 1
        and per_execution > 1
    ):
        return "custom"
    return "fit"


def _to_float(value):
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        return None


def _metric_results(model):
    logs = {}
    for metric in model.metrics:
        result = metric.result()
        if isinstance(result, dict):
            logs.update(result)
        else:
            logs[metric.name] = result
    return logs


def _without_names(value):
    if isinstance(value, dict):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, list):
        return [_without_names(v) for v in value]
    return value


def _flatten(settings, prefix=""):
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def optimizer_settings(model):
    """The settings of every optimizer of `model`, as saved in checkpoints.

    Returns:
        dict, optimizer attribute name -> `{"class": class name,
        **get_config()}` as JSON gives it back, without the (per-process
        uniquified) `name`s. The learning rate is its current value (after
        `scale_learning_rate`), or the serialized schedule.
    """
    settings = {
        name: {"class": type(optimizer).__name__, **optimizer.get_config()}
        for name, optimizer in find_optimizers(model)
    }
    # Values JSON cannot hold are compared by type (a repr has addresses).
    encoded = json.dumps(settings, default=lambda value: f"<{type(value).__name__}>")
    return _without_names(json.loads(encoded))


def _constant_learning_rates(model):
    """`{name: float}` for the optimizers whose learning rate is a variable
    (saved in checkpoints), not a schedule."""
    rates = {}
    for name, optimizer in find_optimizers(model):
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if not isinstance(inner._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            rates[name] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return rates


def _read_json(path):
    """The JSON in `path`, or None when there is none (or the chief has just
    removed it)."""
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            return json.loads(f.read())
    except tf.errors.NotFoundError:
        return None


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
        if self.checkpointer is not None and (
            stop or step // self.every > self.previous // self.every
        ):
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
                raise self._diverged(
                    NonFiniteLossError, f"training stopped: {name} = {value} {where}."
                )
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
        earlier = [
            path
            for path in self.checkpointer.complete_checkpoints()
            if checkpoint_step(path) < self.previous
        ]
        return earlier[-1] if earlier else None

    def _diverged(self, error_class, what):
        """The error to raise; records the divergence for a restart."""
        advice = "Lower the learning rate, check the data for NaN or Inf, or use float32"
        if self.checkpointer is None:
            return error_class(
                f"{what} No checkpoint was written. {advice}.", step=self.step, checkpoint=None
            )
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
            raise self._diverged(
                NonFiniteLossError, f"training stopped at step {self.step}: {error}"
            ) from error
        self.saved_step = self.step
        return self.checkpoint


class _FitCallback(keras.callbacks.Callback):
    """Feeds `fit`'s batch ends to the guard; stops on SIGTERM.

    `first_step(epoch)` is the global step before the first batch that this
    `fit` call trains in Keras epoch `epoch`; `count` the batches per epoch.
    """

    def __init__(self, guard, preemption):
        super().__init__()
        self.guard = guard
        self.preemption = preemption
        self.first_step = lambda epoch: 0
        self.count = 0
        self.base = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.base = self.first_step(epoch)

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1, Keras reports the last execution of
        # an epoch as a full one even when fewer steps were left.
        self.guard.after_step(self.base + min(batch + 1, self.count), logs)
        if self.preemption.requested:
            _stop_preempted(self.guard)

    def on_epoch_end(self, epoch, logs=None):
        # The epoch's validation values, for the callbacks after this one
        # (TensorBoard, History).
        if logs is not None and self.guard.step % self.guard.steps_per_epoch == 0:
            logs.update(self.guard.validation.logs)


def _stop_preempted(guard):
    path = guard.save()
    raise TrainingPreempted(
        f"SIGTERM: saved step {guard.step} to {path}; run again to resume.",
        step=guard.step,
        checkpoint=path,
    )


# Whole epochs trained by one `fit` call (their data sets concatenated).
EPOCHS_PER_FIT = 32


def _fit_loop(model, epoch_dataset, start, total, spe, guard, preemption, callbacks, verbose):
    """Keras `fit`: a resumed partial epoch alone, whole epochs in chunks.

    Chunks of whole epochs run as one `fit` call over their concatenated
    data sets with `steps_per_epoch` (Keras keeps one iterator across the
    epochs), so callbacks see true epochs and a run of many short epochs
    does not pay one `fit` call each. Partial epochs (a resumed one, the
    last one of a `steps` budget) and epochs that `steps_per_execution`
    does not divide run as single-epoch calls whose data ends with them.
    """
    history = {}
    adapter = _FitCallback(guard, preemption)
    per_execution = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    step = start
    while step < total:
        epoch, offset = divmod(step, spe)
        whole = (total - step) // spe if offset == 0 and spe % per_execution == 0 else 0
        if whole:
            epochs = min(whole, EPOCHS_PER_FIT)
            dataset = epoch_dataset(epoch).take(spe)
            for e in range(epoch + 1, epoch + epochs):
                dataset = dataset.concatenate(epoch_dataset(e).take(spe))
            count = spe
            adapter.first_step = lambda e: e * spe
        else:
            epochs = 1
            count = min(spe, total - epoch * spe) - offset
            dataset = epoch_dataset(epoch).skip(offset).take(count)
            adapter.first_step = lambda e, base=step: base
        adapter.count = count
        result = model.fit(
            dataset,
            epochs=epoch + epochs,
            initial_epoch=epoch,
            steps_per_epoch=count,
            callbacks=[adapter] + list(callbacks),
            shuffle=False,
            verbose=verbose,
        )
        for name, values in result.history.items():
            history.setdefault(name, []).extend(values)
        if guard.step == step:  # nothing ran (stopped before the first step)
            break
        step = guard.step
        if model.stop_training:
            break
    return history


def _make_train_function(model, strategy, local_batch):
    train_step = model.train_step
    if model.jit_compile:
        train_step = tf.function(train_step, jit_compile=True)

    def step_fn(data):
        # MultiWorkerMirroredStrategy's iterators drop the static batch
        # dimension; restore it (and check it) for shape-dependent steps.
        data = tf.nest.map_structure(
            lambda t: tf.ensure_shape(t, [local_batch] + t.shape[1:].as_list()), data
        )
        return train_step(data)

    # A per-worker flag, summed over workers: every worker learns of a
    # SIGTERM sent to any one of them at the same step.
    flag = tf.Variable(0, dtype=tf.int32, trainable=False, name="preempted")

    @tf.function
    def train_function(iterator, num_steps):
        if num_steps == 1:
            strategy.run(step_fn, args=(next(iterator),))
        else:
            for _ in tf.range(num_steps):
                strategy.run(step_fn, args=(next(iterator),))
        preempted = strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(flag)), axis=None
        )
        return _metric_results(model), preempted

    return train_function, flag


def _distribute(strategy, dataset, global_batch):
    """Each replica's slice of every global batch, with static shapes.

    Every input pipeline (one per worker) reads the same global batches and
    keeps the slices of its own replicas, in replica order: replica `r`
    trains on rows `[r * B / N, (r + 1) * B / N)` of each global batch, as
    its share of the one-device step. (`experimental_distribute_dataset`
    under MultiWorkerMirroredStrategy loses the static batch dimension.)
    """

    def per_replica(context):
        local = context.get_per_replica_batch_size(global_batch)
        replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * replicas_here * local

        def split(*batch):
            batch = batch[0] if len(batch) == 1 else batch
            return tf.nest.map_structure(
                lambda t: tf.reshape(
                    t[first : first + replicas_here * local],
                    [replicas_here, local] + t.shape[1:].as_list(),
                ),
                batch,
            )

        return dataset.map(split).unbatch()

    return strategy.distribute_datasets_from_function(per_replica)


def _custom_loop(
    model, strategy, epoch_dataset, start, total, spe, guard, preemption, callbacks, verbose
):
    per_execution = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=math.ceil(total / spe),
        steps=spe,
        model=model,
    )
    history, logs = {}, {}
    train_function = flag = None
    model.stop_training = False
    callback_list.on_train_begin()
    step = start
    while step < total:
        epoch, offset = divmod(step, spe)
        count = min(spe, total - epoch * spe) - offset
        dataset = epoch_dataset(epoch)
        global_batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
        if train_function is None:
            train_function, flag = _make_train_function(
                model, strategy, global_batch // strategy.num_replicas_in_sync
            )
        iterator = iter(_distribute(strategy, dataset.skip(offset).take(count), global_batch))
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        done = 0
        while done < count:
            chunk = min(per_execution, count - done)
            callback_list.on_train_batch_begin(offset + done)
            if preemption.requested:
                flag.assign(1)
            logs, preempted = train_function(iterator, chunk)
            done += chunk
            step = epoch * spe + offset + done
            guard.after_step(step, logs)
            callback_list.on_train_batch_end(offset + done - 1, logs)
            if int(preempted) > 0:
                _stop_preempted(guard)
            if model.stop_training:
                break
        epoch_logs = dict(guard.logs)
        if step % spe == 0:
            epoch_logs.update(guard.validation.logs)
        callback_list.on_epoch_end(epoch, epoch_logs)
        for name, value in epoch_logs.items():
            history.setdefault(name, []).append(value)
        if model.stop_training:
            break
    callback_list.on_train_end(guard.logs)
    return history


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
            stacklevel=3,
        )
    if checkpointer.is_writer:
        tf.io.gfile.remove(divergence_file)
    return manifest


def train(
    build_model,
    dataset_fn,
    *,
    batch_size,
    epochs=1,
    steps=None,
    steps_per_epoch=None,
    strategy="auto",
    tpu=None,
    devices=None,
    scale_batch_size=False,
    scale_learning_rate=False,
    mixed_precision=None,
    model_dir=None,
    checkpoint_every=None,
    keep_checkpoints=3,
    callbacks=None,
    seed=0,
    loop="auto",
    handle_sigterm=True,
    validation_fn=None,
    early_stopping=None,
    config=None,
    divergence_factor=DIVERGENCE_FACTOR,
    restart_from_healthy=False,
    allow_optimizer_change=False,
    verbose=0,
):
    """Builds, resumes and trains a model under a `tf.distribute` strategy.

    Args:
        build_model: callable `() -> keras.Model`. Makes AND compiles the
            model; called inside the strategy's scope with the
            mixed-precision policy set. The model may own its `train_step`
            and several optimizers (kept as attributes and built by
            `compile`, like the GAN's); randomness must come from
            `keras.random.SeedGenerator`s the model holds.
        dataset_fn: callable `(epoch, batch_size, seed) -> tf.data.Dataset`
            of the epoch's global batches (`batch_size` examples each, static
            shapes). It must return the same batches in the same order for
            the same arguments (e.g. `keras_pt.data.epoch_batches`), which
            makes resumption exact.
        batch_size: int. Global batch size (split over the replicas).
        epochs: int. Epochs to train, counted from step 0. Defaults to 1.
        steps: int or None. Total train steps instead of `epochs`.
        steps_per_epoch: int or None. Defaults to the cardinality of the
            epoch-0 data set.
        strategy: str or `tf.distribute.Strategy`. A
            `keras_pt.distribute.get_strategy` name. Defaults to `"auto"`.
        tpu: str or None. TPU name or `grpc://` address (`"tpu"`/`"auto"`).
        devices: list of str or None. Devices of `"mirrored"`.
        scale_batch_size: bool. Multiply `batch_size` by the number of
            replicas (keep the per-replica batch of a one-device run).
            Defaults to False.
        scale_learning_rate: bool. Multiply every optimizer's learning rate
            by the number of replicas (the linear scaling rule; use with
            `scale_batch_size`). Defaults to False.
        mixed_precision: str or None. `"mixed_bfloat16"` (TPUs, CPUs) or
            `"mixed_float16"` (GPUs; `compile` wraps the optimizer in a
            `LossScaleOptimizer`). Variables, losses and metrics stay
            float32. Defaults to None (float32).
        model_dir: str or None. Checkpoints go to `model_dir/checkpoints`;
            a run finds the newest readable one there and continues from
            it. Defaults to None (no checkpoints).
        checkpoint_every: int or None. Steps between checkpoints. Defaults
            to once per epoch; a checkpoint is also written at the end.
        keep_checkpoints: int. Newest checkpoints kept. Defaults to 3.
        callbacks: list of `keras.callbacks.Callback`. Under `fit` they may
            see several `fit` calls (a resumed partial epoch, then up to
            `EPOCHS_PER_FIT` whole epochs per call), with true epoch numbers.
        seed: int. Seeds Python, NumPy and TensorFlow
            (`keras.utils.set_random_seed`) before the model is built, and is
            passed to `dataset_fn`. Defaults to 0.
        loop: str. `"fit"`, `"custom"` (the `strategy.run` loop) or
            `"auto"`: custom where Keras 3.15's `fit` fails (under
            MultiWorkerMirroredStrategy, keras#20585, and under a
            multi-replica MirroredStrategy with `steps_per_execution > 1`,
            keras#19246), else fit. Defaults to `"auto"`.
        handle_sigterm: bool. On SIGTERM save a checkpoint and raise
            `TrainingPreempted` (main thread only). Defaults to True.
        validation_fn: callable `(model) -> dict of name -> float`, or None.
            Called at the end of every epoch on every worker, before that
            epoch's checkpoint; its values join the epoch logs (callbacks,
            `history`) and `TrainResult.validation`. It must give every
            worker the same values and use no cross-replica communication:
            e.g. `classification_accuracy(dataset)`. Defaults to None.
        early_stopping: `EarlyStopping` or None. Stop when its `monitor`
            (a `validation_fn` value) has not improved for `patience`
            epochs, then restore the best epoch's weights. Its state is
            checkpointed: a resumed run stops where an uninterrupted one
            would, and a stopped run stays stopped. Defaults to None.
        config: JSON-able dict or None. The settings that define the run
            (data, hyperparameters, a fingerprint of the starting weights),
            saved in every checkpoint: resuming from a checkpoint written
            with another `config` is refused. Defaults to None.
        divergence_factor: float or None. A logged loss (any log whose name
            contains "loss"; Keras's running mean over the epoch so far)
            above `divergence_factor` times its reference stops training
            with `DivergenceError`, before that step's checkpoint. The
            reference is the best (lowest) value of that loss so far in the
            run, but at least its first value / `divergence_factor`; first
            and best values are kept in every checkpoint. The best value
            rather than a recent one, because a diverging run raises its
            recent values step by step; the floor, because a loss that fell
            by more than the factor (training loss near zero) may spike on
            a hard batch: it counts as diverged only above its first value.
            The factor is large because an exploding loss grows
            geometrically and passes any fixed factor within a step or two,
            while a healthy loss may rise severalfold (a GAN player losing
            ground). A loss that has been <= 0 (a signed objective, e.g. a
            Wasserstein GAN's `g_loss`) is not compared; one that starts
            near zero and grows in a healthy run needs a larger factor or
            None. None turns the check off (NaN and Inf still stop
            training). Defaults to 1e3.
        restart_from_healthy: bool. After a `NonFiniteLossError` or
            `DivergenceError` in `model_dir`, continue from the last healthy
            checkpoint it named (or from step 0 when there was none) with
            this call's settings: the newer checkpoints are renamed aside
            (`ckpt-*.diverged-<n>`), and this call's optimizer settings
            (e.g. a lower learning rate) and `config` replace the
            checkpoint's, as with `allow_optimizer_change`. Batch size,
            steps per epoch and seed must still match. Without a recorded
            divergence it resumes from the newest checkpoint. Defaults to
            False.
        allow_optimizer_change: bool. Resume from a checkpoint written with
            other optimizer settings (`optimizer_settings`: class, learning
            rate, any `get_config()` value) and continue with this call's
            settings; the checkpoint's optimizer variables (moments,
            iterations) are kept, so the optimizers' variables must still
            match. Otherwise such a resume is refused with the differing
            settings. Defaults to False.
        verbose: int. Keras verbosity. Defaults to 0.

    Returns:
        A `TrainResult`.

    Raises:
        NonFiniteLossError: at the first NaN/Inf loss (or weight); the last
            healthy checkpoint stays intact and the message says how to
            continue from it (`restart_from_healthy=True`).
        DivergenceError: at the first loss above `divergence_factor` times
            the best so far (a `NonFiniteLossError`).
        TrainingPreempted: after SIGTERM, once the checkpoint is saved.
        ValueError: for bad arguments, a data set without static batches,
            or a checkpoint written by another model, data setting,
            `config` or optimizer settings.

    Example:

    >>> import numpy as np, keras_pt
    >>> images = tf.data.Dataset.from_tensor_slices(np.random.rand(64, 8, 8, 1).astype("float32"))
    >>> def build():
    ...     model = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
    ...     model.compile(optimizer="adam")
    ...     return model
    >>> result = train(build, lambda epoch, batch_size, seed: keras_pt.data.epoch_batches(
    ...     images, batch_size, seed, epoch), batch_size=16, epochs=2, strategy="default")
    >>> result.step
    8
    """
    start_time = time.time()
    policy = _check_policy(mixed_precision)
    if loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}; choose one of {', '.join(LOOPS)}.")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if steps is None and int(epochs) <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}.")
    if steps is not None and int(steps) <= 0:
        raise ValueError(f"steps must be positive, got {steps}.")
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = distribute.get_strategy(strategy, tpu=tpu, devices=devices)
    replicas = strategy.num_replicas_in_sync
    global_batch = int(batch_size) * (replicas if scale_batch_size else 1)
    if global_batch % replicas:
        raise ValueError(
            f"the global batch size {global_batch} does not split evenly over "
            f"{replicas} replicas; use a multiple of {replicas} or "
            "scale_batch_size=True."
        )

    keras.utils.set_random_seed(seed)
    previous_policy = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        with strategy.scope():
            model = build_model()
        if not isinstance(model, keras.Model):
            raise ValueError(f"build_model must return a keras.Model, got {type(model).__name__}.")
        if not model.compiled:
            raise ValueError("build_model must compile the model (inside the strategy scope).")
        loop = _choose_loop(loop, strategy, model)

        def epoch_dataset(epoch):
            dataset = dataset_fn(epoch, global_batch, seed)
            if not isinstance(dataset, tf.data.Dataset):
                raise ValueError(
                    f"dataset_fn must return a tf.data.Dataset, got {type(dataset).__name__}."
                )
            check_static_batches(dataset, global_batch, fully_defined=_is_tpu(strategy))
            options = tf.data.Options()
            # Every worker reads the same global batch and takes its
            # replicas' slices of it: the same batches as on one device.
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
            options.deterministic = True
            return dataset.with_options(options)

        first = epoch_dataset(0)
        spe = steps_per_epoch
        if spe is None:
            spe = int(first.cardinality())
            if spe <= 0:
                raise ValueError(
                    "the epoch data set has unknown or infinite length; pass "
                    "steps_per_epoch."
                )
        spe = int(spe)
        if spe <= 0:
            raise ValueError(f"steps_per_epoch must be positive, got {spe}.")
        total = int(steps) if steps is not None else int(epochs) * spe

        # Build every variable (weights, optimizer slots) before restoring.
        with strategy.scope():
            model._symbolic_build(data_batch=first.element_spec)
        # Fine-tuning heads set their feature statistics (and the SVM head
        # its solved probe) from the first epoch's data, as their own `fit`
        # would, so every loop starts alike; a restored checkpoint then
        # overwrites them.
        adapt = getattr(model, "adapt", None)
        if callable(adapt) and getattr(model, "adapted", True) is False:
            with strategy.scope():
                adapt(first)
        if scale_learning_rate and replicas > 1:
            scale_learning_rates(model, replicas)

        validation = _Validation(validation_fn, early_stopping, model)
        metadata = {"batch_size": global_batch, "steps_per_epoch": spe, "seed": int(seed)}
        if config is not None:
            # As JSON gives it back (tuples as lists).
            metadata["config"] = json.loads(json.dumps(config))
        settings = optimizer_settings(model)  # this call's, before a restore
        checkpointer, checkpoint, start, manifest, divergence_file = None, None, 0, None, None
        if model_dir:
            model_dir = str(model_dir).rstrip("/")
            divergence_file = f"{model_dir}/{DIVERGENCE_FILE}"
            checkpointer = Checkpointer(
                f"{model_dir}/{CHECKPOINT_SUBDIR}",
                training_state(model) + validation.state(),
                keep=keep_checkpoints,
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
                checkpoint, start = manifest["path"], int(manifest["step"])
                validation.load(manifest)
        loss_history = ((manifest or {}).get("divergence") or {}).get("first_and_best_loss")
        guard = _Guard(
            checkpointer,
            checkpoint_every or spe,
            spe,
            dict(metadata, optimizers=settings),
            start,
            checkpoint,
            validation,
            divergence_factor=divergence_factor,
            loss_history=loss_history,
            divergence_file=divergence_file,
        )
        history = {}
        if start < total and not validation.stopped:
            with _Preemption(handle_sigterm) as preemption:
                args = (epoch_dataset, start, total, spe, guard, preemption, callbacks or [])
                if loop == "custom":
                    history = _custom_loop(model, strategy, *args, verbose)
                else:
                    history = _fit_loop(model, *args, verbose)
        guard.save()
        # After the last checkpoint, which keeps the last step's weights.
        validation.restore_best()
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return TrainResult(
        model=model,
        strategy=strategy,
        history=history,
        logs=guard.logs,
        initial_step=start,
        step=guard.step,
        global_batch_size=global_batch,
        steps_per_epoch=spe,
        checkpoint=guard.checkpoint,
        seconds=time.time() - start_time,
        validation=validation.history,
        best_epoch=validation.best_epoch,
        stopped_early=validation.stopped,
    )
