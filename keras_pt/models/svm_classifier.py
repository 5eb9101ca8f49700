"""SVMClassifier: a linear SVM head with a multi-class hinge loss."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import hinge as hinge_kernel
from keras_pt.models.encoder_classifier import EncoderClassifier


@keras.saving.register_keras_serializable(package="keras_pt")
class SVMClassifier(EncoderClassifier):
    """Linear SVM on encoder features: scores `s = W·encoder(x) + b`.

    Training minimises the soft-margin objective `0.5·||W||² + C·Σ ξ_i`
    evaluated on each batch and divided by the global batch size (so the
    learning rate does not depend on it): `0.5·||W||² / B + C·mean(ξ)`,
    with `ξ` the multi-class hinge from `keras_pt.kernels.hinge`
    (Crammer–Singer or one-vs-rest, plain or squared). `call(x)` returns the
    scores `(batch, num_classes)`; the prediction is their argmax.

    Args:
        encoder: keras.Model. Maps inputs to `(batch, features)`.
        num_classes: int. Number of classes.
        C: float. Weight of the slack term. Defaults to 1.0.
        hinge: str. `"crammer_singer"` or `"one_vs_rest"`. Defaults to
            `"crammer_singer"`.
        squared: bool. Squared hinge (L2-SVM). Defaults to False.
        trainable_encoder: bool. Fine-tune the encoder (True) or keep it
            frozen (False, a linear probe). Defaults to False.

    Example:

    >>> import numpy as np
    >>> from keras_pt import Autoencoder
    >>> ae = Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
    >>> svm = SVMClassifier(ae.encoder, num_classes=10, C=10.0)
    >>> svm.compile(optimizer="adam")
    >>> x = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> y = np.random.randint(0, 10, size=(32,))
    >>> history = svm.fit(x, y, batch_size=16, verbose=0)

    References:
        Crammer & Singer, "On the Algorithmic Implementation of Multiclass
        Kernel-based Vector Machines", JMLR 2001. Tang, "Deep Learning using
        Linear Support Vector Machines", 2013.
    """

    def __init__(
        self,
        encoder,
        num_classes,
        C=1.0,
        hinge="crammer_singer",
        squared=False,
        trainable_encoder=False,
        **kwargs,
    ):
        if hinge not in hinge_kernel.HINGE_VARIANTS:
            raise ValueError(
                f"unknown hinge {hinge!r}; choose one of "
                f"{', '.join(hinge_kernel.HINGE_VARIANTS)}."
            )
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}.")
        super().__init__(encoder, num_classes, trainable_encoder, **kwargs)

        # === Layers ===
        self.svm = keras.layers.Dense(self.num_classes, name="svm")
        self.head_layers = [self.svm]

        # === Config ===
        self.C = float(C)
        self.hinge = hinge
        self.squared = bool(squared)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = self.check_labels(y)
        slack = hinge_kernel.multiclass_hinge(
            y, tf.cast(y_pred, tf.float32), variant=self.hinge, squared=self.squared
        )  # (batch,)
        if sample_weight is not None:
            sample_weight = tf.cast(tf.reshape(sample_weight, [-1]), slack.dtype)
            slack = slack * sample_weight
        global_batch = tf.cast(tf.shape(slack)[0] * distribute.num_replicas(), tf.float32)
        margin = 0.5 * tf.reduce_sum(tf.square(self.svm.kernel)) / global_batch
        loss = margin + self.C * tf.reduce_mean(slack)
        # Keras's train_step takes a loss already scaled for distribution.
        return distribute.scale_loss(loss)

    def get_config(self):
        config = super().get_config()
        config.update({"C": self.C, "hinge": self.hinge, "squared": self.squared})
        return config
