"""Mixed precision through keras_pt.training.train: a few SGD steps under
mixed_bfloat16 and mixed_float16 (with loss scaling) follow float32.

Tolerances (3 SGD steps of the cases in tests/strategy_cases.py, CPU): the
weight update under mixed precision differs from the float32 update by less
than 5% (bfloat16, 8-bit mantissa) or 1% (float16, 11-bit) of its size, and
the logged loss by less than 1% / 0.1%. Measured on TF 2.21: 0.4-0.9% and
0.05-0.09%. The conv DenoisingAutoencoder starts on a flat spot (an update
of norm 4e-3 made of nearly cancelling terms) and gets 25% / 5% (measured
16% / 2.3%). A step that were skipped, or whose float16 loss scale were not
undone (a factor of 32768), is off by about 100%.
"""

import keras
import numpy as np
import tensorflow as tf
import pytest

from keras_pt import data, training
from tests import strategy_cases
from tests.test_case import TestCase

TOLERANCE = {"mixed_bfloat16": (0.05, 1e-2), "mixed_float16": (0.01, 1e-3)}
# The denoising autoencoder starts flat (a tiny first update), so rounding is
# a larger share of it: 0.060 in float16 on CPUs with AVX512-FP16/AMX, where
# oneDNN runs float16 matmuls natively, against under 0.05 elsewhere.
FLAT_START_TOLERANCE = {"mixed_bfloat16": 0.25, "mixed_float16": 0.1}
POLICIES = ("mixed_bfloat16", "mixed_float16")  # every case of strategy_cases


class _Initial(keras.callbacks.Callback):
    weights = None

    def on_train_begin(self, logs=None):
        if self.weights is None:  # fit runs once per epoch
            self.weights = [np.array(w) for w in self.model.get_weights()]


def _train(case, policy):
    def dataset_fn(epoch, batch_size, seed):
        return data.epoch_batches(case.data(), batch_size, seed, epoch)

    initial = _Initial()
    result = training.train(
        case.build,
        dataset_fn,
        batch_size=strategy_cases.BATCH_SIZE,
        steps=strategy_cases.STEPS,
        strategy="default",
        mixed_precision=policy,
        callbacks=[initial],
    )
    return result, initial.weights


class MixedPrecisionTest(TestCase):
    @pytest.mark.slow
    def test_few_steps_follow_float32(self):
        for name, case in strategy_cases.CASES.items():
            # The heads start from a solution fitted to features computed
            # under the policy (`adapt`); with the encoder trained at SGD
            # 0.5 the runs then part. ELECTRA samples its replacement tokens
            # from the generator's softmax, and lower-precision logits sample
            # other tokens; SimCLR's augmentations (crops, jitter, noise) of
            # an 8x8 image under SGD 0.5 amplify the rounding. For these only
            # a finite loss is required, and no float32 run is needed: the
            # policies' starts are compared with each other.
            finite_only = case.classifier or name in ("electra", "sim_clr")
            reference, initial = (None, None) if finite_only else _train(case, None)
            for policy in POLICIES:
                with self.subTest(case=name, policy=policy):
                    result, same_start = _train(case, policy)
                    initial = same_start if initial is None else initial
                    for a, b in zip(initial, same_start, strict=True):
                        if case.classifier:
                            # The heads' feature statistics are adapted from
                            # features computed under the policy.
                            np.testing.assert_allclose(a, b, rtol=0.1, atol=0.05)
                        else:
                            np.testing.assert_array_equal(a, b)
                    model = result.model
                    self.assertEqual(model.dtype_policy.name, policy)
                    # The global policy is restored after training.
                    self.assertEqual(keras.config.dtype_policy().name, "float32")
                    # Variables, losses and metrics stay float32.
                    for variable in model.variables:
                        self.assertIn(variable.dtype, ("float32", "int64", "int32"), variable.path)
                    for metric in model.metrics:
                        self.assertEqual(metric.dtype, "float32")
                    optimizers = [o for _, o in training.find_optimizers(model)]
                    scaled = [isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers]
                    # One LossScaleOptimizer per optimizer (the GAN's two) in float16.
                    self.assertTrue(scaled)
                    self.assertEqual(scaled, [policy == "mixed_float16"] * len(scaled))
                    if finite_only:
                        self.assertTrue(np.isfinite(result.logs["loss"]))
                        continue
                    update_error, update_size = 0.0, 0.0
                    for w0, want, got in zip(initial, reference.model.get_weights(), model.get_weights()):
                        update_error += float(np.sum((np.asarray(got, "float64") - want) ** 2))
                        update_size += float(np.sum((np.asarray(want, "float64") - w0) ** 2))
                    weight_tol, loss_tol = TOLERANCE[policy]
                    if name == "denoising_autoencoder":
                        weight_tol = FLAT_START_TOLERANCE[policy]
                    self.assertGreater(update_size, 0.0)
                    self.assertLess(np.sqrt(update_error / update_size), weight_tol)
                    self.assertAllClose(result.logs["loss"], reference.logs["loss"], rtol=loss_tol, atol=0)

    def test_losses_are_float32_under_a_mixed_policy(self):
        case = strategy_cases.CASES["autoencoder"]
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            model = case.build()
        finally:
            keras.config.set_dtype_policy("float32")
        images = tf.constant(np.random.default_rng(0).random((4, 8, 8, 1)), tf.float32)
        reconstructions = model(images)
        self.assertEqual(reconstructions.dtype, tf.bfloat16)
        self.assertEqual(model.per_example_loss(images, reconstructions).dtype, tf.float32)
