"""EncoderClassifier: the shared base of the fine-tuning heads."""

import copy

import keras
import numpy as np
import tensorflow as tf

from keras_pt.layers.feature_standardization import FeatureStandardization
from keras_pt.models.input_checks import InputCheckMixin


def clone_encoder(encoder):
    """A copy of `encoder` with the same weights and no shared variables."""
    if isinstance(encoder, keras.Model):
        clone = keras.models.clone_model(encoder)
    else:
        clone = keras.layers.deserialize(keras.layers.serialize(encoder))
    weights = encoder.get_weights()
    if weights:
        if not clone.weights:
            raise ValueError(
                f"cannot copy the built layer {encoder.name!r} of type "
                f"{type(encoder).__name__}; pass copy_encoder=False to train it "
                "in place, or wrap it in a functional keras.Model."
            )
        clone.set_weights(weights)
    clone.trainable = encoder.trainable
    return clone


class EncoderClassifier(InputCheckMixin, keras.Model):
    """A classification head on any encoder: `logits = head(standardize(encoder(x)))`.

    Subclasses make `self.head_layers` (applied in order to the standardised
    features) and may override `compute_loss`. The encoder is frozen when
    `trainable_encoder=False` (a linear probe) and trained with the head
    otherwise (full fine-tuning); flip it with `set_encoder_trainable` and
    compile again.

    The head trains a *copy* of the encoder it is given (same weights, its
    own variables), so the model passed in (e.g. an autoencoder's
    `encoder`) is never frozen or changed by the head; the trained encoder
    is `head.encoder`. `copy_encoder=False` trains the given encoder in
    place instead (and sets its `trainable` flag).

    Features are standardised inside the head with the mean and variance of
    the encoder's features on the training examples (`FeatureStandardization`,
    saved with the model). `adapt(x)` computes them; the first `fit` calls it
    on its training data when it has not run yet (pass a finite data set, or
    call `adapt` on the labelled examples first when training on a repeated
    one). Fine-tuning keeps the statistics of the frozen features.

    `compile` defaults to the head's loss and an `"accuracy"` metric. Labels
    are int class indices in `[0, num_classes)`; an out-of-range label stops
    training with an error (graph mode; under `jit_compile=True` check labels
    in the input pipeline, e.g. with `keras_pt.data.check_labels`).
    """

    TAKES = "what its encoder takes: a float array or tensor of shape (batch, ...)"

    def __init__(
        self,
        encoder,
        num_classes,
        trainable_encoder=False,
        standardize=True,
        copy_encoder=True,
        **kwargs,
    ):
        if not isinstance(encoder, keras.layers.Layer):
            raise ValueError(
                f"encoder must be a keras Model or Layer mapping inputs to "
                f"(batch, features), got {type(encoder).__name__}."
            )
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        super().__init__(**kwargs)

        # === Layers ===
        self.encoder = clone_encoder(encoder) if copy_encoder else encoder
        self.standardization = FeatureStandardization(name="standardization")

        # === Config ===
        self.num_classes = int(num_classes)
        self.trainable_encoder = bool(trainable_encoder)
        self.standardize = bool(standardize)
        self.encoder.trainable = self.trainable_encoder

    def set_encoder_trainable(self, trainable):
        """Freezes (False) or unfreezes (True) the encoder; compile again after."""
        self.trainable_encoder = bool(trainable)
        self.encoder.trainable = self.trainable_encoder

    def call(self, inputs, training=False):
        features = self.encoder(inputs, training=training and self.trainable_encoder)
        if len(features.shape) != 2:
            raise ValueError(
                f"the encoder must return (batch, features), got shape "
                f"{tuple(features.shape)}; pool or flatten its output."
            )
        x = self.standardization(features)  # (batch, features)
        for layer in self.head_layers:
            x = layer(x, training=training)
        return x  # (batch, num_classes)

    @property
    def adapted(self):
        """Whether `adapt` has run (the training-set statistics are set)."""
        return self.standardization.built and float(self.standardization.num_examples.numpy()) > 0

    @property
    def num_train_examples(self):
        """Number of training examples `adapt` saw (a float tensor; 0 before)."""
        return self.standardization.num_examples

    def features(self, x, y=None, batch_size=256):
        """The encoder's features of `x` and the labels, as NumPy arrays.

        Args:
            x: inputs (an array), or a finite `tf.data.Dataset` of inputs or
                `(inputs, labels)` pairs, batched or not.
            y: labels of an array `x`, or None.
            batch_size: int. Batch size of the feature computation.

        Returns:
            `(features, labels)`: float64 `(examples, features)` and int
            `(examples,)`, or None where no labels came with `x`.
        """
        features, labels = [], []
        for inputs, batch_labels in _input_batches(x, y, batch_size, self.encoder):
            outputs = keras.ops.convert_to_numpy(self.encoder(inputs, training=False))
            features.append(outputs.astype(np.float64))
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels).reshape(-1))
        labels = np.concatenate(labels).astype(np.int64) if labels else None
        return np.concatenate(features), labels

    def adapt(self, x, y=None, batch_size=256):
        """Sets the feature statistics from the training examples.

        Subclasses may also fit the head to the examples' features (the SVM
        head solves its objective on them).

        Args:
            x: the training inputs: an array, or a finite `tf.data.Dataset`
                of inputs or `(inputs, labels)` pairs, batched or not. Each
                example should appear once (the statistics include
                `num_train_examples`, which scales the SVM's margin term).
            y: labels of an array `x`. Defaults to None.
            batch_size: int. Batch size of the feature computation.
        """
        self._check_x(x, "adapt")
        features, labels = self.features(x, y, batch_size)  # (num_examples, features)
        self.standardization.set_statistics(
            features.mean(0), features.var(0), len(features), standardize=self.standardize
        )
        if labels is not None:
            self.check_labels(labels)  # eager: raises on labels out of range
            self.fit_head_to_features(
                keras.ops.convert_to_numpy(self.standardization(features.astype(np.float32))),
                labels,
            )

    def fit_head_to_features(self, features, labels):
        """Hook: fits the head on fixed standardised features (nothing here)."""
        del features, labels

    def _prepared(self, x, y, where, kwargs):
        # The first fit runs `adapt(x, y)` first (the checked inputs).
        if where == "fit" and not self.adapted:
            self.adapt(x, y)
        return x, y

    def check_labels(self, y):
        """Asserts int labels in [0, num_classes) inside the step."""
        return assert_labels(y, self.num_classes)

    def default_loss(self):
        return None

    def default_optimizer(self):
        return keras.optimizers.Adam(learning_rate=1e-3)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Keras `compile` with the head's defaults for `"auto"` arguments."""
        if optimizer == "auto":
            optimizer = self.default_optimizer()
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.layers.serialize(self.encoder),
                "num_classes": self.num_classes,
                "trainable_encoder": self.trainable_encoder,
                "standardize": self.standardize,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        config["encoder"] = keras.layers.deserialize(config["encoder"])
        return cls(copy_encoder=False, **config)


