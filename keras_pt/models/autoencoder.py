"""Autoencoder: learns a bottleneck code by reconstructing its input."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.models.input_checks import InputCheckMixin

ARCHITECTURES = ("dense", "conv")
RECONSTRUCTION_LOSSES = ("mse", "binary_crossentropy")


def _build_dense(input_shape, latent_dim, hidden_dims):
    size = 1
    for d in input_shape:
        size *= d
    inputs = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Flatten(name="flatten")(inputs)  # (batch, H*W*C)
    for i, dim in enumerate(hidden_dims):
        x = keras.layers.Dense(dim, activation="relu", name=f"encoder_dense_{i}")(x)
    code = keras.layers.Dense(latent_dim, name="code")(x)  # (batch, latent_dim)
    encoder = keras.Model(inputs, code, name="encoder")

    latent = keras.Input(shape=(latent_dim,), name="code")
    x = latent
    for i, dim in enumerate(reversed(hidden_dims)):
        x = keras.layers.Dense(dim, activation="relu", name=f"decoder_dense_{i}")(x)
    x = keras.layers.Dense(size, activation="sigmoid", name="pixels")(x)
    outputs = keras.layers.Reshape(input_shape, name="images_out")(x)
    decoder = keras.Model(latent, outputs, name="decoder")
    return encoder, decoder


def _build_conv(input_shape, latent_dim, filters):
    height, width, channels = input_shape
    stride = 2 ** len(filters)
    if height % stride or width % stride:
        raise ValueError(
            f"the conv architecture halves the image {len(filters)} times, so "
            f"height and width must be multiples of {stride}; got {input_shape}. "
            "Use fewer filters or architecture='dense'."
        )
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"encoder_conv_{i}")(
            x
        )  # (batch, H / 2^(i+1), W / 2^(i+1), f)
    x = keras.layers.Flatten(name="flatten")(x)
    code = keras.layers.Dense(latent_dim, name="code")(x)  # (batch, latent_dim)
    encoder = keras.Model(inputs, code, name="encoder")

    small = (height // stride, width // stride, filters[-1])
    latent = keras.Input(shape=(latent_dim,), name="code")
    x = keras.layers.Dense(small[0] * small[1] * small[2], activation="relu", name="expand")(latent)
    x = keras.layers.Reshape(small, name="unflatten")(x)
    for i, f in enumerate(reversed(filters)):
        x = keras.layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation="relu", name=f"decoder_deconv_{i}"
        )(x)
    outputs = keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="images_out")(
        x
    )  # (batch, H, W, C)
    decoder = keras.Model(latent, outputs, name="decoder")
    return encoder, decoder


@keras.saving.register_keras_serializable(package="keras_pt")
class Autoencoder(InputCheckMixin, keras.Model):
    """An autoencoder whose `encoder` is a pre-trained feature extractor.

    `call(images)` returns the reconstruction `decoder(encoder(images))`.
    `train_step` minimises the reconstruction loss of the (unlabelled)
    images; `encoder` maps images to a `(batch, latent_dim)` code and can be
    put under `MLPClassifier` or `SVMClassifier` for fine-tuning.

    Args:
        image_shape: tuple of int. `(height, width, channels)`, pixels in [0, 1].
        latent_dim: int. Size of the code. Defaults to 32.
        architecture: str. `"dense"` (MLP) or `"conv"` (strided convolutions).
            Defaults to `"dense"`.
        hidden_dims: tuple of int. Dense hidden sizes (encoder order).
            Defaults to `(256, 128)`.
        filters: tuple of int. Conv filters (encoder order); each layer
            halves height and width. Defaults to `(32, 64)`.
        reconstruction_loss: str. `"mse"` or `"binary_crossentropy"`.
            Defaults to `"mse"`.

    Example:

    >>> import numpy as np
    >>> model = Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
    >>> model.compile(optimizer="adam")
    >>> images = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> history = model.fit(images, batch_size=16, epochs=1, verbose=0)
    >>> model.encoder(images).shape
    TensorShape([32, 4])
    """

    TAKES = "images as a float array or tensor of shape (batch, height, width, channels)"

    def __init__(
        self,
        image_shape,
        latent_dim=32,
        architecture="dense",
        hidden_dims=(256, 128),
        filters=(32, 64),
        reconstruction_loss="mse",
        **kwargs,
    ):
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) <= 0:
            raise ValueError(f"image_shape must be (height, width, channels) of positive ints, got {image_shape}.")
        if latent_dim <= 0:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}.")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}.")
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"unknown reconstruction_loss {reconstruction_loss!r}; choose one "
                f"of {', '.join(RECONSTRUCTION_LOSSES)}."
            )
        super().__init__(**kwargs)

        # === Layers ===
        if architecture == "dense":
            self.encoder, self.decoder = _build_dense(image_shape, latent_dim, hidden_dims)
        else:
            self.encoder, self.decoder = _build_conv(image_shape, latent_dim, filters)
        self.loss_tracker = keras.metrics.Mean(name="loss")

        # === Config ===
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_dims = tuple(hidden_dims)
        self.filters = tuple(filters)
        self.reconstruction_loss = reconstruction_loss

    def check_images(self, images):
        """Raises a ValueError unless `images` have shape `(batch, *image_shape)`."""
        shape = tuple(images.shape[1:])
        if shape != self.image_shape:
            raise ValueError(
                f"{self.name} takes images of shape (batch, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(images.shape)}; resize the images or build the model "
                f"with image_shape={shape}."
            )

    def call(self, images, training=False):
        self.check_images(images)
        code = self.encoder(images, training=training)  # (batch, latent_dim)
        return self.decoder(code, training=training)  # (batch, H, W, C)

    def per_example_loss(self, targets, reconstructions):
        """Reconstruction loss of each example, `(batch,)`, in float32."""
        # Under a mixed-precision policy the decoder outputs float16/bfloat16;
        # the loss is computed in float32.
        targets = tf.cast(targets, tf.float32)
        reconstructions = tf.cast(reconstructions, tf.float32)
        if self.reconstruction_loss == "mse":
            errors = tf.square(targets - reconstructions)
        else:
            eps = keras.backend.epsilon()
            p = tf.clip_by_value(reconstructions, eps, 1.0 - eps)
            errors = -(targets * tf.math.log(p) + (1.0 - targets) * tf.math.log(1.0 - p))
        return tf.reduce_mean(tf.reshape(errors, [tf.shape(errors)[0], -1]), axis=-1)

    def corrupt(self, images):
        """The training input made from clean images (identity here)."""
        return images

    @property
    def metrics(self):
        return [self.loss_tracker]

    def _images(self, data):
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        images = self._images(data)
        # Reconstruct the (corrupted) input and score it against the clean one
        with tf.GradientTape() as tape:
            reconstructions = self(self.corrupt(images), training=True)
            loss = tf.reduce_mean(self.per_example_loss(images, reconstructions))
            scaled_loss = distribute.scale_loss(loss)
            # Multiplies by the loss scale under mixed_float16 (compile wraps
            # the optimizer in a LossScaleOptimizer); identity otherwise.
            scaled_loss = self.optimizer.scale_loss(scaled_loss)
        grads = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        images = self._images(data)
        reconstructions = self(images, training=False)
        self.loss_tracker.update_state(tf.reduce_mean(self.per_example_loss(images, reconstructions)))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "latent_dim": self.latent_dim,
                "architecture": self.architecture,
                "hidden_dims": list(self.hidden_dims),
                "filters": list(self.filters),
                "reconstruction_loss": self.reconstruction_loss,
            }
        )
        return config
