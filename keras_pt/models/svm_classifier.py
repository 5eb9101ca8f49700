"""SVMClassifier: a linear SVM head with a multi-class hinge loss."""

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import hinge as hinge_kernel
from keras_pt.models.encoder_classifier import EncoderClassifier
from keras_pt.utils import linear_svm


@keras.saving.register_keras_serializable(package="keras_pt")
class SVMClassifier(EncoderClassifier):
    """Linear SVM on encoder features: scores `s = W·z + b`, `z` the standardised features.

    Training minimises the soft-margin objective over the `N` training
    examples,

        0.5·||W||² + C·Σ_i ξ_i,

    with `ξ` the multi-class hinge of `keras_pt.kernels.hinge`
    (Crammer–Singer or one-vs-rest, plain or squared) and the bias `b`
    unpenalised. Each step takes the unbiased batch estimate of the
    objective divided by `N`, `0.5·||W||² / N + C·mean_batch(ξ)`, so the
    learning rate does not depend on `N` or the batch size; `N` is
    `num_train_examples`, counted by `adapt` (which the first `fit` runs),
    and the global batch size before that. `C` is scikit-learn's
    `LinearSVC` `C` for the same features: large `C` fits the training
    labels harder (towards a hard margin), small `C` keeps `W` small.
    Features are standardised with the training set's statistics (see
    `EncoderClassifier`), so one `C` suits encoders of any feature scale.

    Convergence: `adapt(x, y)`, which the first `fit` runs on its training
    data, computes the encoder's features of the labelled examples once and
    solves the objective on them to its optimum on the host
    (`fit_head_to_features`: L-BFGS in float64; exact for the squared
    hinges, through a smoothing for the plain ones). On a frozen encoder
    that *is* the linear probe; the gradient steps of `fit` that follow
    (default optimizer plain SGD at `1e-3`) stay near it, and with a
    trainable encoder fine-tuning starts from the probe's optimum instead
    of a random head (which keeps the pre-trained features from being
    pulled apart by the head's first large gradients). The defaults,
    squared hinge and one-vs-rest, are scikit-learn `LinearSVC`'s: with the
    same `C` on the same standardised features both reach the same
    objective value (tests/models/test_heads.py checks within 1%).

    `call(x)` returns the scores `(batch, num_classes)`; the prediction is
    their argmax.

    Args:
        encoder: keras.Model. Maps inputs to `(batch, features)`. The head
            trains a copy of it (the model passed in is never changed);
            read the trained one from `head.encoder`.
        num_classes: int. Number of classes.
        C: float. Weight of the summed slack against `0.5·||W||²`.
            Defaults to 1.0.
        hinge: str. `"one_vs_rest"` or `"crammer_singer"`. Defaults to
            `"one_vs_rest"`.
        squared: bool. Squared hinge (L2-SVM). Defaults to True.
        trainable_encoder: bool. Fine-tune the encoder (True) or keep it
            frozen (False, a linear probe). Defaults to False.
        standardize: bool. Standardise the features with the training
            set's statistics. Defaults to True.
        copy_encoder: bool. Train a copy of `encoder` (True) or `encoder`
            itself (False: it is frozen or unfrozen in place). Defaults to
            True.

    Example:

    >>> import numpy as np
    >>> from keras_pt import Autoencoder
    >>> ae = Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
    >>> svm = SVMClassifier(ae.encoder, num_classes=10, C=1.0)
    >>> svm.compile()
    >>> x = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> y = np.random.randint(0, 10, size=(32,))
    >>> history = svm.fit(x, y, batch_size=16, epochs=5, verbose=0)

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
        hinge="one_vs_rest",
        squared=True,
        trainable_encoder=False,
        standardize=True,
        copy_encoder=True,
        **kwargs,
    ):
        if hinge not in hinge_kernel.HINGE_VARIANTS:
            raise ValueError(f"unknown hinge {hinge!r}; choose one of {', '.join(hinge_kernel.HINGE_VARIANTS)}.")
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}.")
        super().__init__(
            encoder,
            num_classes,
            trainable_encoder=trainable_encoder,
            standardize=standardize,
            copy_encoder=copy_encoder,
            **kwargs,
        )

        # === Layers ===
        # Zero start (the objective is convex); adapt replaces it by the optimum.
        self.svm = keras.layers.Dense(self.num_classes, kernel_initializer="zeros", name="svm")
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
        # N: the training examples counted by adapt; the global batch before.
        num_examples = tf.cast(self.num_train_examples, tf.float32)
        num_examples = tf.where(num_examples > 0, num_examples, global_batch)
        margin = 0.5 * tf.reduce_sum(tf.square(tf.cast(self.svm.kernel, tf.float32))) / num_examples
        loss = margin + self.C * tf.reduce_mean(slack)
        # Keras's train_step takes a loss already scaled for distribution.
        return distribute.scale_loss(loss)

    def default_optimizer(self):
        # Plain SGD: at the solved optimum the full gradient is zero, so
        # steps only follow the batches' noise (Adam's normalised steps of
        # one learning rate in every coordinate would walk away from it).
        return keras.optimizers.SGD(learning_rate=1e-3)

    def fit_head_to_features(self, features, labels):
        """Sets `W`, `b` to the minimiser of the objective on fixed features.

        `keras_pt.utils.linear_svm.solve_linear_svm` (L-BFGS on the host,
        float64; the plain hinges through a smoothing that ends at
        `μ = 1e-3`). `adapt(x, y)` calls it, so the first `fit` starts from
        the linear probe's optimum and its gradient steps only refine it
        (or, with a trainable encoder, fine-tune from it).
        """
        if not self.svm.built:
            self.svm.build((None, features.shape[-1]))
        weights, bias = linear_svm.solve_linear_svm(
            features, labels, self.num_classes, C=self.C, variant=self.hinge, squared=self.squared
        )
        self.svm.kernel.assign(weights.astype(np.float32))
        self.svm.bias.assign(bias.astype(np.float32))

    def objective(self, x, y, batch_size=256):
        """The objective `0.5·||W||² + C·Σ ξ_i` on the examples `(x, y)` (a float)."""
        scores = np.concatenate(
            [keras.ops.convert_to_numpy(self(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        )
        slack = hinge_kernel.multiclass_hinge(
            tf.constant(np.asarray(y).reshape(-1), tf.int32),
            tf.constant(scores, tf.float32),
            variant=self.hinge,
            squared=self.squared,
        )
        w = keras.ops.convert_to_numpy(self.svm.kernel).astype(np.float64)
        return float(0.5 * np.sum(w**2) + self.C * np.sum(keras.ops.convert_to_numpy(slack)))

    def get_config(self):
        config = super().get_config()
        config.update({"C": self.C, "hinge": self.hinge, "squared": self.squared})
        return config
