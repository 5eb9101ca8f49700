"""Generator: maps latent vectors (and optionally class labels) to images."""

import math

import keras
import numpy as np
from keras_pt.models.input_checks import InputCheckMixin
import tensorflow as tf

ARCHITECTURES = ("auto", "dcgan", "dense")


def check_shape_and_architecture(image_shape, architecture):
    """Validates `image_shape` and resolves `"auto"`; shared by both halves."""
    image_shape = [int(d) for d in image_shape]
    if not image_shape or any(d <= 0 for d in image_shape):
        raise ValueError(
            f"image_shape must be a non-empty list of positive ints, e.g. "
            f"[8, 8, 1] for images or [64] for vectors; got {image_shape}."
        )
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}.")
    if architecture == "auto":
        architecture = "dcgan" if len(image_shape) == 3 else "dense"
    if architecture == "dcgan" and len(image_shape) != 3:
        raise ValueError(
            "architecture='dcgan' needs image_shape (height, width, channels); "
            f"got {image_shape}. Use architecture='dense' for vector data."
        )
    return image_shape, architecture


def num_halvings(height, width, min_size=4, max_halvings=4):
    """How often a DCGAN halves (height, width) without going below `min_size`.

    8x8 -> 1 (4x4), 28x28 -> 2 (7x7), 32x32 -> 3 (4x4), 64x64 -> 4 (4x4).
    """
    count = 0
    while (
        count < max_halvings
        and height % 2 == 0
        and width % 2 == 0
        and height // 2 >= min_size
        and width // 2 >= min_size
    ):
        height, width, count = height // 2, width // 2, count + 1
    return count


