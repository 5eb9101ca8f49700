"""SimCLR: unit tests, the train_step contract, and a 28x28 learning test."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_pt
from keras_pt import SimCLR, SVMClassifier
from keras_pt.evaluation import baselines
from keras_pt.kernels import augment
from tests.test_case import TestCase


def images(n=32, size=8, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype("float32")


def small(**kwargs):
    return SimCLR(image_shape=(8, 8, 1), filters=(4, 8), feature_dim=8, projection_dim=4, seed=3, **kwargs)


class SimCLRTest(TestCase):
    def test_fit_config_saving(self):
        x = images()
        for architecture in ("conv", "dense"):
            model = small(architecture=architecture)
            model.compile(optimizer="adam")
            history = self.run_fit(model, tf.data.Dataset.from_tensor_slices(x).batch(16, drop_remainder=True))
            self.assertIn("view_accuracy", history.history)
            self.assertEqual(model.encoder(x).shape, (32, 8))
            self.run_config_roundtrip(model)
            restored = self.run_saving(model, x)
            self.assertAllClose(restored.encoder(x), model.encoder(x), atol=1e-6)

    def test_views(self):
        x = images(16)
        seed = tf.constant([1, 2], tf.int32)
        a = augment.random_view(x, seed).numpy()
        self.assertEqual(a.shape, x.shape)
        self.assertTrue(np.all((a >= 0) & (a <= 1)))
        self.assertAllClose(a, augment.random_view(x, seed))  # stateless
        self.assertNotAllClose(a, augment.random_view(x, tf.constant([1, 3], tf.int32)))
        # Without crop, jitter or noise a view is the image itself.
        same = augment.random_view(
            x, seed, min_crop_area=1.0, max_aspect_ratio=1.0, brightness=0.0, contrast=0.0, noise_stddev=0.0
        )
        self.assertAllClose(same, x, atol=1e-5)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "unknown architecture 'resnet'"):
            SimCLR(image_shape=(8, 8, 1), architecture="resnet")
        with self.assertRaisesRegex(ValueError, "temperature must be positive"):
            SimCLR(image_shape=(8, 8, 1), temperature=0.0)


def digits_28(split):
    """The embedded digits, resized to 28x28 (the conv path of 28x28 data sets)."""
    data = keras_pt.data.load_image_dataset("digits")
    pairs = list(getattr(data, split).as_numpy_iterator())
    x = np.stack([p[0] for p in pairs])
    y = np.asarray([p[1] for p in pairs])
    return tf.image.resize(x, (28, 28)).numpy().clip(0, 1), y


@pytest.mark.slow
class SimCLRLearningTest(TestCase):
    def test_probe_beats_raw_pixels_on_28x28(self):
        train_x, train_y = digits_28("train")
        test_x, test_y = digits_28("test")
        model = SimCLR(image_shape=(28, 28, 1), seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        batches = tf.data.Dataset.from_tensor_slices(train_x).shuffle(2048, seed=0).batch(128, drop_remainder=True)
        model.fit(batches, epochs=8, verbose=0)
        probe, raw = [], []
        for draw in range(3):
            rng = np.random.default_rng(draw)
            idx = np.concatenate([rng.choice(np.flatnonzero(train_y == c), 10, replace=False) for c in range(10)])
            svm = SVMClassifier(model.encoder, num_classes=10)
            svm.adapt(train_x[idx], train_y[idx])  # the linear probe, solved
            probe.append(float(np.mean(np.argmax(svm.predict(test_x, verbose=0), -1) == test_y)))
            raw.append(baselines.linear_svm_accuracy(train_x[idx], train_y[idx], test_x, test_y))
        print(
            f"28x28 digits: probe {np.mean(probe):.3f} ± {np.std(probe):.3f}, "
            f"raw-pixel LinearSVC {np.mean(raw):.3f} ± {np.std(raw):.3f}"
        )
        self.assertGreater(np.mean(probe), np.mean(raw) + np.std(raw))
