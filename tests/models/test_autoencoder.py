import numpy as np
import tensorflow as tf
import keras
import pytest

from keras_pt import Autoencoder, DenoisingAutoencoder
from tests.test_case import TestCase


def images(n=32, shape=(8, 8, 1), seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype("float32")


def image_dataset(n=32, batch_size=8, shape=(8, 8, 1)):
    return tf.data.Dataset.from_tensor_slices(images(n, shape)).batch(batch_size, drop_remainder=True)


class AutoencoderTest(TestCase):
    def test_shapes(self):
        for architecture, shape in (
            ("dense", (8, 8, 1)),
            ("conv", (8, 8, 1)),
            ("conv", (28, 28, 1)),
            ("conv", (32, 32, 3)),
        ):
            model = Autoencoder(
                image_shape=shape, latent_dim=6, architecture=architecture, filters=(4, 8), hidden_dims=(16,)
            )
            x = images(4, shape)
            self.assertEqual(model(x).shape, (4,) + shape)
            self.assertEqual(model.encoder(x).shape, (4, 6))
            self.assertEqual(model.decoder(np.zeros((4, 6), "float32")).shape, (4,) + shape)

    @pytest.mark.slow
    def test_config_and_saving(self):
        for cls, extra in (
            (Autoencoder, {}),
            (DenoisingAutoencoder, {"noise_stddev": 0.1, "mask_rate": 0.3, "seed": 3}),
        ):
            for architecture in ("dense", "conv"):
                model = cls(
                    image_shape=(8, 8, 1),
                    latent_dim=4,
                    architecture=architecture,
                    hidden_dims=(16,),
                    filters=(4,),
                    reconstruction_loss="binary_crossentropy",
                    **extra,
                )
                model.compile(optimizer="adam")
                self.run_fit(model, image_dataset())
                self.run_config_roundtrip(model)
                restored = self.run_saving(model, images(4))
                self.assertEqual(restored.get_config(), model.get_config())
                # The restored model keeps training.
                self.run_fit(restored, image_dataset())

    @pytest.mark.slow
    def test_strategy_equivalence_conv_binary_crossentropy(self):
        # tests/strategy_cases.py holds the dense Autoencoder (MSE) and the
        # conv DenoisingAutoencoder; this is the conv one with the other loss.
        def build():
            model = Autoencoder(
                image_shape=(8, 8, 1),
                latent_dim=4,
                architecture="conv",
                filters=(4, 8),
                reconstruction_loss="binary_crossentropy",
            )
            model(np.zeros((1, 8, 8, 1), "float32"))
            model.compile(optimizer=keras.optimizers.SGD(0.5))
            return model

        def reference(model, batch):
            return float(np.mean(model.per_example_loss(batch, model(batch))))

        self.run_strategy_equivalence(build, image_dataset(64, 16), steps=3, reference_loss=reference)

    def test_denoising_corrupts_only_in_training(self):
        model = DenoisingAutoencoder(image_shape=(8, 8, 1), latent_dim=4, noise_stddev=0.0, mask_rate=0.5, seed=1)
        x = images(8)
        corrupted = model.corrupt(x).numpy()
        self.assertAllClose((corrupted == 0).mean(), 0.5, atol=0.1)
        self.assertAllClose(model(x), model(x))
        # Two training batches get different noise: the seed advances.
        self.assertNotAllClose(corrupted, model.corrupt(x))

    def test_bad_input(self):
        model = Autoencoder(image_shape=(8, 8, 1), latent_dim=4)
        with self.assertRaisesRegex(ValueError, r"takes images of shape \(batch, 8, 8, 1\).*image_shape=\(28, 28, 1\)"):
            model(images(2, (28, 28, 1)))
        with self.assertRaisesRegex(ValueError, "unknown architecture 'mlp'"):
            Autoencoder(image_shape=(8, 8, 1), architecture="mlp")
        with self.assertRaisesRegex(ValueError, "multiples of 4"):
            Autoencoder(image_shape=(10, 10, 1), architecture="conv", filters=(4, 8))
        with self.assertRaisesRegex(ValueError, "latent_dim must be positive"):
            Autoencoder(image_shape=(8, 8, 1), latent_dim=0)
        with self.assertRaisesRegex(ValueError, "image_shape must be"):
            Autoencoder(image_shape=(8, 8))
        with self.assertRaisesRegex(ValueError, "mask_rate"):
            DenoisingAutoencoder(image_shape=(8, 8, 1), mask_rate=1.5)

    @pytest.mark.slow
    def test_jit_compiled_step(self):
        for cls in (Autoencoder, DenoisingAutoencoder):
            model = cls(image_shape=(8, 8, 1), latent_dim=4, architecture="conv", filters=(4,))
            model.compile(optimizer="adam", jit_compile=True)
            self.assertTrue(model.jit_compile)
            self.run_fit(model, image_dataset())
