"""keras_pt.training.train and keras_pt.checkpointing: loops, resumption,
corrupt checkpoints, non-finite losses, SIGTERM, scaling and bad input."""

import hashlib
import os
import signal
import warnings
from unittest import mock
import pytest

import keras
import numpy as np
import tensorflow as tf

import keras_pt
from keras_pt import checkpointing, data, training
from tests import strategy_cases
from tests.test_case import TestCase, mirrored_strategy

IMAGES = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")  # 4 batches of 16


def build_dae(learning_rate=1e-2, steps_per_execution=1):
    model = keras_pt.DenoisingAutoencoder(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(16,), seed=3)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), steps_per_execution=steps_per_execution)
    return model


def image_batches(images=IMAGES, shuffle=True):
    dataset = tf.data.Dataset.from_tensor_slices(images)
    return lambda epoch, batch_size, seed: data.epoch_batches(dataset, batch_size, seed, epoch, shuffle=shuffle)


def run(model_dir=None, build=build_dae, dataset_fn=None, **kwargs):
    kwargs.setdefault("batch_size", 16)
    kwargs.setdefault("strategy", "default")
    if "steps" not in kwargs:
        kwargs.setdefault("epochs", 3)
    return training.train(build, dataset_fn or image_batches(), model_dir=model_dir, **kwargs)


def state_arrays(model):
    return [np.array(v) for _, v in checkpointing.training_state(model)]


def assert_same_state(test, a, b):
    a, b = state_arrays(a), state_arrays(b)
    test.assertEqual(len(a), len(b))
    for x, y in zip(a, b):
        test.assertTrue(np.array_equal(x, y))


