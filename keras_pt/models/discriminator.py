"""Discriminator: maps images (and optionally labels) to a real/fake score."""

import math

import keras

from keras_pt.models.generator import check_shape_and_architecture, num_halvings, split_conditional_inputs
from keras_pt.models.input_checks import InputCheckMixin


@keras.saving.register_keras_serializable(package="keras_pt")
class Discriminator(InputCheckMixin, keras.Model):
    """Discriminator (critic) of a GAN, with its features as an encoder.

    With `architecture="dcgan"` (the default for 3-D `image_shape`) it is a
    stack of stride-2 4x4 convolutions with LeakyReLU(0.2), as many as the
    matching `Generator` has transposed convolutions, then a 3x3 convolution
    and a flatten: those are the features. A dense layer maps them to one
    logit. With `architecture="dense"` it is input -> `hidden_dims`
    (LeakyReLU) -> logit. There is no batch norm, so every score depends on
    its own example only (WGAN-GP needs this) and replicas need no sync.

    `call(images)` returns logits `(batch, 1)`. With `num_classes`,
    `call((images, labels))` adds the projection term `<embed(label),
    features>` (Miyato & Koyama, 2018). `encoder` is a `keras.Model` from
    images to the features `(batch, feature_dim)`, sharing weights; put a
    `SVMClassifier` or `MLPClassifier` on it. `pooled_encoder()` gives the
    DCGAN paper's transfer features: every layer's activations, max-pooled
    to a small grid and concatenated.

    Args:
        image_shape: list of int. Shape of one input, e.g. `[8, 8, 1]`.
        architecture: str. `"auto"`, `"dcgan"` or `"dense"`. Defaults to
            `"auto"`.
        base_filters: int. Filters of the first convolution; each later one
            has twice as many. Defaults to 64.
        hidden_dims: list of int. Hidden sizes of the dense discriminator.
            Defaults to `[256, 128]`.
        num_classes: int or None. Number of classes for a conditional
            (projection) discriminator. Defaults to None.

    Example:

    >>> discriminator = Discriminator([8, 8, 1], base_filters=8)
    >>> discriminator(keras.random.uniform((2, 8, 8, 1))).shape
    TensorShape([2, 1])
    >>> discriminator.encoder(keras.random.uniform((2, 8, 8, 1))).shape
    TensorShape([2, 256])
    >>> discriminator.pooled_encoder(grid_size=2)(keras.random.uniform((2, 8, 8, 1))).shape
    TensorShape([2, 96])

    References:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks", 2015.
    """

    TAKES = "images as a float array or tensor of shape (batch, height, width, channels)"

    def __init__(
        self,
        image_shape,
        architecture="auto",
        base_filters=64,
        hidden_dims=(256, 128),
        num_classes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape, resolved = check_shape_and_architecture(image_shape, architecture)
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be None (unconditional) or >= 2; got {num_classes}.")

        # === Layers ===
        if resolved == "dcgan":
            features = self._dcgan_layers(image_shape, int(base_filters))
        else:
            features = self._dense_layers(list(hidden_dims))
        self.encoder = keras.Sequential([keras.Input(tuple(image_shape))] + features, name="encoder")
        feature_dim = self.encoder.output_shape[-1]
        self.logit = keras.layers.Dense(1, name="logit")
        self.embedding = None
        if num_classes is not None:
            self.embedding = keras.layers.Embedding(int(num_classes), feature_dim, name="embedding")

        # === Config ===
        self.image_shape = image_shape
        self.architecture = architecture
        self.base_filters = int(base_filters)
        self.hidden_dims = [int(d) for d in hidden_dims]
        self.num_classes = None if num_classes is None else int(num_classes)
        self.feature_dim = feature_dim
        x_shape = (None, *image_shape)
        self.build(x_shape if num_classes is None else (x_shape, (None,)))

    @staticmethod
    def _dcgan_layers(image_shape, base_filters):
        height, width, _ = image_shape
        steps = num_halvings(height, width)
        layers = []
        for i in range(steps):
            layers += [
                keras.layers.Conv2D(
                    base_filters * 2**i, 4, strides=2, padding="same", name=f"down_{i}"
                ),  # (b, h / 2, w / 2, f)
                keras.layers.LeakyReLU(0.2, name=f"down_{i}_relu"),
            ]
        layers += [
            keras.layers.Conv2D(base_filters * 2**steps, 3, padding="same", name="features_conv"),  # (b, h0, w0, f0)
            keras.layers.LeakyReLU(0.2, name="features_relu"),
            keras.layers.Flatten(name="flatten"),  # (b, h0 * w0 * f0)
        ]
        return layers

    @staticmethod
    def _dense_layers(hidden_dims):
        layers = [keras.layers.Flatten(name="flatten")]
        for i, dim in enumerate(hidden_dims):
            layers += [
                keras.layers.Dense(dim, name=f"dense_{i}"),
                keras.layers.LeakyReLU(0.2, name=f"dense_{i}_relu"),
            ]
        return layers

    def pooled_encoder(self, grid_size=2):
        """Images -> every hidden layer's activations, pooled and concatenated.

        The DCGAN paper's transfer protocol: the activations after each
        LeakyReLU are max-pooled to a `grid_size` x `grid_size` grid (maps
        already that small are kept whole), flattened and concatenated. Dense
        layers' activations are taken whole. The model shares the
        discriminator's weights; put a feature normalisation and an
        `SVMClassifier` on it.

        Args:
            grid_size: int. Side of the pooled grid. Defaults to 2.

        Returns:
            A `keras.Model` from images `(batch, *image_shape)` to
            `(batch, features)`.
        """
        if int(grid_size) < 1:
            raise ValueError(f"grid_size must be a positive int; got {grid_size}.")
        grid_size = int(grid_size)
        parts = []
        for layer in self.encoder.layers:
            if not isinstance(layer, keras.layers.LeakyReLU):
                continue
            x = layer.output
            if len(x.shape) == 4:  # (b, h, w, c) -> (b, grid, grid, c)
                pool = tuple(max(1, math.ceil(d / grid_size)) for d in x.shape[1:3])
                if pool != (1, 1):
                    x = keras.layers.MaxPooling2D(pool, padding="same", name=f"{layer.name}_pool")(x)
                x = keras.layers.Flatten(name=f"{layer.name}_flatten")(x)
            parts.append(x)
        features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="concat")(parts)
        return keras.Model(self.encoder.inputs[0], features, name="pooled_encoder")

    def build(self, input_shape=None):
        if not self.logit.built:
            self.logit.build((None, self.encoder.output_shape[-1]))
        if self.embedding is not None and not self.embedding.built:
            self.embedding.build((None,))
        self.built = True

    def call(self, inputs, training=False):
        images, labels = split_conditional_inputs(inputs, self.num_classes, "Discriminator", "images")
        if list(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"Discriminator expects inputs of shape (batch, "
                f"{', '.join(map(str, self.image_shape))}); got {tuple(images.shape)}. "
                "Resize the data or build the model for this image_shape."
            )
        features = self.encoder(images, training=training)  # (b, feature_dim)
        logits = self.logit(features)  # (b, 1)
        if self.num_classes is not None:
            projection = self.embedding(keras.ops.reshape(labels, (-1,)))  # (b, feature_dim)
            logits = logits + keras.ops.sum(projection * features, axis=-1, keepdims=True)
        return logits

    def compute_output_shape(self, input_shape):
        return (None, 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "architecture": self.architecture,
                "base_filters": self.base_filters,
                "hidden_dims": self.hidden_dims,
                "num_classes": self.num_classes,
            }
        )
        return config
