"""Shared test helpers: config round trip, saving, a short fit, and the
strategy-equivalence check of the train_step contract."""

import functools
import os

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute

MIRRORED_DEVICES = ["/cpu:0", "/cpu:1"]


@functools.lru_cache(maxsize=None)
def mirrored_strategy():
    """The 2-replica MirroredStrategy over the logical CPUs made in conftest.

    One instance per process: the collective all-reduce instance keys of two
    MirroredStrategy objects over the same devices collide, and a second
    strategy reducing gradients of other shapes then fails.
    """
    return distribute.get_strategy("mirrored", devices=MIRRORED_DEVICES)


def _flatten(outputs):
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        flat = []
        for item in outputs:
            flat.extend(_flatten(item))
        return flat
    return [outputs]


class TestCase(tf.test.TestCase):
    """Base class for keras_pt tests."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(1337)
        keras.config.disable_interactive_logging()

    def tearDown(self):
        keras.config.enable_interactive_logging()
        super().tearDown()

    def assertAllOutputsClose(self, a, b, atol=1e-5, rtol=1e-5):
        for x, y in zip(_flatten(a), _flatten(b), strict=True):
            self.assertAllClose(
                keras.ops.convert_to_numpy(x),
                keras.ops.convert_to_numpy(y),
                atol=atol,
                rtol=rtol,
            )

    def run_config_roundtrip(self, model):
        """`from_config(get_config())` rebuilds a model with the same config."""
        config = model.get_config()
        rebuilt = model.__class__.from_config(config)
        self.assertEqual(rebuilt.get_config(), config)
        return rebuilt

    def run_saving(self, model, inputs, call=None):
        """Saves to `.keras`, loads without custom_objects, equal outputs."""
        call = call or (lambda m, x: m(x, training=False))
        expected = call(model, inputs)
        path = os.path.join(self.get_temp_dir(), "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertIsInstance(restored, model.__class__)
        self.assertAllOutputsClose(expected, call(restored, inputs))
        return restored

    def run_fit(self, model, dataset, epochs=1):
        """One short fit: every logged value is finite."""
        history = model.fit(dataset, epochs=epochs, verbose=0)
        self.assertTrue(history.history)
        for name, values in history.history.items():
            self.assertTrue(np.all(np.isfinite(values)), f"{name} is not finite: {values}")
        return history

    def run_strategy_equivalence(
        self,
        build_and_compile,
        dataset,
        steps=3,
        atol=1e-5,
        loss_keys=("loss",),
        reference_loss=None,
    ):
        """The train_step gives the same result on 1 device and 2 replicas.

        `build_and_compile()` must build (all variables made) and compile a
        model (use SGD: Adam's normalised steps hide gradient-scale bugs); it is called inside each strategy's scope. The one-device
        model's initial weights are copied into the mirrored one; both then
        `fit` on the same `steps` global batches of `dataset` (batch size
        divisible by 2): first one step, then the rest. Checks, within
        `atol`: the logged `loss_keys` of the first step (on one device the
        mean over the whole global batch), the logs of the remaining steps,
        and every weight at the end. If given, `reference_loss(model, batch)`
        computes the true mean loss of the first batch independently, at the
        initial weights, and the logged mirrored loss must equal it.
        """
        dataset = dataset.take(steps)
        first_batch = next(iter(dataset))
        initial = None
        runs = {}
        for name, strategy in (
            ("one_device", tf.distribute.get_strategy()),
            ("mirrored", mirrored_strategy()),
        ):
            with strategy.scope():
                model = build_and_compile()
            if initial is None:
                initial = [np.array(w) for w in model.get_weights()]
                expected = None if reference_loss is None else float(reference_loss(model, first_batch))
            else:
                model.set_weights(initial)
            first = model.fit(dataset.take(1), verbose=0).history
            rest = model.fit(dataset.skip(1), verbose=0).history if steps > 1 else {}
            runs[name] = (model, first, rest)

        one, mirrored = runs["one_device"], runs["mirrored"]
        for key in loss_keys:
            self.assertIn(key, one[1])
            self.assertAllClose(one[1][key], mirrored[1][key], atol=atol, rtol=atol)
            if steps > 1:
                self.assertAllClose(one[2][key], mirrored[2][key], atol=atol, rtol=atol)
        if expected is not None:
            self.assertAllClose(mirrored[1][loss_keys[0]][0], expected, atol=atol, rtol=atol)
        weights_one = one[0].get_weights()
        weights_mirrored = mirrored[0].get_weights()
        self.assertEqual(len(weights_one), len(weights_mirrored))
        changed = 0
        for a, b, w0 in zip(weights_one, weights_mirrored, initial):
            self.assertAllClose(a, b, atol=atol, rtol=atol)
            changed += int(not np.allclose(a, w0))
        self.assertGreater(changed, 0, "training changed no weight")
        return one[0], mirrored[0]
