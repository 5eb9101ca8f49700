"""Image grids: many small images tiled into one PNG."""

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image


def image_grid(images, rows, columns, pad=1, scale=4):
    """Tiles `rows * columns` images in [0, 1] into one uint8 array.

    Args:
        images: array `(n, height, width, channels)`, n >= rows * columns,
            values in [0, 1] (clipped). One or three channels.
        rows: int. Grid rows.
        columns: int. Grid columns.
        pad: int. Pixels of white between images. Defaults to 1.
        scale: int. Nearest-neighbour upscaling of each image. Defaults to 4.

    Returns:
        uint8 array `(rows*(h+pad)+pad, columns*(w+pad)+pad, channels)` after
        upscaling.
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 4 or images.shape[0] < rows * columns:
        raise ValueError(f"need at least {rows * columns} images of shape (n, h, w, c), got {images.shape}.")
    images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, c = images.shape
    grid = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.float32)
    for i in range(rows * columns):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = images[i]
    return (grid * 255.0 + 0.5).astype(np.uint8)


def save_image_grid(images, path, rows, columns, **kwargs):
    """Writes `image_grid(images, rows, columns, **kwargs)` as a PNG file."""
    return write_png(image_grid(images, rows, columns, **kwargs), path)


def write_png(grid, path):
    """Writes a `uint8` grid `(height, width, 1 or 3)` as a PNG file through
    `tf.io.gfile` (local, `gs://` or any filesystem TensorFlow knows)."""
    directory = os.path.dirname(str(path))
    if directory:
        tf.io.gfile.makedirs(directory)
    mode = "L" if grid.shape[-1] == 1 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(grid[..., 0] if mode == "L" else grid, mode=mode).save(buffer, format="PNG")
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())
    return path
