"""The WGAN-GP kernel and the GAN losses against references computed another way."""

import numpy as np
import tensorflow as tf

from keras_pt.kernels import gan_losses
from keras_pt.kernels.gradient_penalty import gradient_penalty, interpolate
from tests.test_case import TestCase


def _softplus(x):
    return np.logaddexp(0.0, x)


class GradientPenaltyTest(TestCase):
    def test_quadratic_critic_matches_numpy_closed_form(self):
        # D(x) = 0.5 x'Ax + w'x has input gradient 0.5 (A + A') x + w.
        rng = np.random.default_rng()
        batch, dim = 7, 5
        a = rng.normal(size=(dim, dim)).astype("float32")
        w = rng.normal(size=(dim,)).astype("float32")
        real = rng.normal(size=(batch, dim)).astype("float32")
        fake = rng.normal(size=(batch, dim)).astype("float32")
        alpha = rng.uniform(size=(batch,)).astype("float32")

        def critic(x):
            return 0.5 * tf.reduce_sum(x * tf.matmul(x, a, transpose_b=True), -1) + tf.linalg.matvec(x, w)

        x_hat = alpha[:, None] * real + (1 - alpha[:, None]) * fake
        grads = x_hat @ (0.5 * (a + a.T)) + w
        expected = np.mean((np.linalg.norm(grads, axis=1) - 1.0) ** 2)
        for jit in (True, False):
            got = gradient_penalty(critic, tf.constant(real), tf.constant(fake), tf.constant(alpha), jit_compile=jit)
            self.assertAllClose(got, expected, rtol=1e-4, atol=1e-5)

    def test_conv_critic_matches_finite_differences(self):
        rng = np.random.default_rng()
        real = rng.uniform(-1, 1, size=(3, 4, 4, 2)).astype("float32")
        fake = rng.uniform(-1, 1, size=(3, 4, 4, 2)).astype("float32")
        alpha = rng.uniform(size=(3,)).astype("float32")
        kernel = rng.normal(size=(3, 3, 2, 4)).astype("float32") * 0.5
        dense = rng.normal(size=(64,)).astype("float64") * 0.3

        def critic_np(x):  # float64 NumPy twin of `critic`, one example
            padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
            out = np.zeros((4, 4, 4))
            for i in range(4):
                for j in range(4):
                    out[i, j] = np.tensordot(padded[i : i + 3, j : j + 3], kernel, 3)
            return float(np.tanh(out).reshape(-1) @ dense)

        def critic(x):
            h = tf.tanh(tf.nn.conv2d(x, kernel, 1, "SAME"))
            return tf.linalg.matvec(tf.reshape(h, [-1, 64]), dense.astype("float32"))

        x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
        eps, norms = 1e-5, []
        for x in x_hat.astype("float64"):
            grad = np.zeros_like(x)
            for idx in np.ndindex(x.shape):
                step = np.zeros_like(x)
                step[idx] = eps
                grad[idx] = (critic_np(x + step) - critic_np(x - step)) / (2 * eps)
            norms.append(np.linalg.norm(grad))
        expected = np.mean((np.array(norms) - 1.0) ** 2)
        got = gradient_penalty(critic, tf.constant(real), tf.constant(fake), tf.constant(alpha))
        self.assertAllClose(got, expected, rtol=1e-3, atol=1e-4)

    def test_gradient_with_respect_to_critic_weights(self):
        # Linear critic x'w: penalty (|w| - 1)^2, d/dw = 2 (|w| - 1) w / |w|.
        w_np = np.random.default_rng().normal(size=(6,)).astype("float32")
        w = tf.Variable(w_np)
        x = tf.random.normal((4, 6))
        with tf.GradientTape() as tape:
            penalty = gradient_penalty(
                lambda v: tf.linalg.matvec(v, w), x, tf.random.normal((4, 6)), tf.random.uniform((4,))
            )
        norm = np.linalg.norm(w_np)
        self.assertAllClose(penalty, (norm - 1) ** 2, rtol=1e-5)
        self.assertAllClose(tape.gradient(penalty, w), 2 * (norm - 1) * w_np / norm, rtol=1e-4)

    def test_interpolate_endpoints_and_shape_error(self):
        real, fake = tf.ones((2, 3, 3, 1)), tf.zeros((2, 3, 3, 1))
        self.assertAllClose(interpolate(real, fake, tf.constant([1.0, 0.0]))[:, 0, 0, 0], [1.0, 0.0])
        with self.assertRaisesRegex(ValueError, "same shape"):
            gradient_penalty(lambda x: x, real, tf.zeros((2, 4, 4, 1)), tf.ones((2,)))


class GANLossesTest(TestCase):
    def test_losses_match_numpy(self):
        rng = np.random.default_rng()
        real = rng.normal(size=(9, 1)).astype("float32") * 3
        fake = rng.normal(size=(9, 1)).astype("float32") * 3
        r, f = real[:, 0].astype("float64"), fake[:, 0].astype("float64")
        expected_d = {
            "non_saturating": np.mean(_softplus(-r)) + np.mean(_softplus(f)),
            "hinge": np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
            "wasserstein": np.mean(f) - np.mean(r),
        }
        expected_g = {
            "non_saturating": np.mean(_softplus(-f)),
            "hinge": -np.mean(f),
            "wasserstein": -np.mean(f),
        }
        for name in gan_losses.LOSS_NAMES:
            self.assertAllClose(gan_losses.discriminator_loss(real, fake, name), expected_d[name], rtol=1e-5)
            self.assertAllClose(gan_losses.generator_loss(fake, name), expected_g[name], rtol=1e-5)
        # The non-saturating D loss is binary cross-entropy with real=1, fake=0.
        bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
        self.assertAllClose(
            gan_losses.discriminator_loss(real, fake),
            bce(np.ones_like(real), real) + bce(np.zeros_like(fake), fake),
            rtol=1e-5,
        )

    def test_unknown_loss_name(self):
        with self.assertRaisesRegex(ValueError, "unknown GAN loss 'lsgan'.*hinge"):
            gan_losses.generator_loss(tf.zeros((2,)), "lsgan")
