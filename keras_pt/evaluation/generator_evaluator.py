"""GeneratorEvaluator: Fréchet and kernel distance of a generator's samples."""

import numpy as np

from keras_pt.evaluation import distances
from keras_pt.models.generator import fixed_latents


class GeneratorEvaluator:
    """Scores a generator against real images in a classifier's feature space.

    The real features are computed once; each call draws `num_samples`
    images from a fixed set of latent vectors (so successive scores differ
    only through the generator), maps them from `value_range` to [0, 1] and
    compares their features with the real ones.

    Args:
        classifier: a `FeatureClassifier` (anything with `features(images)`)
            trained on the data set, images in [0, 1].
        real_images: array `(n, height, width, channels)` in [0, 1].
        latent_dim: int. The generator's latent size.
        num_samples: int. Generated images per score. Defaults to 1000.
        value_range: tuple. Range of the generator's outputs. Defaults to
            `(-1, 1)` (tanh).
        num_classes: int or None. For a conditional generator, labels cycle
            through the classes. Defaults to None.
        batch_size: int. Generation batch size. Defaults to 250.
        seed: int. Seed of the latent vectors. Defaults to 0.

    Example:

    >>> evaluator = GeneratorEvaluator(classifier, real, latent_dim=64)  # doctest: +SKIP
    >>> evaluator(gan.generator)  # doctest: +SKIP
    {'frechet_distance': 12.3, 'kernel_distance': 0.05}
    """

    def __init__(
        self,
        classifier,
        real_images,
        latent_dim,
        num_samples=1000,
        value_range=(-1.0, 1.0),
        num_classes=None,
        batch_size=250,
        seed=0,
    ):
        real_images = np.asarray(real_images, dtype=np.float32)
        if real_images.ndim != 4:
            raise ValueError(
                f"real_images must be (num_images, height, width, channels); got shape {real_images.shape}."
            )
        if int(num_samples) < 2 or int(latent_dim) <= 0:
            raise ValueError(f"num_samples must be >= 2 and latent_dim > 0; got {num_samples} and {latent_dim}.")
        self.classifier = classifier
        self.batch_size = int(batch_size)
        self.value_range = tuple(float(v) for v in value_range)
        self.real_features = self._features(real_images)
        self.latents, self.labels = fixed_latents(num_samples, latent_dim, num_classes, seed)

    def _features(self, images):
        parts = [
            np.asarray(self.classifier.features(images[i : i + self.batch_size]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts)

    def generate(self, generator):
        """The evaluation images of `generator`, mapped to [0, 1]."""
        low, high = self.value_range
        parts = []
        for i in range(0, len(self.latents), self.batch_size):
            z = self.latents[i : i + self.batch_size]
            inputs = z if self.labels is None else (z, self.labels[i : i + self.batch_size])
            parts.append(np.asarray(generator(inputs, training=False)))
        images = (np.concatenate(parts) - low) / (high - low)
        return np.clip(images, 0.0, 1.0)

    def __call__(self, generator):
        fake_features = self._features(self.generate(generator))
        return {
            "frechet_distance": distances.frechet_distance(self.real_features, fake_features),
            "kernel_distance": distances.kernel_distance(self.real_features, fake_features),
        }
