"""Input corruption for denoising autoencoders."""

import tensorflow as tf

from keras_pt.kernels import random


@tf.function(jit_compile=True, autograph=False)
def corrupt(x, normal, uniform, noise_stddev, mask_rate):
    """Gaussian noise then masking noise, from given draws.

    `out = 0 where uniform < mask_rate, else x + noise_stddev * normal`.

    Args:
        x: float tensor, the clean inputs.
        normal: N(0, 1) draws of `x`'s shape.
        uniform: U[0, 1) draws of `x`'s shape.
        noise_stddev: float scalar. Standard deviation of the additive noise.
        mask_rate: float scalar in [0, 1]. Fraction of entries set to zero.
    """
    noisy = x + tf.cast(noise_stddev, x.dtype) * tf.cast(normal, x.dtype)
    keep = uniform >= tf.cast(mask_rate, uniform.dtype)
    return tf.where(keep, noisy, tf.zeros_like(noisy))


def add_noise(x, seed, noise_stddev, mask_rate):
    """Corrupts a batch with draws that are the same on 1 or N replicas.

    Args:
        x: float tensor `(batch, ...)` with a static shape, this replica's
            slice of the global batch.
        seed: shape-(2,) integer seed, e.g. `SeedGenerator.next()`.
        noise_stddev: float. Standard deviation of the Gaussian noise.
        mask_rate: float. Fraction of entries set to zero.
    """
    normal_seed, mask_seed = random.split(seed, ("noise_normal", "noise_mask"))
    shape = x.shape
    normal = random.normal(normal_seed, shape)
    uniform = random.uniform(mask_seed, shape)
    return corrupt(x, normal, uniform, noise_stddev, mask_rate)
