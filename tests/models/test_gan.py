"""Generator, Discriminator and GAN: shapes, phases, distribution, saving, errors."""

import os
import pytest

import keras
import numpy as np
import tensorflow as tf

from keras_pt import GAN, Discriminator, Generator, SVMClassifier
from keras_pt.kernels import random as kernels_random
from tests.test_case import TestCase

SHAPE = [8, 8, 1]


def _images(n=32, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *shape)).astype("float32")


def _gan(loss="non_saturating", num_classes=None, shape=SHAPE, **kwargs):
    return GAN(
        Generator(shape, latent_dim=8, base_filters=4, hidden_dims=[16, 16], num_classes=num_classes),
        Discriminator(shape, base_filters=4, hidden_dims=[16, 16], num_classes=num_classes),
        loss=loss,
        seed=3,
        **kwargs,
    )


def _dataset(n=32, batch_size=8, labels=False):
    images = _images(n)
    if labels:
        return tf.data.Dataset.from_tensor_slices((images, np.arange(n) % 3)).batch(batch_size, drop_remainder=True)
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size, drop_remainder=True)


class GeneratorDiscriminatorTest(TestCase):
    def test_dcgan_and_dense_shapes(self):
        for shape, features in (
            ([8, 8, 1], 4 * 4 * 8),
            ([28, 28, 1], 7 * 7 * 16),
            ([32, 32, 3], 4 * 4 * 32),
            ([12], 16),
        ):
            generator = Generator(shape, latent_dim=8, base_filters=4, hidden_dims=[16, 16])
            discriminator = Discriminator(shape, base_filters=4, hidden_dims=[32, 16])
            images = generator(tf.random.normal((3, 8)))
            self.assertEqual(images.shape, (3, *shape))
            self.assertAllInRange(images, -1.0, 1.0)
            self.assertEqual(discriminator(images).shape, (3, 1))
            self.assertEqual(discriminator.encoder(images).shape, (3, features))

    def test_conditional_pair(self):
        generator = Generator(SHAPE, latent_dim=8, base_filters=4, num_classes=3)
        discriminator = Discriminator(SHAPE, base_filters=4, num_classes=3)
        z, labels = tf.random.normal((4, 8)), tf.constant([0, 1, 2, 0])
        images = generator((z, labels))
        self.assertEqual(discriminator((images, labels)).shape, (4, 1))
        self.assertNotAllClose(images[0], generator((z, tf.constant([1, 1, 2, 0])))[0])
        with self.assertRaisesRegex(ValueError, r"takes \(z, labels\)"):
            generator(z)

    def test_config_and_saving(self):
        for model, inputs in (
            (Generator(SHAPE, latent_dim=8, base_filters=4), tf.random.normal((2, 8))),
            (Generator([12], latent_dim=8, hidden_dims=[16]), tf.random.normal((2, 8))),
            (Discriminator(SHAPE, base_filters=4), tf.constant(_images(2))),
            (
                Discriminator(SHAPE, base_filters=4, num_classes=3),
                (tf.constant(_images(2)), tf.constant([0, 2])),
            ),
        ):
            self.run_config_roundtrip(model)
            self.run_saving(model, inputs)

    def test_pooled_encoder(self):
        images = tf.constant(_images(3))
        discriminator = Discriminator(SHAPE, base_filters=4)
        # down_0: (4, 4, 4) -> (2, 2, 4); features: (4, 4, 8) -> (2, 2, 8).
        pooled = discriminator.pooled_encoder(grid_size=2)
        self.assertEqual(pooled(images).shape, (3, 2 * 2 * 4 + 2 * 2 * 8))
        # The last block's part is the max over each 2x2 window of the maps
        # the encoder flattens, sharing the discriminator's weights.
        maps = tf.reshape(discriminator.encoder(images), (3, 4, 4, 8))
        expected = tf.reshape(tf.nn.max_pool2d(maps, 2, 2, "VALID"), (3, -1))
        self.assertAllClose(pooled(images)[:, 16:], expected)
        self.assertEqual(discriminator.pooled_encoder(grid_size=4)(images).shape, (3, 64 + 128))
        dense = Discriminator([12], hidden_dims=[16, 8])
        self.assertEqual(dense.pooled_encoder()(tf.zeros((2, 12))).shape, (2, 24))
        with self.assertRaisesRegex(ValueError, "grid_size must be a positive int"):
            discriminator.pooled_encoder(grid_size=0)

    def test_generator_norm_momentum(self):
        generator = Generator(SHAPE, latent_dim=8, base_filters=4, norm_momentum=0.8)
        self.assertEqual(generator.network.get_layer("up_0_norm").momentum, 0.8)
        self.assertEqual(Generator.from_config(generator.get_config()).norm_momentum, 0.8)
        with self.assertRaisesRegex(ValueError, r"norm_momentum must lie in \[0, 1\)"):
            Generator(SHAPE, latent_dim=8, norm_momentum=1.0)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "latent_dim must be a positive int"):
            Generator(SHAPE, latent_dim=0)
        with self.assertRaisesRegex(ValueError, "latent_dim must be a positive int"):
            GAN(Generator(SHAPE, 8, base_filters=4), Discriminator(SHAPE, base_filters=4), latent_dim=-1)
        with self.assertRaisesRegex(ValueError, "unknown architecture 'resnet'"):
            Discriminator(SHAPE, architecture="resnet")
        with self.assertRaisesRegex(ValueError, "needs image_shape"):
            Generator([64], architecture="dcgan")
        with self.assertRaisesRegex(ValueError, "unknown GAN loss 'minimax'"):
            _gan(loss="minimax")
        with self.assertRaisesRegex(ValueError, "discriminator reads"):
            GAN(Generator(SHAPE, 8, base_filters=4), Discriminator([28, 28, 1], base_filters=4))
        with self.assertRaisesRegex(ValueError, "d_steps"):
            _gan(d_steps=0)
        with self.assertRaisesRegex(ValueError, "latent vectors of size 8"):
            Generator(SHAPE, latent_dim=8, base_filters=4)(tf.zeros((2, 5)))
        with self.assertRaisesRegex(ValueError, r"shape \(batch, 8, 8, 1\)"):
            Discriminator(SHAPE, base_filters=4)(tf.zeros((2, 28, 28, 1)))

    def test_wrong_image_shape_in_fit(self):
        gan = _gan()
        gan.compile()
        wrong = tf.data.Dataset.from_tensor_slices(np.zeros((8, 28, 28, 1), "float32")).batch(4)
        with self.assertRaisesRegex(ValueError, r"real data of shape \(batch, 8, 8, 1\)"):
            gan.fit(wrong, verbose=0)
        conditional = _gan(num_classes=3)
        conditional.compile()
        with self.assertRaisesRegex(ValueError, r"trains on \(images, labels\)"):
            conditional.fit(_dataset(), verbose=0)


