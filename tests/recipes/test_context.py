"""The run context every recipe shares: settings, gfile paths, checksums."""

import dataclasses
import os
import uuid

import keras
import numpy as np
import tensorflow as tf

from keras_pt import data, recipes, training
from keras_pt.recipes import context
from tests.test_case import TestCase


@dataclasses.dataclass
class _Config:
    model_dir: str = "unset"
    strategy: str = "default"
    seed: int = 0
    learning_rate: float = 1e-3
    verbose: int = 0
    restart_from_healthy: bool = False


def _build(learning_rate=1e-3):
    def build():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
        return model

    return build


def _batches(epoch, batch_size, seed):
    x = np.arange(48, dtype="float32").reshape(16, 3) / 48.0
    examples = tf.data.Dataset.from_tensor_slices((x, x[:, :2]))
    return data.epoch_batches(examples, batch_size, seed, epoch)


def _ram_dir():
    return f"ram://context-{uuid.uuid4().hex}"


class RunContextTest(TestCase):
    def test_settings_are_recorded_and_a_rerun_with_others_is_refused(self):
        model_dir = _ram_dir()
        ctx = context.RunContext("toy", _Config(model_dir=model_dir))
        self.assertFalse(tf.io.gfile.exists(f"{model_dir}/settings.json"))  # nothing trained yet
        ctx.train("phase", _build(), _batches, batch_size=4, steps=2)
        self.assertTrue(tf.io.gfile.exists(f"{model_dir}/phase/checkpoints"))
        self.assertTrue(tf.io.gfile.exists(f"{model_dir}/settings.json"))
        # The same settings (and another verbosity) resume.
        ctx = context.RunContext("toy", _Config(model_dir=model_dir, verbose=1))
        self.assertEqual(ctx.train("phase", _build(), _batches, batch_size=4, steps=2).initial_step, 2)
        with self.assertRaisesRegex(ValueError, r"learning_rate: 0.001 -> 0.01.*new --model_dir.*delete"):
            context.RunContext("toy", _Config(model_dir=model_dir, learning_rate=1e-2))
        with self.assertRaisesRegex(ValueError, r"seed: 0 -> 1"):
            context.RunContext("toy", _Config(model_dir=model_dir, seed=1))
        # After a divergence the user may restart with new settings.
        context.RunContext("toy", _Config(model_dir=model_dir, learning_rate=1e-2, restart_from_healthy=True))

    def test_recipes_may_share_a_folder(self):
        model_dir = _ram_dir()
        context.RunContext("pretrain", _Config(model_dir=model_dir)).train(
            "a", _build(), _batches, batch_size=4, steps=1
        )
        other = context.RunContext("finetune", _Config(model_dir=model_dir, learning_rate=0.5))
        other.train("b", _build(), _batches, batch_size=4, steps=1)
        with self.assertRaisesRegex(ValueError, r"holds a pretrain run with other settings \(learning_rate"):
            context.RunContext("pretrain", _Config(model_dir=model_dir, learning_rate=0.5))

    def test_a_refused_run_does_not_bind_the_folder(self):
        model_dir = _ram_dir()
        context.RunContext("toy", _Config(model_dir=model_dir, learning_rate=5.0))  # fails before training
        ctx = context.RunContext("toy", _Config(model_dir=model_dir))
        ctx.train("phase", _build(), _batches, batch_size=4, steps=1)

    def test_a_phase_records_what_it_was_trained_on(self):
        model_dir = _ram_dir()
        ctx = context.RunContext("toy", _Config(model_dir=model_dir))
        ctx.train("head", _build(), _batches, inputs={"encoder_sha256": "a" * 64}, batch_size=4, steps=1)
        with self.assertRaisesRegex(ValueError, "encoder_sha256"):
            ctx.train("head", _build(), _batches, inputs={"encoder_sha256": "b" * 64}, batch_size=4, steps=1)

    def test_divergence_message_names_the_binary_flag(self):
        ctx = context.RunContext("toy", _Config(model_dir=_ram_dir()))
        with self.assertRaisesRegex(training.NonFiniteLossError, "--restart_from_healthy") as caught:
            ctx.train("phase", _build(learning_rate=1e12), _batches, batch_size=4, steps=20)
        self.assertIsNotNone(caught.exception.step)

    def test_unwritable_model_dir(self):
        blocker = os.path.join(self.get_temp_dir(), "a_file")
        with open(blocker, "w") as f:
            f.write("x")
        with self.assertRaisesRegex(ValueError, "cannot write to model_dir .*--model_dir"):
            context.RunContext("toy", _Config(model_dir=os.path.join(blocker, "run")))

    def test_unknown_setting(self):
        with self.assertRaisesRegex(ValueError, "unknown setting.*learning_rat\\b.*it takes"):
            recipes.pretrain_finetune(learning_rat=1e-3)
        with self.assertRaisesRegex(ValueError, "config must be a PretrainFinetuneConfig"):
            recipes.pretrain_finetune(recipes.MiniGPTConfig())


class SavedModelFilesTest(TestCase):
    def _saved(self, model_dir):
        ctx = context.RunContext("toy", _Config(model_dir=model_dir))
        model = _build()()
        model(np.zeros((1, 3), "float32"))
        return model, ctx.save_model(model, ctx.path("model.keras"))

    def test_round_trip_on_a_non_local_filesystem(self):
        model, path = self._saved(_ram_dir())
        self.assertTrue(tf.io.gfile.exists(path + ".sha256"))
        loaded = context.load_model(path)
        self.assertAllClose(loaded.get_weights(), model.get_weights())

    def test_a_changed_file_is_refused(self):
        _, path = self._saved(os.path.join(self.get_temp_dir(), "run"))
        with open(path, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0xFF]))
        with self.assertRaisesRegex(ValueError, "does not match its SHA-256"):
            context.load_model(path, "pre-trained MiniBERT")

    def test_truncated_and_foreign_files(self):
        _, path = self._saved(os.path.join(self.get_temp_dir(), "run"))
        os.remove(path + ".sha256")
        with open(path, "r+b") as f:
            f.truncate(200)
        with self.assertRaisesRegex(ValueError, "cannot load the teacher file .*not a complete .keras file"):
            context.load_model(path, "teacher")
        text = os.path.join(self.get_temp_dir(), "notes.keras")
        with open(text, "w") as f:
            f.write("not a model")
        with self.assertRaisesRegex(ValueError, "not a complete .keras file"):
            context.load_model(text)
        with self.assertRaisesRegex(ValueError, "no model at"):
            context.load_model(os.path.join(self.get_temp_dir(), "missing.keras"))


class FingerprintTest(TestCase):
    def test_values(self):
        self.assertEqual(context.fingerprint([1, "a", None]), [1, "a", None])
        a = context.fingerprint(np.arange(4))
        self.assertEqual(a, context.fingerprint(np.arange(4)))
        self.assertNotEqual(a, context.fingerprint(np.arange(1, 5)))
        model = _build()()
        model(np.zeros((1, 3), "float32"))
        before = context.fingerprint(model)["sha256"]
        model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
        self.assertNotEqual(before, context.fingerprint(model)["sha256"])
        texts = [f"text {i}" for i in range(20)]
        self.assertEqual(context.fingerprint(texts)["texts"], 20)
