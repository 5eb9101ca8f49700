"""Epoch-end validation and early stopping, with checkpointed state."""

import dataclasses
import math
import weakref

import keras
import numpy as np
import tensorflow as tf


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
            raise ValueError(f"EarlyStopping mode must be 'auto', 'min' or 'max'; got {self.mode!r}.")
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


def _to_float(value):
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        return None


class _Validation:
    """Epoch-end validation and the early-stopping state, checkpointed."""

    def __init__(self, validation_fn, early_stopping, model):
        if early_stopping is not None and validation_fn is None:
            raise ValueError(f"early_stopping needs a validation_fn that returns {early_stopping.monitor!r}.")
        if validation_fn is not None and not callable(validation_fn):
            raise ValueError(f"validation_fn must be a callable (model) -> dict, got {type(validation_fn).__name__}.")
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
                self.best_weights = [tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False) for w in model.weights]

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
            raise ValueError(f"validation_fn must return a dict of name -> value, got {type(logs).__name__}.")
        self.logs = {name: _to_float(value) for name, value in logs.items()}
        for name, value in self.logs.items():
            self.history.setdefault(name, []).append(value)
        stopping = self.early_stopping
        if stopping is None:
            return False
        if stopping.monitor not in self.logs:
            raise ValueError(
                f"early_stopping monitors {stopping.monitor!r}, but validation_fn returned only {sorted(self.logs)}."
            )
        value = self.logs[stopping.monitor]
        sign = 1.0 if stopping.maximize else -1.0
        if (
            value is not None
            and math.isfinite(value)
            and (self.best is None or sign * (value - self.best) > float(stopping.min_delta))
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
