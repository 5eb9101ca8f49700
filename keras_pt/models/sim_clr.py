"""SimCLR: contrastive pre-training of an image encoder on two random views."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import augment, contrastive
from keras_pt.models.input_checks import InputCheckMixin

ARCHITECTURES = ("conv", "dense")


def build_image_encoder(image_shape, architecture="conv", filters=(32, 64, 128), feature_dim=256):
    """Images -> `(batch, feature_dim)` ReLU features (the representation probed).

    `"conv"`: a stride-1 convolution, then stride-2 convolutions (3x3, ReLU)
    for the other `filters`, flattened, and a dense ReLU layer. `"dense"`:
    two dense ReLU layers (`2 · feature_dim`, `feature_dim`).
    """
    inputs = keras.Input(shape=tuple(image_shape), name="images")
    if architecture == "conv":
        x = inputs
        for i, f in enumerate(filters):
            x = keras.layers.Conv2D(
                f,
                3,
                strides=1 if i == 0 else 2,
                padding="same",
                activation="relu",
                name=f"encoder_conv_{i}",
            )(x)  # (batch, H / 2^i, W / 2^i, f)
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(inputs)
        x = keras.layers.Dense(2 * feature_dim, activation="relu", name="encoder_dense_0")(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
    return keras.Model(inputs, features, name="encoder")


@keras.saving.register_keras_serializable(package="keras_pt")
class SimCLR(InputCheckMixin, keras.Model):
    """Contrastive image pre-training: two random views of each image, InfoNCE.

    `train_step` makes two views of every image of the batch
    (`keras_pt.kernels.augment.random_view`: random resized crop, optional
    flip, brightness, contrast, noise; seeded from the model's
    `SeedGenerator`, a fresh seed per view), encodes them, projects them
    with a small MLP and minimises the symmetric in-batch InfoNCE loss:
    each view must pick the other view of its image among the other
    views of the global batch (all-gathered across replicas, so one device
    and N replicas train alike). `encoder` maps images to the features
    before the projection (the representation to probe or fine-tune);
    `call(images)` returns the projections.

    Args:
        image_shape: tuple of int. `(height, width, channels)`, pixels in [0, 1].
        architecture: str. `"conv"` or `"dense"` encoder. Defaults to `"conv"`.
        filters: tuple of int. Conv filters; every layer after the first
            halves height and width. Defaults to `(32, 64, 128)`.
        feature_dim: int. Size of the encoder's features. Defaults to 256.
        projection_dim: int. Size of the projections the loss compares.
            Defaults to 64.
        temperature: float. InfoNCE temperature. Defaults to 0.2.
        min_crop_area: float. Smallest crop, as a fraction of the image.
            Defaults to 0.5.
        flip: bool. Random horizontal flips (off for digits and text-like
            images, where a flip changes the class). Defaults to False.
        brightness: float. Brightness jitter. Defaults to 0.2.
        contrast: float. Contrast jitter. Defaults to 0.3.
        noise_stddev: float. Gaussian pixel noise. Defaults to 0.05.
        seed: int or None. Seed of the views. Defaults to None.

    Example:

    >>> import numpy as np
    >>> model = SimCLR(image_shape=(8, 8, 1), feature_dim=16, projection_dim=8, seed=0)
    >>> model.compile(optimizer="adam")
    >>> images = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> history = model.fit(images, batch_size=16, epochs=1, verbose=0)
    >>> model.encoder(images).shape
    TensorShape([32, 16])

    References:
        Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for
        Contrastive Learning of Visual Representations", ICML 2020.
    """

    TAKES = "images as a float array or tensor of shape (batch, height, width, channels)"

    def __init__(
        self,
        image_shape,
        architecture="conv",
        filters=(32, 64, 128),
        feature_dim=256,
        projection_dim=64,
        temperature=0.2,
        min_crop_area=0.5,
        flip=False,
        brightness=0.2,
        contrast=0.3,
        noise_stddev=0.05,
        seed=None,
        **kwargs,
    ):
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) <= 0:
            raise ValueError(f"image_shape must be (height, width, channels) of positive ints, got {image_shape}.")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if not 0 < min_crop_area <= 1:
            raise ValueError(f"min_crop_area must lie in (0, 1], got {min_crop_area}.")
        super().__init__(**kwargs)

        # === Layers ===
        self.encoder = build_image_encoder(image_shape, architecture, filters, feature_dim)
        self.projection = keras.Sequential(
            [
                keras.Input((feature_dim,)),
                keras.layers.Dense(feature_dim, activation="relu", name="projection_hidden"),
                keras.layers.Dense(projection_dim, name="projection_out"),
            ],
            name="projection",
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="view_accuracy")

        # === Config ===
        self.image_shape = image_shape
        self.architecture = architecture
        self.filters = tuple(int(f) for f in filters)
        self.feature_dim = int(feature_dim)
        self.projection_dim = int(projection_dim)
        self.temperature = float(temperature)
        self.min_crop_area = float(min_crop_area)
        self.flip = bool(flip)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.noise_stddev = float(noise_stddev)
        self.seed = seed

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, images, training=False):
        features = self.encoder(images, training=training)  # (batch, feature_dim)
        return self.projection(features, training=training)  # (batch, projection_dim)

    def view(self, images):
        """One random view of each image (a fresh seed per call)."""
        return augment.random_view(
            images,
            self.seed_generator.next(),
            min_crop_area=self.min_crop_area,
            flip=self.flip,
            brightness=self.brightness,
            contrast=self.contrast,
            noise_stddev=self.noise_stddev,
        )

    def _contrast(self, anchors, positives):
        """InfoNCE of each local anchor against the global batch's positives."""
        batch = anchors.shape[0] if anchors.shape[0] is not None else tf.shape(anchors)[0]
        candidates = positives
        offset = 0
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # (global batch, dim); differentiable: each replica's slice gets
            # the sum over replicas of its upstream gradients.
            candidates = context.all_gather(positives, axis=0)
            offset = tf.cast(context.replica_id_in_sync_group, tf.int32) * batch
        indices = offset + tf.range(batch, dtype=tf.int32)
        return contrastive.in_batch_contrastive_loss(anchors, candidates, indices, self.temperature)

    def _images(self, data):
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        images = self._images(data)
        first, second = self.view(images), self.view(images)
        # Contrast each view with the other views of the global batch, both ways
        with tf.GradientTape() as tape:
            z1 = self(first, training=True)
            z2 = self(second, training=True)
            forward = self._contrast(z1, z2)
            backward = self._contrast(z2, z1)
            per_image = 0.5 * (forward["loss"] + backward["loss"])  # (batch,)
            loss = tf.reduce_mean(per_image)  # this replica's mean
            scaled_loss = self.optimizer.scale_loss(distribute.scale_loss(loss))
        grads = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(per_image)
        self.accuracy_tracker.update_state(0.5 * (forward["correct"] + backward["correct"]))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "architecture": self.architecture,
                "filters": list(self.filters),
                "feature_dim": self.feature_dim,
                "projection_dim": self.projection_dim,
                "temperature": self.temperature,
                "min_crop_area": self.min_crop_area,
                "flip": self.flip,
                "brightness": self.brightness,
                "contrast": self.contrast,
                "noise_stddev": self.noise_stddev,
                "seed": self.seed,
            }
        )
        return config
