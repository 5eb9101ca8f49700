"""MLPClassifier: a multi-layer perceptron head on a pre-trained encoder."""

import keras

from keras_pt.models.encoder_classifier import EncoderClassifier


@keras.saving.register_keras_serializable(package="keras_pt")
class MLPClassifier(EncoderClassifier):
    """Softmax classifier: `encoder` → Dense(relu) × n → Dense(num_classes).

    `call(x)` returns logits `(batch, num_classes)`; training minimises
    sparse categorical cross-entropy (the default `compile` loss; the
    default optimizer is Adam at `1e-3`). The head trains a copy of the
    encoder (the model passed in is never changed) on features
    standardised with the training examples' statistics (`adapt`, which
    the first `fit` runs), so the same learning rate suits encoders of any
    feature scale. Unlike the SVM head its objective is not convex, so no
    solver runs at `adapt`: train it for a few hundred steps (shuffled
    batches; `keras_pt.recipes.pretrain_finetune` uses 300).

    Args:
        encoder: keras.Model. Maps inputs to `(batch, features)`.
        num_classes: int. Number of classes.
        hidden_dims: tuple of int. Hidden layer sizes. Defaults to `(128,)`.
        dropout: float. Dropout after each hidden layer. Defaults to 0.0.
        trainable_encoder: bool. Fine-tune the encoder (True) or keep it
            frozen (False, a probe). Defaults to False.
        standardize: bool. Standardise the features with the training
            set's statistics. Defaults to True.
        copy_encoder: bool. Train a copy of `encoder` (True) or `encoder`
            itself (False). Defaults to True.

    Example:

    >>> import numpy as np
    >>> from keras_pt import Autoencoder
    >>> ae = Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
    >>> clf = MLPClassifier(ae.encoder, num_classes=10)
    >>> clf.compile(optimizer="adam")
    >>> x = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> y = np.random.randint(0, 10, size=(32,))
    >>> history = clf.fit(x, y, batch_size=16, verbose=0)
    """

    def __init__(
        self,
        encoder,
        num_classes,
        hidden_dims=(128,),
        dropout=0.0,
        trainable_encoder=False,
        standardize=True,
        copy_encoder=True,
        **kwargs,
    ):
        super().__init__(
            encoder,
            num_classes,
            trainable_encoder=trainable_encoder,
            standardize=standardize,
            copy_encoder=copy_encoder,
            **kwargs,
        )

        # === Layers ===
        self.head_layers = []
        for i, dim in enumerate(hidden_dims):
            self.head_layers.append(keras.layers.Dense(dim, activation="relu", name=f"hidden_{i}"))
            if dropout:
                self.head_layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
        self.head_layers.append(keras.layers.Dense(self.num_classes, name="logits"))

        # === Config ===
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.dropout = float(dropout)

    def default_loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = self.check_labels(y)
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dims": list(self.hidden_dims), "dropout": self.dropout})
        return config
