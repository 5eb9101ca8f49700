"""Divergence and damaged checkpoints in keras_pt.training.train: a NaN and a
finite but exploding loss stop training with advice that works when
followed, a resume with other optimizer settings is refused unless allowed,
and a corrupt newest checkpoint is moved aside and written afresh."""

import json
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

import keras_pt
from keras_pt import checkpointing, data, training
from tests.training import test_training as base
from tests.test_case import TestCase

LABELS = np.arange(64) % 4


def build_svm(learning_rate):
    def build():
        autoencoder = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(16,))
        model = keras_pt.SVMClassifier(
            autoencoder.encoder,
            num_classes=4,
            trainable_encoder=True,
            hinge="crammer_singer",
            squared=False,
            standardize=False,
        )
        model.compile(optimizer=keras.optimizers.SGD(learning_rate))
        return model

    return build


def labeled_batches(epoch, batch_size, seed):
    dataset = tf.data.Dataset.from_tensor_slices((base.IMAGES, LABELS))
    return data.epoch_batches(dataset, batch_size, seed, epoch)


def listed(model_dir):
    return sorted(os.listdir(os.path.join(model_dir, "checkpoints")))


def all_finite(arrays):
    return all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind == "f")


class DivergenceTest(TestCase):
    def test_nan_then_restart_from_the_healthy_checkpoint(self):
        poisoned = np.concatenate([base.IMAGES, base.IMAGES])  # 8 batches per epoch
        poisoned[5 * 16 + 3, 2, 2, 0] = np.nan  # batch 5 (unshuffled): step 6
        model_dir = self.get_temp_dir()
        with self.assertRaises(training.NonFiniteLossError) as caught:
            base.run(
                model_dir,
                dataset_fn=base.image_batches(poisoned, shuffle=False),
                checkpoint_every=1,
                epochs=1,
            )
        error = caught.exception
        self.assertEqual(error.step, 6)
        # Step 6's loss came from the weights of step 5: the healthy one is 4.
        self.assertTrue(error.checkpoint.endswith("ckpt-00000004"), error.checkpoint)
        self.assertRegex(
            str(error),
            r"loss = nan at step 6 .*ckpt-00000004, is intact.*"
            r"restart_from_healthy=True.*continues from it \(step 4\).*new model_dir",
        )
        self.assertEqual(listed(model_dir)[-1], "ckpt-00000005")
        with open(os.path.join(model_dir, training.DIVERGENCE_FILE)) as f:
            self.assertEqual(json.load(f)["first_suspect_step"], 5)

        # The advice, followed: clean data, restart from the healthy checkpoint.
        clean = np.concatenate([base.IMAGES, base.IMAGES])
        result = base.run(
            model_dir,
            dataset_fn=base.image_batches(clean, shuffle=False),
            checkpoint_every=1,
            epochs=1,
            restart_from_healthy=True,
        )
        self.assertEqual((result.initial_step, result.step), (4, 8))
        self.assertTrue(np.isfinite(result.logs["loss"]))
        self.assertTrue(result.checkpoint.endswith("ckpt-00000008"))
        self.assertIn("ckpt-00000005.diverged-1", listed(model_dir))
        self.assertFalse(os.path.exists(os.path.join(model_dir, training.DIVERGENCE_FILE)))

    def test_exploding_finite_loss_then_restart_with_a_sane_learning_rate(self):
        # SGD at 10 on a hinge loss: the loss grows ~100x per step and stays
        # finite for 20 steps; without the factor the run ends "normally".
        unchecked = base.run(build=build_svm(10.0), dataset_fn=labeled_batches, divergence_factor=None)
        self.assertEqual(unchecked.step, 12)
        self.assertGreater(unchecked.logs["loss"], 1e15)

        model_dir = self.get_temp_dir()
        kwargs = dict(dataset_fn=labeled_batches, checkpoint_every=1)
        with self.assertRaises(training.DivergenceError) as caught:
            base.run(model_dir, build=build_svm(10.0), **kwargs)
        error = caught.exception
        self.assertIsInstance(error, training.NonFiniteLossError)
        step = error.step  # the first exploded step
        self.assertGreaterEqual(step, 3)
        healthy_name = f"ckpt-{step - 2:08d}"  # the one before the suspect one
        self.assertRegex(
            str(error),
            rf"loss = \S+ at step {step} \(epoch 0\) is more than divergence_factor=1000 times "
            rf"its reference \S+ \(the best loss so far.*{healthy_name}, is intact.*"
            r"restart_from_healthy=True",
        )
        # The exploded step's loss was finite: no checkpoint of that step.
        self.assertEqual(listed(model_dir), [f"ckpt-{k:08d}" for k in range(1, step)])
        reader = checkpointing.Checkpointer(os.path.join(model_dir, "checkpoints"), [])
        manifest, healthy = reader.read(error.checkpoint)
        self.assertTrue(all_finite(healthy))

        # Same folder, sane learning rate, no opt-in: refused, the
        # checkpoint's learning rate does not come back silently.
        with self.assertRaisesRegex(
            ValueError,
            r"other optimizer settings \(optimizer.learning_rate: 10.0 -> 0.001\d*\).*"
            r"delete .*/checkpoints.*restart_from_healthy=True",
        ):
            base.run(model_dir, build=build_svm(1e-3), **kwargs)

        # The advice, followed: it continues from the healthy weights.
        seen = []

        class FirstWeights(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if not seen:
                    seen.extend(np.array(v) for v in self.model.variables)

        result = base.run(
            model_dir,
            build=build_svm(1e-3),
            restart_from_healthy=True,
            callbacks=[FirstWeights()],
            **kwargs,
        )
        self.assertEqual((result.initial_step, result.step), (step - 2, 12))
        self.assertAllClose(float(result.model.optimizer.learning_rate), 1e-3)
        for got, want in zip(seen, healthy):
            self.assertTrue(np.array_equal(got, want))
        losses = result.history["loss"]
        self.assertTrue(np.all(np.isfinite(losses)))
        self.assertLess(losses[-1], losses[0])
        self.assertTrue(result.checkpoint.endswith("ckpt-00000012"))
        self.assertIn(f"ckpt-{step - 1:08d}.diverged-1", listed(model_dir))
        _, arrays = reader.read(result.checkpoint)
        self.assertTrue(all_finite(arrays))

    def test_a_saturating_rise_needs_a_smaller_factor(self):
        # SGD at 1e6 on the plain Autoencoder: the sigmoid output saturates
        # and the loss rises ~4x to a plateau, below the default factor.
        def build():
            model = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(16,))
            model.compile(optimizer=keras.optimizers.SGD(1e6))
            return model

        self.assertEqual(base.run(build=build).step, 12)
        with self.assertRaisesRegex(training.DivergenceError, r"at step 2 .*divergence_factor=2 "):
            base.run(build=build, divergence_factor=2)

    def test_resume_with_other_optimizer_settings_is_refused_unless_allowed(self):
        model_dir = self.get_temp_dir()
        base.run(model_dir, steps=2)  # Adam(1e-2)
        refused = r"other optimizer settings \({}\).*delete .*/checkpoints.*allow_optimizer_change=True"
        with self.assertRaisesRegex(ValueError, refused.format(r"optimizer.learning_rate: 0.0099\d* -> 0.0010\d*")):
            base.run(model_dir, build=lambda: base.build_dae(learning_rate=1e-3), steps=4)

        def build_sgd():
            model = keras_pt.DenoisingAutoencoder(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(16,), seed=3)
            model.compile(optimizer=keras.optimizers.SGD(1e-2))
            return model

        class_changed = refused.format(r".*optimizer.class: 'Adam' -> 'SGD'.*")
        with self.assertRaisesRegex(ValueError, class_changed):
            base.run(model_dir, build=build_sgd, steps=4)
        # Opted in: continues from step 2 with the new learning rate, which
        # the next checkpoint records.
        allowed = base.run(
            model_dir,
            build=lambda: base.build_dae(learning_rate=1e-3),
            steps=4,
            allow_optimizer_change=True,
        )
        self.assertEqual((allowed.initial_step, allowed.step), (2, 4))
        self.assertAllClose(float(allowed.model.optimizer.learning_rate), 1e-3)
        again = base.run(model_dir, build=lambda: base.build_dae(learning_rate=1e-3), steps=6)
        self.assertEqual((again.initial_step, again.step), (4, 6))


