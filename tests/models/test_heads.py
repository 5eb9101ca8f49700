import numpy as np
import tensorflow as tf
import keras
import pytest

from keras_pt import Autoencoder, MLPClassifier, SVMClassifier
from keras_pt.kernels import hinge
from tests.test_case import TestCase


def labelled(n=64, num_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, num_classes, size=n).astype("int32")
    return x, y


def encoder(latent_dim=6):
    return Autoencoder(image_shape=(8, 8, 1), latent_dim=latent_dim, hidden_dims=(16,)).encoder


HEADS = (
    (MLPClassifier, {"hidden_dims": (8,), "dropout": 0.1}),
    (SVMClassifier, {"C": 2.0}),
    (SVMClassifier, {"hinge": "one_vs_rest", "squared": True}),
)


class HeadsTest(TestCase):
    def test_fit_config_saving(self):
        x, y = labelled()
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)
        for cls, kwargs in HEADS:
            model = cls(encoder(), num_classes=4, **kwargs)
            model.compile(optimizer="adam")
            history = self.run_fit(model, ds)
            self.assertIn("accuracy", history.history)
            self.assertEqual(model(x).shape, (64, 4))
            self.run_config_roundtrip(model)
            restored = self.run_saving(model, x)
            self.assertEqual(restored.trainable_encoder, model.trainable_encoder)

    def test_frozen_and_fine_tuned_encoder(self):
        x, y = labelled()
        for cls, kwargs in HEADS:
            enc = encoder()
            before = [w.copy() for w in enc.get_weights()]
            model = cls(enc, num_classes=4, **kwargs)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            model.fit(x, y, batch_size=16, verbose=0)
            for a, b in zip(before, model.encoder.get_weights()):
                self.assertAllEqual(a, b)  # a linear probe leaves the encoder alone
            head_count = len(model.trainable_weights)
            model.set_encoder_trainable(True)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            self.assertGreater(len(model.trainable_weights), head_count)
            model.fit(x, y, batch_size=16, verbose=0)
            after = model.encoder.get_weights()
            self.assertTrue(any(not np.allclose(a, b) for a, b in zip(before, after)))
            # The model passed in is a copy's source, never changed or frozen.
            self.assertTrue(enc.trainable)
            for a, b in zip(before, enc.get_weights()):
                self.assertAllEqual(a, b)

    def test_svm_loss_is_the_objective(self):
        x, y = labelled(16)
        model = SVMClassifier(encoder(), num_classes=4, C=3.0, hinge="crammer_singer", squared=False)
        scores = model(x)
        w = model.svm.kernel.numpy()
        xi = hinge.multiclass_hinge(y, scores).numpy()
        want = (0.5 * np.sum(w**2) + 3.0 * np.sum(xi)) / 16
        got = model.compute_loss(x=x, y=y, y_pred=scores)
        self.assertAllClose(got, want, atol=1e-5)

    def test_svm_reaches_the_optimum_of_its_objective(self):
        # Fixed features: digits pixels, 10 labels per class. The head on an
        # identity encoder, default settings, one fit; scikit-learn's
        # LinearSVC (same C, hinge, standardised features) is the reference.
        from sklearn.datasets import load_digits
        from sklearn.svm import LinearSVC

        from keras_pt.utils.linear_svm import svm_objective

        pixels, labels = load_digits(return_X_y=True)
        rng = np.random.default_rng(0)
        idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), 10, replace=False) for c in range(10)])
        x, y = (pixels[idx] / 16.0).astype("float32"), labels[idx]
        for kwargs in ({}, {"C": 0.1}):
            C = kwargs.get("C", 1.0)
            model = SVMClassifier(keras.layers.Identity(), num_classes=10, **kwargs)
            model.compile()
            model.fit(x, y, epochs=5, verbose=0)  # shuffled batches of 32
            z = keras.ops.convert_to_numpy(model.standardization(x)).astype(np.float64)
            reference = LinearSVC(C=C, intercept_scaling=10.0, tol=1e-6, max_iter=100000).fit(z, y)
            want = svm_objective(reference.coef_.T, reference.intercept_, z, y, C, "one_vs_rest", True)
            got = model.objective(x, y)
            self.assertLess(got, 1.01 * want)
            self.assertGreater(got, 0.95 * want)  # the same objective, not another one
            self.assertEqual(float(model.num_train_examples.numpy()), 100.0)

    def test_standardization_statistics_are_saved(self):
        x, y = labelled()
        model = SVMClassifier(encoder(), num_classes=4)
        model.compile()
        model.fit(x, y, batch_size=16, verbose=0)
        features = model.encoder(x).numpy()
        self.assertAllClose(model.standardization.mean.numpy(), features.mean(0), atol=1e-5)
        standardized = model.standardization(features).numpy()
        self.assertAllClose(standardized.mean(0), np.zeros(6), atol=1e-4)
        restored = self.run_saving(model, x)
        self.assertAllClose(restored.standardization.inverse_scale.numpy(), model.standardization.inverse_scale.numpy())
        self.assertEqual(float(restored.num_train_examples.numpy()), 64.0)

    @pytest.mark.slow
    def test_strategy_equivalence(self):
        # tests/strategy_cases.py holds the MLP head with a trained encoder
        # and the SVM head with a frozen one; here are the other two.
        x, y = labelled(96)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32, drop_remainder=True)
        for cls, kwargs, trainable in (
            (MLPClassifier, {"hidden_dims": (8,)}, False),
            (SVMClassifier, {"hinge": "one_vs_rest", "squared": True}, True),
        ):
            with self.subTest(head=cls.__name__):

                def build():
                    model = cls(encoder(), num_classes=4, trainable_encoder=trainable, **kwargs)
                    model(x[:1])
                    model.adapt(x, y)  # statistics (and the SVM's optimum) first
                    # SGD(0.5) makes the SVM head with a trained encoder diverge
                    # (weights in the thousands after 3 steps), where float32
                    # rounding of the two reduction orders exceeds atol.
                    model.compile(optimizer=keras.optimizers.SGD(0.1))
                    return model

                def reference(model, batch):
                    bx, by = batch
                    if cls is MLPClassifier:
                        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(by, model(bx))
                    return model.compute_loss(x=bx, y=by, y_pred=model(bx))

                self.run_strategy_equivalence(
                    build, ds, steps=3, loss_keys=("loss", "accuracy"), reference_loss=reference
                )

    def test_bad_input(self):
        x, y = labelled(32)
        for cls, kwargs in HEADS:
            model = cls(encoder(), num_classes=4, **kwargs)
            model.compile(optimizer="adam")
            # Array labels are checked on the host, before any step.
            with self.assertRaisesRegex(ValueError, r"must be class ids in \[0, num_classes=4\); got \[4\]"):
                model.fit(x, np.full((32,), 4, "int32"), batch_size=16, verbose=0)
            with self.assertRaisesRegex(ValueError, r"must be class ids in \[0, num_classes=4\); got \[-1\]"):
                model.fit(x, np.full((32,), -1, "int32"), batch_size=16, verbose=0)
            with self.assertRaisesRegex(ValueError, r"expected shape=\(None, 8, 8, 1\), found shape=\(2, 28, 28"):
                model(np.zeros((2, 28, 28, 1), "float32"))
        with self.assertRaisesRegex(ValueError, "unknown hinge 'ovo'"):
            SVMClassifier(encoder(), num_classes=4, hinge="ovo")
        with self.assertRaisesRegex(ValueError, "num_classes must be at least 2"):
            MLPClassifier(encoder(), num_classes=1)
        with self.assertRaisesRegex(ValueError, "encoder must be a keras Model"):
            MLPClassifier(lambda t: t, num_classes=3)
