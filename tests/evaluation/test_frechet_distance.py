"""Fréchet / kernel distances, the feature classifier and the GAN callbacks."""

import glob
import os

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from keras_pt import Generator
from keras_pt.callbacks import FrechetDistance, SampleGrid, image_grid
from keras_pt.evaluation import (
    FeatureClassifier,
    GeneratorEvaluator,
    frechet_distance,
    kernel_distance,
)
from tests.test_case import TestCase


class DistancesTest(TestCase):
    def test_frechet_matches_scipy_sqrtm(self):
        rng = np.random.default_rng()
        a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
        b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6)
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        covmean = np.real(scipy.linalg.sqrtm(ca @ cb))
        expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * covmean)
        self.assertAllClose(frechet_distance(a, b), expected, rtol=1e-6)

    def test_frechet_of_gaussians_closed_form(self):
        # Independent Gaussians: |mu_a - mu_b|^2 + sum (s_a - s_b)^2.
        rng = np.random.default_rng()
        a = rng.normal(size=(200_000, 3)) * [1.0, 2.0, 0.5]
        b = rng.normal(size=(200_000, 3)) * [2.0, 2.0, 1.5] + [1.0, 0.0, -1.0]
        self.assertAllClose(frechet_distance(a, b), 2.0 + 1.0 + 0.0 + 1.0, rtol=0.02)
        self.assertLess(frechet_distance(a, a), 1e-6)

    def test_kernel_distance_matches_direct_sum(self):
        rng = np.random.default_rng()
        # Subsets are as large as the smaller set: use the whole of both.
        x, y = rng.normal(size=(15, 4)), rng.normal(size=(15, 4)) + 0.5
        k = lambda u, v: (u @ v / 4 + 1) ** 3  # noqa: E731
        xx = np.mean([k(x[i], x[j]) for i in range(15) for j in range(15) if i != j])
        yy = np.mean([k(y[i], y[j]) for i in range(15) for j in range(15) if i != j])
        xy = np.mean([k(u, v) for u in x for v in y])
        got = kernel_distance(x, y, num_subsets=1, subset_size=100)
        self.assertAllClose(got, xx + yy - 2 * xy, rtol=1e-8)

    def test_bad_features(self):
        with self.assertRaisesRegex(ValueError, "differ in dimension"):
            frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
        with self.assertRaisesRegex(ValueError, "at least 2"):
            kernel_distance(np.zeros((1, 3)), np.zeros((5, 3)))
        with self.assertRaisesRegex(ValueError, "NaN"):
            frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))


class CallbacksTest(TestCase):
    def test_feature_classifier_saving_and_config(self):
        model = FeatureClassifier([8, 8, 1], 10, filters=4, feature_dim=16)
        self.run_config_roundtrip(model)
        x = np.random.uniform(size=(3, 8, 8, 1)).astype("float32")
        restored = self.run_saving(model, x)
        self.assertAllClose(model.features(x), restored.features(x))

    def test_evaluator_sample_grid_and_callback(self):
        generator = Generator([8, 8, 1], latent_dim=4, base_filters=4)
        classifier = FeatureClassifier([8, 8, 1], 10, filters=4, feature_dim=8)
        real = np.random.uniform(size=(50, 8, 8, 1)).astype("float32")
        evaluator = GeneratorEvaluator(classifier, real, latent_dim=4, num_samples=40)
        scores = evaluator(generator)
        self.assertEqual(set(scores), {"frechet_distance", "kernel_distance"})
        self.assertEqual(scores, evaluator(generator))  # fixed latents: repeatable

        class Holder(keras.Model):  # what the callbacks read: model.generator
            def __init__(self):
                super().__init__()
                self.generator = generator

        directory = self.get_temp_dir()
        grid = SampleGrid(os.path.join(directory, "png"), 4, num_samples=9, log_dir=directory)
        fd = FrechetDistance(evaluator, verbose=False)
        for callback in (grid, fd):
            callback.set_model(Holder())
            callback.set_params({"epochs": 2})
            callback.on_train_begin()
        logs = {}
        for epoch in range(2):
            grid.on_epoch_end(epoch)
            fd.on_epoch_end(epoch, logs)
        grid.on_train_end()
        self.assertEqual(logs, scores)
        self.assertLen(glob.glob(os.path.join(directory, "png", "samples_epoch_*.png")), 2)
        events = glob.glob(os.path.join(directory, "samples", "events.out.*"))
        self.assertLen(events, 1)
        records = [v for e in tf.compat.v1.train.summary_iterator(events[0]) for v in e.summary.value]
        self.assertEqual([r.tag for r in records], ["samples", "samples"])
        self.assertEqual(records[0].metadata.plugin_data.plugin_name, "images")
        png = tf.io.decode_png(tf.make_ndarray(records[0].tensor)[2])
        self.assertEqual(png.shape[-1], 1)

    def test_image_grid_layout(self):
        images = np.stack([np.full((2, 3, 1), v) for v in (0.0, 0.5, 1.0)])
        grid = image_grid(images, columns=2)
        self.assertEqual(grid.shape, (2 * 3 + 1, 2 * 4 + 1, 1))
        self.assertEqual(grid[1, 1, 0], 0)
        self.assertEqual(grid[1, 5, 0], 128)
        self.assertEqual(grid[4, 1, 0], 255)