class DivergenceReferenceTest(TestCase):
    def feed(self, losses, divergence_factor=1e3):
        guard = training._Guard(
            None,
            1000,
            1000,
            {},
            0,
            None,
            training._Validation(None, None, None),
            divergence_factor=divergence_factor,
        )
        for step, loss in enumerate(losses, 1):
            guard.after_step(step, {"loss": loss, "g_loss": -loss})
        return guard

    def test_reference_is_the_best_loss_floored_by_the_first(self):
        # An exploding loss: 1000x the best so far.
        exploded = r"loss = 1001 at step 3 .*reference 1 "
        with self.assertRaisesRegex(training.DivergenceError, exploded):
            self.feed([2.0, 1.0, 1001.0])
        # A loss that fell near zero: a spike up to its first value is not
        # divergence, above it is.
        self.feed([2.0, 0.5, 1e-4, 1e-5, 2.0])
        with self.assertRaisesRegex(training.DivergenceError, r"at step 4 .*reference 0.002 "):
            self.feed([2.0, 1e-4, 1e-5, 2.1])
        # Signed objectives (g_loss here is <= 0) and no factor: no check.
        guard = self.feed([2.0, 2e6], divergence_factor=None)
        self.assertEqual(guard.step, 2)
        self.assertEqual(guard.loss_history["g_loss"], [-2.0, -2e6])


class CorruptCheckpointTest(TestCase):
    def test_corrupt_newest_checkpoint_is_moved_aside_and_written_afresh(self):
        model_dir = self.get_temp_dir()
        first = base.run(model_dir, steps=6, checkpoint_every=2)
        newest = first.checkpoint
        self.assertTrue(newest.endswith("ckpt-00000006"))
        digest = base.sha(newest)
        path = os.path.join(newest, "state.npz")
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))

        warning = (
            r"skipping unreadable checkpoint .*ckpt-00000006 .*SHA-256.*ckpt-00000004; "
            r"moved it to .*ckpt-00000006.corrupt-1"
        )
        with self.assertWarnsRegex(RuntimeWarning, warning):
            rerun = base.run(model_dir, steps=6, checkpoint_every=2)
        self.assertEqual((rerun.initial_step, rerun.step), (4, 6))
        self.assertEqual(rerun.checkpoint, newest)
        # Written afresh, and exactly as the uninterrupted run wrote it.
        self.assertEqual(base.sha(newest), digest)
        self.assertIn("ckpt-00000006.corrupt-1", listed(model_dir))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            again = base.run(model_dir, steps=6, checkpoint_every=2)
        self.assertEqual([str(w.message) for w in caught if w.category is RuntimeWarning], [])
        self.assertEqual((again.initial_step, again.step, again.checkpoint), (6, 6, newest))
        reader = checkpointing.Checkpointer(os.path.join(model_dir, "checkpoints"), [])
        self.assertEqual(reader.read(newest)[0]["step"], 6)