def sha(path):
    with open(os.path.join(path, "state.npz"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class SignalAt(keras.callbacks.Callback):
    """Sends this process a signal after train step `step` (1-based)."""

    def __init__(self, step, signum=signal.SIGTERM):
        super().__init__()
        self.step, self.signum = step, signum

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == self.step:
            os.kill(os.getpid(), self.signum)


class TrainLoopTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reference = run()  # 12 uninterrupted steps on one device with fit

    def test_fit_custom_and_steps_per_execution_agree_exactly(self):
        self.assertEqual(self.reference.step, 12)
        self.assertEqual(self.reference.steps_per_epoch, 4)
        self.assertEqual(len(self.reference.history["loss"]), 3)
        for kwargs in (
            {"loop": "custom"},
            {"build": lambda: build_dae(steps_per_execution=3)},
            {"build": lambda: build_dae(steps_per_execution=3), "loop": "custom"},
        ):
            with self.subTest(**{k: str(v) for k, v in kwargs.items()}):
                result = run(**kwargs)
                self.assertEqual(result.step, 12)
                assert_same_state(self, self.reference.model, result.model)
                self.assertAllClose(result.logs["loss"], self.reference.logs["loss"], atol=1e-7)

    def test_resume_continues_exactly_and_checkpoints_rotate(self):
        for loop in ("fit", "custom"):
            with self.subTest(loop=loop):
                model_dir = self.get_temp_dir() + f"/resume_{loop}"
                first = run(model_dir, steps=6, checkpoint_every=2, loop=loop)
                self.assertTrue(first.checkpoint.endswith("ckpt-00000006"))
                second = run(model_dir, checkpoint_every=5, loop=loop)
                self.assertEqual((second.initial_step, second.step), (6, 12))
                assert_same_state(self, self.reference.model, second.model)
                listed = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
                self.assertEqual(listed, ["ckpt-00000006", "ckpt-00000010", "ckpt-00000012"])
                # A finished run resumes to the end and trains no more.
                third = run(model_dir, loop=loop)
                self.assertEqual((third.initial_step, third.step, third.history), (12, 12, {}))

    def test_two_optimizer_model_resumes_exactly(self):
        # The GAN: d_optimizer and g_optimizer attributes, a SeedGenerator,
        # synchronized batch norm statistics.
        case = strategy_cases.CASES["gan"]

        def dataset_fn(epoch, batch_size, seed):
            return data.epoch_batches(case.data(), batch_size, seed, epoch)

        kwargs = dict(build=case.build, dataset_fn=dataset_fn, steps=5)
        whole = run(**kwargs)
        names = [name.split("/")[0] for name, _ in checkpointing.training_state(whole.model)]
        self.assertEqual(sorted(set(names)), ["d_optimizer", "g_optimizer", "model"])
        model_dir = self.get_temp_dir()
        self.assertEqual(run(model_dir, **dict(kwargs, steps=3)).step, 3)
        resumed = run(model_dir, **kwargs)
        self.assertEqual(resumed.initial_step, 3)
        assert_same_state(self, whole.model, resumed.model)

    def test_checkpoint_every_with_steps_per_execution(self):
        model_dir = self.get_temp_dir()
        run(
            model_dir,
            build=lambda: build_dae(steps_per_execution=2),
            steps=7,
            checkpoint_every=3,
            keep_checkpoints=5,
        )
        # Steps advance 2 at a time: the saves land where 3 and 6 are passed.
        listed = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
        self.assertEqual(listed, ["ckpt-00000004", "ckpt-00000006", "ckpt-00000007"])

    def test_truncated_latest_checkpoint_falls_back_with_a_warning(self):
        model_dir = self.get_temp_dir()
        run(model_dir, steps=6, checkpoint_every=2)
        latest = os.path.join(model_dir, "checkpoints", "ckpt-00000006", "state.npz")
        with open(latest, "r+b") as f:
            f.truncate(os.path.getsize(latest) // 2)
        unreadable = r"skipping unreadable checkpoint .*ckpt-00000006.*SHA-256"
        with self.assertWarnsRegex(RuntimeWarning, unreadable):
            result = run(model_dir)
        self.assertEqual(result.initial_step, 4)
        assert_same_state(self, self.reference.model, result.model)

    def test_unreadable_checkpoints_never_restart_silently(self):
        model_dir = self.get_temp_dir()
        run(model_dir, steps=4, checkpoint_every=2)
        folder = os.path.join(model_dir, "checkpoints")
        os.remove(os.path.join(folder, "ckpt-00000004", "manifest.json"))  # incomplete
        with open(os.path.join(folder, "ckpt-00000002", "state.npz"), "wb") as f:
            f.write(b"garbage")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            message = r"none of the 2 checkpoints .* can be read.*Delete or move"
            with self.assertRaisesRegex(checkpointing.CheckpointError, message):
                run(model_dir)

    def test_partial_checkpoint_folders_are_ignored_and_removed(self):
        model_dir = self.get_temp_dir()
        run(model_dir, steps=2, checkpoint_every=2)
        partial = os.path.join(model_dir, "checkpoints", ".tmp-ckpt-00000004-dead")
        os.makedirs(partial)
        result = run(model_dir, steps=4, checkpoint_every=2)
        self.assertEqual(result.initial_step, 2)
        self.assertFalse(os.path.exists(partial))

    def test_resume_with_other_settings_is_refused(self):
        model_dir = self.get_temp_dir()
        run(model_dir, steps=2)
        with self.assertRaisesRegex(ValueError, r"written with batch_size=16, this run has batch_size=8"):
            run(model_dir, batch_size=8)
        with self.assertRaisesRegex(ValueError, r"different model or optimizer.*#\d+"):
            run(model_dir, build=lambda: _compiled_ae(5))
        configured = self.get_temp_dir() + "/configured"
        run(configured, steps=2, config={"lr": 0.1, "data": "digits", "layers": (2, 3)})
        run(configured, steps=3, config={"lr": 0.1, "data": "digits", "layers": (2, 3)})
        with self.assertRaisesRegex(
            ValueError, r"config=\{'lr': 0.1\}, this run has config=\{'lr': 0.2\}.*delete .*/checkpoints"
        ):
            run(configured, steps=4, config={"lr": 0.2, "data": "digits", "layers": [2, 3]})

    def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(self):
        poisoned = np.concatenate([IMAGES, IMAGES])  # 8 batches per epoch
        poisoned[5 * 16 + 3, 2, 2, 0] = np.nan  # batch 5 (unshuffled): step 6
        dataset_fn = image_batches(poisoned, shuffle=False)
        for loop in ("fit", "custom"):
            with self.subTest(loop=loop):
                model_dir = self.get_temp_dir() + f"/nan_{loop}"
                folder = os.path.join(model_dir, "checkpoints")
                with self.assertRaises(training.NonFiniteLossError) as caught:
                    run(model_dir, dataset_fn=dataset_fn, checkpoint_every=2, loop=loop)
                self.assertEqual(caught.exception.step, 6)
                self.assertRegex(str(caught.exception), r"loss = nan at step 6 \(epoch 0\).*ckpt-00000004.* is intact")
                self.assertEqual(sorted(os.listdir(folder)), ["ckpt-00000002", "ckpt-00000004"])
                reader = checkpointing.Checkpointer(folder, [])
                manifest, arrays = reader.read(os.path.join(folder, "ckpt-00000004"))
                self.assertEqual(manifest["step"], 4)
                self.assertTrue(all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind == "f"))
                # Resuming from it continues normally up to the bad batch.
                before = sha(os.path.join(folder, "ckpt-00000004"))
                result = run(model_dir, dataset_fn=dataset_fn, steps=5, checkpoint_every=2)
                self.assertEqual((result.initial_step, result.step), (4, 5))
                self.assertEqual(sha(os.path.join(folder, "ckpt-00000004")), before)

    def test_diverging_learning_rate_stops_at_the_first_inf_or_nan(self):
        model_dir = self.get_temp_dir()
        labels = np.arange(64) % 4

        def build():
            encoder = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(16,)).encoder
            model = keras_pt.SVMClassifier(encoder, num_classes=4, trainable_encoder=True)
            model.compile(optimizer=keras.optimizers.SGD(1e15))
            return model

        with self.assertRaises(training.NonFiniteLossError) as caught:
            run(
                model_dir,
                build=build,
                checkpoint_every=1,
                dataset_fn=lambda e, b, s: data.epoch_batches(
                    tf.data.Dataset.from_tensor_slices((IMAGES, labels)), b, s, e
                ),
            )
        step = caught.exception.step
        self.assertGreater(step, 1)
        listed = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
        self.assertEqual(listed[-1], f"ckpt-{step - 1:08d}")
        reader = checkpointing.Checkpointer(os.path.join(model_dir, "checkpoints"), [])
        _, arrays = reader.read(os.path.join(model_dir, "checkpoints", listed[-1]))
        self.assertTrue(all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind == "f"))

    def test_nonfinite_weights_are_never_saved(self):
        model = _compiled_ae(4)
        model._symbolic_build(data_batch=tf.TensorSpec((2, 8, 8, 1)))
        state = checkpointing.training_state(model)
        ckpt = checkpointing.Checkpointer(self.get_temp_dir(), state)
        ckpt.save(1)
        state[1][1].assign(np.full(state[1][1].shape, np.inf, "float32"))
        with self.assertRaisesRegex(FloatingPointError, "holds NaN or Inf at step 2"):
            ckpt.save(2)
        self.assertEqual([os.path.basename(p) for p in ckpt.complete_checkpoints()], ["ckpt-00000001"])

    def test_sigterm_saves_stops_and_resumes_exactly(self):
        for loop in ("fit", "custom"):
            with self.subTest(loop=loop):
                model_dir = self.get_temp_dir() + f"/sigterm_{loop}"
                with self.assertRaises(training.TrainingPreempted) as caught:
                    run(model_dir, loop=loop, callbacks=[SignalAt(5)])
                # The signal arrives in step 5's callbacks (after the
                # training loop's own check): the run stops after step 6.
                self.assertEqual(caught.exception.step, 6)
                self.assertTrue(caught.exception.checkpoint.endswith("ckpt-00000006"))
                self.assertEqual(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)
                result = run(model_dir, loop=loop)
                self.assertEqual(result.initial_step, 6)
                assert_same_state(self, self.reference.model, result.model)

    def test_scaling_by_replicas_under_mirrored(self):
        seen = []

        def dataset_fn(epoch, batch_size, seed):
            seen.append(batch_size)
            return data.epoch_batches(tf.data.Dataset.from_tensor_slices(IMAGES), batch_size, seed, epoch)

        def build():
            schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
            model = keras_pt.GAN(
                keras_pt.Generator([8, 8, 1], latent_dim=4, base_filters=4, hidden_dims=[8]),
                keras_pt.Discriminator([8, 8, 1], base_filters=4, hidden_dims=[8]),
                seed=1,
            )
            model.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(schedule))
            return model

        result = training.train(
            build,
            dataset_fn,
            batch_size=8,
            steps=1,
            strategy=mirrored_strategy(),
            scale_batch_size=True,
            scale_learning_rate=True,
        )
        self.assertEqual(result.global_batch_size, 16)
        self.assertEqual(set(seen), {16})
        self.assertAllClose(keras.ops.convert_to_numpy(result.model.d_optimizer.learning_rate), 0.02)
        self.assertIsInstance(result.model.g_optimizer._learning_rate, training.ScaledLearningRate)
        self.assertAllClose(
            keras.ops.convert_to_numpy(result.model.g_optimizer.learning_rate),
            0.2 * 0.5 ** (1 / 10),
            atol=1e-6,
        )

    @pytest.mark.slow
    def test_early_stopping_restores_the_best_epoch_and_resumes_exactly(self):
        # Scripted validation values by epoch (read from the step counter, so
        # a resumed process sees the same): the best is epoch 1, and with
        # patience 2 training stops after epoch 3 of 6.
        script = [0.5, 0.3, 0.4, 0.35, 0.1, 0.05]

        def validation_fn(model):
            return {"val_loss": script[int(model.optimizer.iterations) // 4 - 1]}

        stopping = training.EarlyStopping(monitor="val_loss", patience=2)
        best = run(steps=8)  # the weights after epoch 1
        kwargs = dict(epochs=6, validation_fn=validation_fn, early_stopping=stopping)
        for loop in ("fit", "custom"):
            with self.subTest(loop=loop):
                whole = run(loop=loop, **kwargs)
                self.assertTrue(whole.stopped_early)
                self.assertEqual((whole.best_epoch, whole.step), (1, 16))
                self.assertEqual(whole.validation, {"val_loss": script[:4]})
                self.assertEqual(whole.history["val_loss"], script[:4])
                self.assertEqual(len(whole.history["loss"]), 4)
                for a, b in zip(whole.model.weights, best.model.weights):
                    self.assertTrue(np.array_equal(np.array(a), np.array(b)))

                # Killed after step 10 (mid-epoch 2), then resumed.
                model_dir = self.get_temp_dir() + f"/stopping_{loop}"
                first = run(model_dir, loop=loop, **dict(kwargs, epochs=None, steps=10))
                self.assertEqual((first.step, first.best_epoch), (10, 1))
                resumed = run(model_dir, loop=loop, **kwargs)
                self.assertEqual((resumed.initial_step, resumed.step), (10, 16))
                self.assertTrue(resumed.stopped_early)
                self.assertEqual(resumed.validation, whole.validation)
                assert_same_state(self, whole.model, resumed.model)
                # A stopped run stays stopped, with the best weights.
                again = run(model_dir, loop=loop, **kwargs)
                self.assertEqual((again.initial_step, again.step, again.history), (16, 16, {}))
                self.assertTrue(again.stopped_early)
                assert_same_state(self, whole.model, again.model)

    def test_classification_accuracy_matches_numpy(self):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(37, 5)).astype("float32")
        y = rng.integers(0, 3, size=(37,))
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        expected = np.mean(np.argmax(model.predict(x, verbose=0), -1) == y)
        validate = training.classification_accuracy(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), name="acc")
        self.assertAllClose(validate(model)["acc"], expected)  # 37 = 4 x 8 + 5: all count
        self.assertEqual(validate(model), validate(model))

    def test_bad_validation_arguments(self):
        with self.assertRaisesRegex(ValueError, "mode must be 'auto', 'min' or 'max'"):
            training.EarlyStopping(mode="up")
        with self.assertRaisesRegex(ValueError, "patience must be >= 0"):
            training.EarlyStopping(patience=-1)
        stopping = training.EarlyStopping(monitor="val_accuracy")
        self.assertTrue(stopping.maximize)
        self.assertFalse(training.EarlyStopping(monitor="val_loss").maximize)
        with self.assertRaisesRegex(ValueError, "early_stopping needs a validation_fn"):
            run(early_stopping=stopping)
        with self.assertRaisesRegex(ValueError, "monitors 'val_accuracy'.*only \\['val_loss'\\]"):
            run(validation_fn=lambda m: {"val_loss": 1.0}, early_stopping=stopping)
        with self.assertRaisesRegex(ValueError, "must return a dict"):
            run(validation_fn=lambda m: 1.0)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "unknown mixed_precision 'fp8'.*mixed_bfloat16"):
            run(mixed_precision="fp8")
        with self.assertRaisesRegex(ValueError, "unknown loop 'eager'"):
            run(loop="eager")
        with self.assertRaisesRegex(ValueError, "unknown strategy 'gpu'"):
            run(strategy="gpu")
        with self.assertRaisesRegex(ValueError, "does not split evenly over 2 replicas"):
            run(batch_size=15, strategy=mirrored_strategy())
        with self.assertRaisesRegex(ValueError, "static leading dimension of batch_size=16.*drop_remainder"):
            run(dataset_fn=lambda e, b, s: tf.data.Dataset.from_tensor_slices(IMAGES).batch(b))
        with self.assertRaisesRegex(ValueError, "must return a tf.data.Dataset"):
            run(dataset_fn=lambda e, b, s: IMAGES)
        with self.assertRaisesRegex(ValueError, "must compile the model"):
            run(build=lambda: keras_pt.Autoencoder(image_shape=(8, 8, 1)))
        with self.assertRaisesRegex(ValueError, "pass steps_per_epoch"):
            endless = tf.data.Dataset.from_tensor_slices(IMAGES).repeat()
            run(dataset_fn=lambda e, b, s: data.epoch_batches(endless, b, s, e))
        with self.assertRaisesRegex(ValueError, "needs a TPU"):
            with mock.patch.dict(os.environ, {}, clear=True):
                run(strategy="tpu")

    def test_tpu_strategies_need_fully_static_shapes(self):
        ragged = tf.data.Dataset.from_generator(
            lambda: iter(IMAGES.reshape(4, 16, 8, 8, 1)),
            output_signature=tf.TensorSpec((16, None, 8, 1), tf.float32),
        )
        training.check_static_batches(ragged, 16)  # fine off TPUs
        with self.assertRaisesRegex(ValueError, "TPUs need fully static shapes"):
            training.check_static_batches(ragged, 16, fully_defined=True)
        with mock.patch.object(training, "_is_tpu", return_value=True):
            with self.assertRaisesRegex(ValueError, "TPUs need fully static shapes"):
                run(dataset_fn=lambda e, b, s: ragged)


def _compiled_ae(latent_dim, optimizer=None):
    model = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=latent_dim, hidden_dims=(16,))
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-2))
    return model
