"""The package's own messages for bad inputs to a model's `__call__`, `fit`,
`evaluate` and `predict`.

Keras answers a Python string with "Only input tensors may be passed as
positional arguments", an empty list with `KeyError: 'pop from an empty
set'`, and trains zero steps on an empty data set without a word. The
public models mix in `InputCheckMixin`, which checks on the host, before
Keras sees the data, and says what to pass instead; labels out of
`[0, num_classes)` are refused before the first step when they are arrays,
and in the input pipeline when they come in a `tf.data.Dataset`.
"""

import numpy as np
import tensorflow as tf


def _is_symbolic(x):
    return type(x).__name__ == "KerasTensor" or (isinstance(x, tf.Tensor) and not tf.executing_eagerly())


def _is_string(x):
    if isinstance(x, (str, bytes)):
        return True
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, (str, bytes)) for v in x):
        return True
    return isinstance(x, np.ndarray) and x.dtype.kind in "OSU"


def _describe(x):
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"a {type(x).__name__}"


class InputCheckMixin:
    """Host-side input checks for a model; mix in before `keras.Model`.

    Class attributes:
        TAKES: str. What the model takes, for the messages.
        TAKES_TEXT: bool. Raw strings are inputs (text models).
    """

    TAKES = "a float array or tensor of shape (batch, ...)"
    TAKES_TEXT = False

    # === Checks ===

    def _check_x(self, x, where):
        name = type(self).__name__
        if x is None:
            raise ValueError(f"{name}.{where} got no inputs (x=None); pass {self.TAKES}.")
        if _is_symbolic(x):
            return
        if isinstance(x, (list, tuple, dict)) and len(x) == 0:
            raise ValueError(
                f"{name}.{where} got an empty {type(x).__name__}; pass at least one example: {self.TAKES}."
            )
        if not self.TAKES_TEXT and _is_string(x):
            raise ValueError(
                f"{name}.{where} takes {self.TAKES}, not text ({_describe(x)}); pass NumPy "
                "arrays or tensors (keras_pt.data.load_images reads image files and folders)."
            )
        if isinstance(x, np.ndarray) and x.ndim and x.shape[0] == 0:
            raise ValueError(f"{name}.{where} got 0 examples (an array of shape {x.shape}); pass at least one.")
        if isinstance(x, tf.data.Dataset) and int(x.cardinality()) == 0:
            raise ValueError(
                f"{name}.{where} got an empty tf.data.Dataset (0 batches); check the source, its "
                "filters and batch size (drop_remainder drops a last short batch)."
            )

    def _label_limit(self):
        return getattr(self, "num_classes", None)

    def _checked_labels(self, x, y, where):
        """`(x, y)` with labels checked against `[0, num_classes)`."""
        limit = self._label_limit()
        if limit is None:
            return x, y
        name = type(self).__name__
        advice = f"labels of {name}.{where} must be class ids in [0, num_classes={limit})"
        if y is not None and not _is_symbolic(y):
            labels = np.asarray(y)
            if labels.dtype.kind in "iuf" and labels.size:
                bad = labels[(labels < 0) | (labels >= limit)]
                if bad.size:
                    raise ValueError(
                        f"{advice}; got {sorted(set(bad.tolist()))[:5]}. Map the labels to "
                        "0..num_classes-1 or raise num_classes."
                    )
        if isinstance(x, tf.data.Dataset) and isinstance(x.element_spec, tuple) and len(x.element_spec) >= 2:

            def check(features, labels, *rest):
                ids = tf.cast(labels, tf.int64)
                ok = tf.reduce_all((ids >= 0) & (ids < limit))
                with tf.control_dependencies(
                    [
                        tf.debugging.Assert(
                            ok, [advice + "; got values from", tf.reduce_min(ids), "to", tf.reduce_max(ids)]
                        )
                    ]
                ):
                    labels = tf.identity(labels)
                return (features, labels, *rest)

            x = x.map(check)
        return x, y

    # === Keras entry points ===

    def __call__(self, *args, **kwargs):
        if args:
            self._check_x(args[0], "call")
        return super().__call__(*args, **kwargs)

    def _prepared(self, x, y, where, kwargs):
        """Hook: the checked `(x, y)` as Keras takes them (text models turn
        raw strings into a data set; heads adapt before their first fit).
        May pop from `kwargs`."""
        del where, kwargs
        return x, y

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_x(x, "fit")
        x, y = self._prepared(*self._checked_labels(x, y, "fit"), "fit", kwargs)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_x(x, "evaluate")
        x, y = self._prepared(*self._checked_labels(x, y, "evaluate"), "evaluate", kwargs)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_x(x, "predict")
        return super().predict(x, *args, **kwargs)