class GANTest(TestCase):
    def setUp(self):
        super().setUp()
        # Each MirroredStrategy starts its collective keys here; a fresh base
        # per test keeps a new strategy's all-reduces from colliding with
        # instances that an earlier strategy left in the collective executor.
        tf.distribute.MirroredStrategy._collective_key_base += 100_000

    def test_phases_touch_only_their_own_model(self):
        for loss in ("non_saturating", "wasserstein"):
            gan = _gan(loss)
            gan.compile()
            real = tf.constant(_images(8))
            g0 = [w.numpy() for w in gan.generator.trainable_weights]
            d0 = [w.numpy() for w in gan.discriminator.trainable_weights]
            gan.train_discriminator(real)
            g1 = [w.numpy() for w in gan.generator.trainable_weights]
            d1 = [w.numpy() for w in gan.discriminator.trainable_weights]
            for a, b in zip(g0, g1):
                self.assertAllEqual(a, b)
            self.assertTrue(any(not np.allclose(a, b) for a, b in zip(d0, d1)))
            gan.train_generator(8)
            for a, b in zip(d1, gan.discriminator.trainable_weights):
                self.assertAllEqual(a, b.numpy())
            self.assertTrue(any(not np.allclose(a, b.numpy()) for a, b in zip(g1, gan.generator.trainable_weights)))

    def test_reused_fakes_equal_a_second_generator_pass(self):
        # reuse_fakes=True (the default) scores the discriminator phase's
        # fake batch in the generator phase. Reference: the same phases with
        # reuse_fakes=False, where the generator phase draws the same latent
        # vectors again (seed state rewound) and runs the generator twice.
        real = tf.constant(_images(8))
        for loss, conditional in (("non_saturating", False), ("wasserstein", True)):
            with self.subTest(loss=loss, conditional=conditional):
                classes = 3 if conditional else None
                labels = tf.constant([0, 1, 2, 0, 1, 2, 0, 1]) if conditional else None
                data = (real, labels) if conditional else real

                def make(reuse, classes=classes, loss=loss):
                    gan = GAN(
                        Generator(SHAPE, latent_dim=8, base_filters=4, num_classes=classes),
                        Discriminator(SHAPE, base_filters=4, num_classes=classes),
                        loss=loss,
                        seed=3,
                        reuse_fakes=reuse,
                    )
                    gan.compile()
                    return gan

                reused, fresh = make(True), make(False)
                fresh.set_weights(reused.get_weights())
                self.assertTrue(reused.reuse_fakes)
                reused.train_step(data)
                state = fresh.seed_generator.state.numpy()
                fresh.train_discriminator(real, labels)
                fresh.seed_generator.state.assign(state)
                fresh.train_generator(8)
                for a, b in zip(reused.trainable_weights, fresh.trainable_weights):
                    self.assertAllClose(a, b, atol=1e-6)
                self.assertTrue(
                    any(not np.allclose(a, b) for a, b in zip(make(True).trainable_weights, reused.trainable_weights))
                )
        self.assertFalse(GAN.from_config(_gan(reuse_fakes=False).get_config()).reuse_fakes)

    def test_one_discriminator_pass_equals_two(self):
        real, fake = tf.constant(_images(6, seed=1)), tf.constant(_images(6, seed=2))
        for classes in (None, 3):
            gan = _gan(num_classes=classes)
            self.assertTrue(gan._per_example_discriminator)
            labels = None if classes is None else tf.constant([0, 1, 2, 0, 1, 2])
            fake_labels = None if classes is None else tf.constant([2, 2, 1, 1, 0, 0])
            real_logits, fake_logits = gan._score_real_and_fake(real, labels, fake, fake_labels)
            self.assertAllClose(real_logits, gan.discriminator(gan._discriminator_inputs(real, labels)), atol=1e-5)
            self.assertAllClose(
                fake_logits,
                gan.discriminator(gan._discriminator_inputs(fake, fake_labels)),
                atol=1e-5,
            )
        # A discriminator with batch statistics scores each batch on its own.
        discriminator = keras.Sequential(
            [
                keras.Input(SHAPE),
                keras.layers.Flatten(),
                keras.layers.Dense(4),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(1),
            ]
        )
        gan = GAN(Generator(SHAPE, latent_dim=8, base_filters=4), discriminator, seed=0)
        self.assertFalse(gan._per_example_discriminator)
        real_logits, fake_logits = gan._score_real_and_fake(real, None, fake, None)
        self.assertAllClose(fake_logits, discriminator(fake, training=True), atol=1e-5)
        joint = discriminator(tf.concat([real, fake], axis=0), training=True)[6:]
        self.assertNotAllClose(fake_logits, joint)
        gan.compile()
        self.assertEqual(set(self.run_fit(gan, _dataset()).history), {"loss", "d_loss", "g_loss"})

    @pytest.mark.slow
    def test_fit_all_losses_jit_and_conditional(self):
        for loss, jit, classes in (
            ("non_saturating", True, None),
            ("hinge", False, None),
            ("wasserstein", True, None),
            ("wasserstein", False, 3),
        ):
            gan = _gan(loss, num_classes=classes, d_steps=2 if loss == "wasserstein" else 1)
            gan.compile(jit_compile=jit)
            self.assertEqual(gan.jit_compile, jit)
            history = self.run_fit(gan, _dataset(labels=classes is not None))
            expected = {"loss", "d_loss", "g_loss"} | ({"gradient_penalty"} if loss == "wasserstein" else set())
            self.assertEqual(set(history.history), expected)

    @pytest.mark.slow
    def test_strategy_equivalence_and_true_mean_loss(self):
        def reference_d_loss(model, batch):
            # The first step's latent vectors: a stateless draw for the whole
            # global batch from the seed split off the generator's state.
            saved = model.get_weights()
            (seed,) = kernels_random.split(model.seed_generator.state, ("latent",))
            z = tf.random.stateless_normal((batch.shape[0], model.latent_dim), seed=seed)
            fake = model.generator(z, training=True)
            model.set_weights(saved)  # undo the batch-norm statistics update
            real_logits = np.asarray(model.discriminator(batch), "float64")
            fake_logits = np.asarray(model.discriminator(fake), "float64")
            return np.mean(np.logaddexp(0, -real_logits)) + np.mean(np.logaddexp(0, fake_logits))

        def build():
            gan = _gan("non_saturating")
            gan.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.Adam(1e-2))
            return gan

        self.run_strategy_equivalence(
            build,
            _dataset(n=24, batch_size=8),
            steps=3,
            loss_keys=("d_loss", "g_loss", "loss"),
            reference_loss=reference_d_loss,
        )

    @pytest.mark.slow
    def test_strategy_equivalence_wasserstein_conditional(self):
        def build():
            gan = _gan("wasserstein", num_classes=3, d_steps=2)
            gan.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.Adam(1e-2))
            return gan

        self.run_strategy_equivalence(
            build,
            _dataset(n=16, batch_size=8, labels=True),
            steps=2,
            loss_keys=("d_loss", "g_loss", "gradient_penalty"),
        )

    @pytest.mark.slow
    def test_config_saving_and_continued_training(self):
        gan = _gan("wasserstein")
        gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.RMSprop(1e-3))
        self.run_config_roundtrip(gan)
        gan.fit(_dataset(), verbose=0)
        z = tf.random.normal((3, 8))
        restored = self.run_saving(gan, z)
        self.assertIsInstance(restored.d_optimizer, keras.optimizers.Adam)
        self.assertIsInstance(restored.g_optimizer, keras.optimizers.RMSprop)
        self.assertEqual(int(restored.d_optimizer.iterations), 4)
        self.assertAllEqual(restored.seed_generator.state, gan.seed_generator.state)
        for a, b in zip(gan.d_optimizer.variables, restored.d_optimizer.variables):
            self.assertAllClose(a, b)
        # Both continue identically: weights, optimizer state and seed were restored.
        gan.fit(_dataset(), verbose=0)
        restored.fit(_dataset(), verbose=0)
        for a, b in zip(gan.get_weights(), restored.get_weights()):
            self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)

    def test_generator_savedmodel_export(self):
        for classes in (None, 3):
            generator = Generator(SHAPE, latent_dim=8, base_filters=4, num_classes=classes)
            path = os.path.join(self.get_temp_dir(), f"generator_{classes}")
            generator.export_saved_model(path)
            loaded = tf.saved_model.load(path)
            z = tf.random.normal((5, 8))
            if classes is None:
                self.assertAllClose(loaded.serve(z), generator(z), atol=1e-5)
            else:
                labels = tf.constant([0, 1, 2, 0, 1])
                self.assertAllClose(loaded.serve(z, labels), generator((z, labels)), atol=1e-5)

    def test_encoder_transfers_to_svm(self):
        gan = _gan()
        encoder = gan.encoder
        self.assertIs(encoder, gan.discriminator.encoder)
        svm = SVMClassifier(encoder, num_classes=3)
        svm.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = svm.fit(_images(24), np.arange(24) % 3, batch_size=8, epochs=2, verbose=0)
        self.assertIn("accuracy", history.history)
        self.assertEqual(svm(_images(2)).shape, (2, 3))
