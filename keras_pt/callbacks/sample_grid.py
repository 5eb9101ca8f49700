"""SampleGrid callback: a PNG grid of samples each epoch, also in TensorBoard."""

import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from keras_pt.utils.image_grid import write_png
from keras_pt.models.generator import fixed_latents


def image_grid(images, columns=None, scale=1):
    """Tiles images `(n, h, w, c)` in [0, 1] into one uint8 array `(H, W, c)`."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"image_grid needs (n, h, w, c) images; got {images.shape}.")
    n, h, w, c = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
    for i in range(n):
        r, k = divmod(i, columns)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] = images[i]
    grid = np.clip(grid, 0.0, 1.0)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.round(grid * 255).astype(np.uint8)


def write_image_summary(writer, tag, image, step):
    """Writes a uint8 image `(h, w, c)` as a TensorBoard image summary.

    Uses TensorFlow's core summary ops and the image plugin's wire format, so
    it works without the `tensorboard` package installed.
    """
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "images"
    metadata.summary_description = tag
    height, width = image.shape[:2]
    tensor = tf.stack(
        [tf.as_string(width), tf.as_string(height), tf.io.encode_png(image)]
    )  # (3,) string: width, height, PNG bytes
    with writer.as_default():
        tf.summary.write(tag, tensor, step=step, metadata=metadata.SerializeToString())
    writer.flush()


class SampleGrid(keras.callbacks.Callback):
    """Writes `samples_epoch_XXX.png` from a fixed latent batch each epoch.

    The same latent vectors every epoch show how the generator evolves. Grids
    of small images are enlarged (nearest neighbour) to at least 256 pixels
    wide. With `log_dir`, the grid is also logged to TensorBoard as the image
    summary `samples`.

    Args:
        directory: str. Folder of the PNG files (created).
        latent_dim: int. The generator's latent size.
        num_samples: int. Images in the grid. Defaults to 64.
        value_range: tuple. Range of the generator's outputs. Defaults to
            `(-1, 1)`.
        num_classes: int or None. For a conditional generator: one row per
            class cycle. Defaults to None.
        log_dir: str or None. TensorBoard log folder. Defaults to None.
        seed: int. Seed of the latent batch. Defaults to 0.

    Example:

    >>> gan.fit(data, callbacks=[SampleGrid("/tmp/samples", 64)])  # doctest: +SKIP
    """

    def __init__(
        self,
        directory,
        latent_dim,
        num_samples=64,
        value_range=(-1.0, 1.0),
        num_classes=None,
        log_dir=None,
        seed=0,
    ):
        super().__init__()
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1; got {num_samples}.")
        self.directory = directory
        self.value_range = tuple(float(v) for v in value_range)
        self.log_dir = log_dir
        self.latents, self.labels = fixed_latents(num_samples, latent_dim, num_classes, seed)
        self.paths = []
        self._writer = None

    def on_train_begin(self, logs=None):
        tf.io.gfile.makedirs(self.directory)
        if self.log_dir and self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "samples"))

    def on_epoch_end(self, epoch, logs=None):
        inputs = self.latents if self.labels is None else (self.latents, self.labels)
        images = np.asarray(self.model.generator(inputs, training=False))
        low, high = self.value_range
        images = (images - low) / (high - low)
        if images.ndim != 4:
            raise ValueError(f"SampleGrid draws images (batch, h, w, c); the generator gives {images.shape}.")
        width = images.shape[2] * int(np.ceil(np.sqrt(len(images))))
        grid = image_grid(images, scale=max(1, int(np.ceil(256 / width))))
        path = os.path.join(self.directory, f"samples_epoch_{epoch + 1:03d}.png")
        write_png(grid, path)
        self.paths.append(path)
        if self._writer is not None:
            write_image_summary(self._writer, "samples", grid, epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