def fixed_latents(num_samples, latent_dim, num_classes=None, seed=0):
    """`(latents (num_samples, latent_dim) float32, labels or None)`: fixed
    standard-normal latent vectors (the same for the same seed) and, for a
    conditional generator, labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((int(num_samples), int(latent_dim))).astype(np.float32)
    labels = None
    if num_classes is not None:
        labels = (np.arange(int(num_samples)) % int(num_classes)).astype(np.int32)
    return latents, labels


def split_conditional_inputs(inputs, num_classes, model_name, input_name):
    """`(x, labels)` of a conditional model (`num_classes` set), `(x, None)`
    of an unconditional one; a clear error when the inputs do not fit."""
    if num_classes is not None:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"a conditional {model_name} (num_classes set) takes ({input_name}, labels); "
                f"got {type(inputs).__name__}."
            )
        return tuple(inputs)
    if isinstance(inputs, (list, tuple)):
        raise ValueError(
            f"an unconditional {model_name} takes {input_name} alone; pass num_classes to condition on labels."
        )
    return inputs, None


@keras.saving.register_keras_serializable(package="keras_pt")
class Generator(InputCheckMixin, keras.Model):
    """Generator of a GAN: latent vectors (batch, latent_dim) to images.

    With `architecture="dcgan"` (the default for 3-D `image_shape`) a dense
    layer makes a small feature map that transposed convolutions (stride 2,
    batch norm, ReLU) double until it reaches `image_shape`; a 3x3 convolution
    then gives the channels (Radford et al., 2015). The number of doublings
    follows the image size: 1 for 8x8 digits, 2 for 28x28, 3 for 32x32.
    With `architecture="dense"` (the default for vector data) it is the
    classic MLP generator: latent -> `hidden_dims` (LeakyReLU) -> output.
    Batch norm is synchronized across replicas, so a mirrored run equals a
    one-device run.

    `call(z)` returns images in the range of `output_activation` (tanh: [-1,
    1]). With `num_classes`, `call((z, labels))` conditions on int labels
    `(batch,)` by multiplying `z` with a learned label embedding.

    Args:
        image_shape: list of int. Shape of one output, e.g. `[8, 8, 1]`,
            `[28, 28, 1]`, `[32, 32, 3]`, or `[64]` for vectors.
        latent_dim: int. Size of the latent vector. Defaults to 64.
        architecture: str. `"auto"`, `"dcgan"` or `"dense"`. Defaults to
            `"auto"`.
        base_filters: int. Filters of the last transposed convolution; each
            earlier one has twice as many. Defaults to 64.
        hidden_dims: list of int. Hidden sizes of the dense generator.
            Defaults to `[128, 256]`.
        num_classes: int or None. Number of classes for a conditional
            generator. Defaults to None (unconditional).
        output_activation: str. Activation of the output. Defaults to
            `"tanh"`.
        norm_momentum: float. Momentum of the batch norms' moving
            statistics, which `call(..., training=False)` and the exported
            SavedModel use. The generator changes fast during training, so
            the statistics follow it quickly (PyTorch's default, DCGAN's
            reference setting). Defaults to 0.9.

    Example:

    >>> generator = Generator([8, 8, 1], latent_dim=16, base_filters=8)
    >>> generator(keras.random.normal((2, 16))).shape
    TensorShape([2, 8, 8, 1])

    References:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks", 2015.
    """

    TAKES = "latent vectors as a float array or tensor of shape (batch, latent_dim)"

    def __init__(
        self,
        image_shape,
        latent_dim=64,
        architecture="auto",
        base_filters=64,
        hidden_dims=(128, 256),
        num_classes=None,
        output_activation="tanh",
        norm_momentum=0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape, resolved = check_shape_and_architecture(image_shape, architecture)
        if int(latent_dim) <= 0:
            raise ValueError(f"latent_dim must be a positive int; got {latent_dim}.")
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be None (unconditional) or >= 2; got {num_classes}.")
        if not 0.0 <= float(norm_momentum) < 1.0:
            raise ValueError(f"norm_momentum must lie in [0, 1); got {norm_momentum}.")

        # === Layers ===
        self.embedding = None
        if num_classes is not None:
            self.embedding = keras.layers.Embedding(int(num_classes), int(latent_dim), name="embedding")
        if resolved == "dcgan":
            network = self._dcgan_layers(image_shape, int(base_filters), output_activation, float(norm_momentum))
        else:
            network = self._dense_layers(image_shape, list(hidden_dims), output_activation)
        self.network = keras.Sequential([keras.Input((int(latent_dim),))] + network, name="network")

        # === Config ===
        self.image_shape = image_shape
        self.latent_dim = int(latent_dim)
        self.architecture = architecture
        self.base_filters = int(base_filters)
        self.hidden_dims = [int(d) for d in hidden_dims]
        self.num_classes = None if num_classes is None else int(num_classes)
        self.output_activation = output_activation
        self.norm_momentum = float(norm_momentum)
        z_shape = (None, self.latent_dim)
        self.build(z_shape if num_classes is None else (z_shape, (None,)))

    @staticmethod
    def _dcgan_layers(image_shape, base_filters, output_activation, norm_momentum):
        height, width, channels = image_shape
        steps = num_halvings(height, width)
        h0, w0 = height // 2**steps, width // 2**steps
        filters0 = base_filters * 2**steps
        layers = [
            keras.layers.Dense(h0 * w0 * filters0, use_bias=False, name="project"),
            keras.layers.BatchNormalization(momentum=norm_momentum, synchronized=True, name="project_norm"),
            keras.layers.ReLU(name="project_relu"),
            keras.layers.Reshape((h0, w0, filters0), name="reshape"),  # (b, h0, w0, f0)
        ]
        for i in range(steps):
            layers += [
                keras.layers.Conv2DTranspose(
                    base_filters * 2 ** (steps - 1 - i),
                    4,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    name=f"up_{i}",
                ),  # (b, 2h, 2w, f / 2)
                keras.layers.BatchNormalization(momentum=norm_momentum, synchronized=True, name=f"up_{i}_norm"),
                keras.layers.ReLU(name=f"up_{i}_relu"),
            ]
        layers.append(
            keras.layers.Conv2D(
                channels, 3, padding="same", activation=output_activation, name="to_image"
            )  # (b, height, width, channels)
        )
        return layers

    @staticmethod
    def _dense_layers(image_shape, hidden_dims, output_activation):
        layers = []
        for i, dim in enumerate(hidden_dims):
            layers += [
                keras.layers.Dense(dim, name=f"dense_{i}"),
                keras.layers.LeakyReLU(0.2, name=f"dense_{i}_relu"),
            ]
        layers += [
            keras.layers.Dense(math.prod(image_shape), activation=output_activation, name="to_output"),
            keras.layers.Reshape(tuple(image_shape), name="reshape"),
        ]
        return layers

    def build(self, input_shape=None):
        if self.embedding is not None and not self.embedding.built:
            self.embedding.build((None,))
        self.built = True

    def call(self, inputs, training=False):
        z, labels = split_conditional_inputs(inputs, self.num_classes, "Generator", "z")
        if z.shape[-1] is not None and z.shape[-1] != self.latent_dim:
            raise ValueError(f"Generator expects latent vectors of size {self.latent_dim}; got shape {tuple(z.shape)}.")
        if self.num_classes is not None:
            z = z * self.embedding(keras.ops.reshape(labels, (-1,)))  # (b, latent_dim)
        return self.network(z, training=training)  # (b, *image_shape)

    def compute_output_shape(self, input_shape):
        return (None, *self.image_shape)

    def export_saved_model(self, filepath):
        """Exports a SavedModel whose `serve` maps latent vectors to images.

        The endpoint takes `z` float32 `(batch, latent_dim)` (and int32
        `labels` `(batch,)` when conditional); load it with
        `tf.saved_model.load(filepath).serve(z)`, no keras_pt needed.
        """
        archive = keras.export.ExportArchive()
        archive.track(self)
        z_spec = tf.TensorSpec((None, self.latent_dim), tf.float32, name="z")
        if self.num_classes is None:
            archive.add_endpoint("serve", lambda z: self(z, training=False), input_signature=[z_spec])
        else:
            labels_spec = tf.TensorSpec((None,), tf.int32, name="labels")
            archive.add_endpoint(
                "serve",
                lambda z, labels: self((z, labels), training=False),
                input_signature=[z_spec, labels_spec],
            )
        archive.write_out(filepath, verbose=False)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": self.image_shape,
                "latent_dim": self.latent_dim,
                "architecture": self.architecture,
                "base_filters": self.base_filters,
                "hidden_dims": self.hidden_dims,
                "num_classes": self.num_classes,
                "output_activation": self.output_activation,
                "norm_momentum": self.norm_momentum,
            }
        )
        return config
