"""FeatureStandardization: per-feature standardisation with saved statistics."""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_pt")
class FeatureStandardization(keras.layers.Layer):
    """Standardises features with statistics of the training features.

    `call(x)` returns `(x - mean) / sqrt(variance + floor)`, where `floor`
    is `variance_floor` times the mean variance over the features (so a
    feature that hardly varies on the training examples is not blown up
    to unit scale). Before `adapt` the layer is the identity. The
    statistics and the number of examples they come from
    (`num_examples`) are non-trainable weights: they are saved with the
    model, copied by `set_weights` and checkpointed.

    Args:
        variance_floor: float. Added variance, relative to the mean
            variance of the features. Defaults to 0.01.

    Example:

    >>> import numpy as np
    >>> layer = FeatureStandardization()
    >>> features = np.random.rand(100, 4).astype("float32") * 5.0
    >>> layer.adapt(features)
    >>> standardized = layer(features)
    """

    def __init__(self, variance_floor=0.01, **kwargs):
        if variance_floor < 0:
            raise ValueError(f"variance_floor must be >= 0, got {variance_floor}.")
        super().__init__(**kwargs)

        # === Config ===
        self.variance_floor = float(variance_floor)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(f"{self.name} needs a known feature dimension; got input shape {input_shape}.")
        self.mean = self.add_weight(name="mean", shape=(dim,), initializer="zeros", trainable=False)
        self.inverse_scale = self.add_weight(name="inverse_scale", shape=(dim,), initializer="ones", trainable=False)
        self.num_examples = self.add_weight(name="num_examples", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs):
        mean = tf.cast(self.mean, inputs.dtype)
        inverse_scale = tf.cast(self.inverse_scale, inputs.dtype)
        return (inputs - mean) * inverse_scale

    def set_statistics(self, mean, variance, num_examples, standardize=True):
        """Stores statistics computed elsewhere (e.g. by a head's `adapt`).

        With `standardize=False` only `num_examples` is stored and the layer
        stays the identity.
        """
        mean = np.asarray(mean, np.float64)
        variance = np.asarray(variance, np.float64)
        if not self.built:
            self.build((None, mean.shape[-1]))
        if standardize:
            floor = self.variance_floor * float(np.mean(variance)) if variance.size else 0.0
            floor = max(floor, 1e-12)
            self.mean.assign(mean.astype(np.float32))
            self.inverse_scale.assign((1.0 / np.sqrt(variance + floor)).astype(np.float32))
        self.num_examples.assign(float(num_examples))

    def adapt(self, features):
        """Computes the statistics from a `(num_examples, dim)` array."""
        features = np.asarray(features, np.float64)
        self.set_statistics(features.mean(0), features.var(0), len(features))

    def get_config(self):
        config = super().get_config()
        config.update({"variance_floor": self.variance_floor})
        return config