def _input_batches(x, y, batch_size, encoder):
    """Yields `(inputs, labels or None)` batches from arrays or a finite data set."""
    if isinstance(x, tf.data.Dataset):
        if x.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                "adapt needs a finite data set, got an infinite (repeated) one; "
                "call head.adapt(labelled examples) before fit."
            )
        spec = x.element_spec
        paired = isinstance(spec, (tuple, list))
        input_spec = spec[0] if paired else spec
        inputs = getattr(encoder, "inputs", None)
        if inputs and len(input_spec.shape) == len(inputs[0].shape) - 1:
            x = x.batch(batch_size)
        for element in x:
            if paired:
                yield element[0], (element[1] if len(element) > 1 else None)
            else:
                yield element, None
        return
    if isinstance(x, dict) or not hasattr(x, "shape"):
        raise ValueError(
            f"adapt takes an array or a tf.data.Dataset of inputs, got "
            f"{type(x).__name__}; call head.adapt(inputs, labels) with arrays."
        )
    for start in range(0, int(x.shape[0]), batch_size):
        yield x[start : start + batch_size], (None if y is None else y[start : start + batch_size])


def assert_labels(y, num_classes):
    """`y` as int32 class ids `(batch,)`, asserted to lie in `[0, num_classes)`
    inside the step (graph mode; XLA drops the assertions)."""
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    message = (
        f"labels must lie in [0, {num_classes}) for num_classes={num_classes}; fix the labels or raise num_classes"
    )
    with tf.control_dependencies(
        [
            tf.debugging.assert_non_negative(y, message=message),
            tf.debugging.assert_less(y, num_classes, message=message),
        ]
    ):
        return tf.identity(y)
