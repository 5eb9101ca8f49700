"""Learning test: a short GAN training on the embedded digits brings the
Fréchet distance far below that of the untrained generator."""

import keras
import pytest

from keras_pt import GAN, Discriminator, Generator, data
from keras_pt.evaluation import GeneratorEvaluator, images_array, train_feature_classifier
from tests.test_case import TestCase


@pytest.mark.slow
class GANLearningTest(TestCase):
    def test_frechet_distance_falls_on_digits(self):
        digits = data.load_image_dataset("digits", data_dir=self.get_temp_dir())
        classifier, accuracy = train_feature_classifier(digits, epochs=20)
        self.assertGreater(accuracy, 0.8)
        evaluator = GeneratorEvaluator(classifier, images_array(digits.train), latent_dim=32, num_samples=500)
        gan = GAN(
            Generator([8, 8, 1], latent_dim=32, base_filters=32),
            Discriminator([8, 8, 1], base_filters=32),
            seed=0,
        )
        gan.compile(
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            jit_compile=True,
        )
        untrained = evaluator(gan.generator)["frechet_distance"]
        images = data.unlabeled(digits.train).map(lambda x: x * 2.0 - 1.0)
        gan.fit(data.batch(images, 64, shuffle_seed=0), epochs=10, verbose=0)
        trained = evaluator(gan.generator)["frechet_distance"]
        self.assertLess(trained, 0.35 * untrained, f"FD {untrained:.2f} -> {trained:.2f}")
