"""DenoisingAutoencoder: reconstructs clean images from corrupted ones."""

import keras

from keras_pt.kernels import noise
from keras_pt.models.autoencoder import Autoencoder


@keras.saving.register_keras_serializable(package="keras_pt")
class DenoisingAutoencoder(Autoencoder):
    """An `Autoencoder` trained to undo Gaussian and masking noise.

    `train_step` corrupts each batch with the jit-compiled
    `keras_pt.kernels.noise` kernel (seeded from the model's
    `SeedGenerator`, identical on one device and across replicas) and scores
    the reconstruction against the clean images. `call` and `test_step` use
    the images as given.

    Args:
        noise_stddev: float. Standard deviation of additive Gaussian noise.
            Defaults to 0.2.
        mask_rate: float in [0, 1). Fraction of pixels set to zero.
            Defaults to 0.2.
        seed: int or None. Seed of the noise. Defaults to None.
        **kwargs: the `Autoencoder` arguments.

    Example:

    >>> import numpy as np
    >>> model = DenoisingAutoencoder(image_shape=(8, 8, 1), latent_dim=4, seed=0)
    >>> model.compile(optimizer="adam")
    >>> images = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> history = model.fit(images, batch_size=16, epochs=1, verbose=0)

    References:
        Vincent et al., "Extracting and Composing Robust Features with
        Denoising Autoencoders", ICML 2008.
    """

    def __init__(self, noise_stddev=0.2, mask_rate=0.2, seed=None, **kwargs):
        if noise_stddev < 0:
            raise ValueError(f"noise_stddev must be >= 0, got {noise_stddev}.")
        if not 0 <= mask_rate < 1:
            raise ValueError(f"mask_rate must lie in [0, 1), got {mask_rate}.")
        super().__init__(**kwargs)

        # === Layers ===
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

        # === Config ===
        self.noise_stddev = float(noise_stddev)
        self.mask_rate = float(mask_rate)
        self.seed = seed

    def corrupt(self, images):
        return noise.add_noise(images, self.seed_generator.next(), self.noise_stddev, self.mask_rate)

    def get_config(self):
        config = super().get_config()
        config.update({"noise_stddev": self.noise_stddev, "mask_rate": self.mask_rate, "seed": self.seed})
        return config
