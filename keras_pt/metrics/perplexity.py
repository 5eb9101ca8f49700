"""Perplexity: the exponential of the mean token cross-entropy."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_pt")
class Perplexity(keras.metrics.Mean):
    """`exp(mean cross-entropy)` over the tokens seen, in nats.

    `update_state(losses, sample_weight=None)` takes per-token
    cross-entropies (natural log) and optional weights (0 on padding); the
    result is `exp(Σ w·loss / Σ w)`, the perplexity of the whole stream of
    weighted tokens — not a mean of per-batch perplexities. Under a
    `tf.distribute` strategy the sums are reduced over replicas, so the
    result is the perplexity of the global batch.

    Example:

    >>> import numpy as np
    >>> metric = Perplexity()
    >>> metric.update_state(np.log([4.0, 4.0, 1.0]), sample_weight=[1, 1, 0])
    >>> round(float(metric.result()), 4)
    4.0
    """

    def __init__(self, name="perplexity", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return self.result_from_mean(super().result())

    @staticmethod
    def result_from_mean(mean):
        """The result for a mean cross-entropy (also used by
        `keras_pt.distribute.global_mean_results`)."""
        return tf.exp(mean)
