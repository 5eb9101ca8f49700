"""Random image views for contrastive pre-training (SimCLR-style).

One view of a batch: a random resized crop (a random box of the image,
scaled back to the full size by bilinear resampling), an optional
horizontal flip, random brightness and contrast, and Gaussian pixel noise.
The crop is separable, `view = A_y · image · A_xᵀ` per channel with
per-example `(H, H)` and `(W, W)` interpolation matrices, so it is a pair
of batched matrix products: static shapes, differentiable, and compiled by
XLA. Every draw comes from one stateless seed through
`keras_pt.kernels.random.split` (one independent seed per draw)
(global-batch draws, this replica's slice), so one device and N replicas
make the same views.
"""

import tensorflow as tf

from keras_pt.kernels import random
from keras_pt.kernels.xla import xla_kernel


_DRAWS = (
    "view_crop_area",
    "view_aspect_ratio",
    "view_crop_top",
    "view_crop_left",
    "view_flip",
    "view_brightness",
    "view_contrast",
    "view_noise",
)


def _interpolation(size, start, length):
    """Bilinear resampling matrices `(batch, size, size)` of the boxes [start, start+length)."""
    out = tf.range(size, dtype=tf.float32)  # output pixel index
    # Source coordinate (pixel centres) of each output pixel centre.
    source = start[:, None] + (out[None, :] + 0.5) * (length[:, None] / size) - 0.5  # (b, size)
    grid = tf.range(size, dtype=tf.float32)
    return tf.nn.relu(1.0 - tf.abs(source[:, :, None] - grid[None, None, :]))  # (b, out, src)


def random_view(
    images,
    seed,
    min_crop_area=0.5,
    max_aspect_ratio=4.0 / 3.0,
    flip=False,
    brightness=0.2,
    contrast=0.3,
    noise_stddev=0.05,
):
    """One random view of each image.

    Args:
        images: float tensor `(batch, height, width, channels)`, pixels in [0, 1].
        seed: int tensor `(2,)`, e.g. `SeedGenerator.next()`.
        min_crop_area: float in (0, 1]. Smallest crop, as a fraction of the
            image area.
        max_aspect_ratio: float >= 1. Crops' aspect ratios lie in
            `[1 / max_aspect_ratio, max_aspect_ratio]` (log-uniform).
        flip: bool (static). Random horizontal flips.
        brightness: float. Added brightness is uniform in `[-brightness, brightness]`.
        contrast: float. Contrast factor uniform in `[1 - contrast, 1 + contrast]`
            around each image's mean.
        noise_stddev: float. Standard deviation of added Gaussian noise.

    Returns:
        float32 tensor of the shape of `images`, clipped to [0, 1].
    """
    # The seeds are split outside the compiled kernel (where `record_seeds`
    # sees them); the kernel draws from them.
    seeds = tf.stack(random.split(seed, _DRAWS))  # (draws, 2)
    return _random_view(
        images,
        seeds,
        float(min_crop_area),
        float(max_aspect_ratio),
        bool(flip),
        float(brightness),
        float(contrast),
        float(noise_stddev),
    )


def _random_view_kernel(images, seeds, min_crop_area, max_aspect_ratio, flip, brightness, contrast, noise_stddev):
    images = tf.cast(images, tf.float32)
    batch = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]

    def draw(k):
        # One U[0, 1) value per example from the k-th draw's seed.
        return random.uniform(seeds[k], [batch])

    # Random resized crop: area fraction and log aspect ratio per example
    area = min_crop_area + (1.0 - min_crop_area) * draw(0)
    log_ratio = tf.math.log(max_aspect_ratio) * (2.0 * draw(1) - 1.0)
    ratio = tf.exp(log_ratio)
    crop_h = tf.minimum(tf.sqrt(area * ratio), 1.0) * height  # (batch,)
    crop_w = tf.minimum(tf.sqrt(area / ratio), 1.0) * width
    top = (height - crop_h) * draw(2)
    left = (width - crop_w) * draw(3)
    rows = _interpolation(height, top, crop_h)  # (b, H, H)
    cols = _interpolation(width, left, crop_w)  # (b, W, W)
    if flip:
        flipped = tf.reverse(cols, axis=[1])
        cols = tf.where((draw(4) < 0.5)[:, None, None], flipped, cols)
    views = tf.einsum("bij,bjkc,blk->bilc", rows, images, cols)  # (b, H, W, C)

    # Brightness, contrast and pixel noise
    shift = brightness * (2.0 * draw(5) - 1.0)
    factor = 1.0 + contrast * (2.0 * draw(6) - 1.0)
    mean = tf.reduce_mean(views, axis=[1, 2, 3], keepdims=True)
    views = (views - mean) * factor[:, None, None, None] + mean + shift[:, None, None, None]
    views = views + noise_stddev * random.normal(seeds[7], [batch, height, width, channels])
    return tf.clip_by_value(views, 0.0, 1.0)


_random_view = xla_kernel(_random_view_kernel)
