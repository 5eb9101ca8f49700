import numpy as np
import tensorflow as tf
import keras
import pytest

from keras_pt import Autoencoder, Distiller, MLPClassifier, SVMClassifier
from keras_pt.kernels import distillation
from tests.test_case import TestCase


def labelled(n=64, num_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, num_classes, size=n).astype("int32")
    return x, y


def classifier(latent_dim, hidden, num_classes=4, cls=MLPClassifier, **kwargs):
    encoder = Autoencoder(image_shape=(8, 8, 1), latent_dim=latent_dim, hidden_dims=(hidden,)).encoder
    return cls(encoder, num_classes=num_classes, trainable_encoder=True, **kwargs)


def numpy_kl(teacher, student, temperature):
    def log_softmax(z):
        z = z / temperature
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_p, log_q = log_softmax(teacher), log_softmax(student)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def numpy_loss(teacher, student, y, temperature, alpha):
    z = student - student.max(axis=-1, keepdims=True)
    log_q = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    labelled = y != Distiller.UNLABELED
    ce = np.where(labelled, -log_q[np.arange(len(y)), np.where(labelled, y, 0)], 0.0)
    kl = numpy_kl(teacher, student, temperature)
    return (alpha * ce + (1 - alpha) * temperature**2 * kl).mean()


class DistillationKernelTest(TestCase):
    def test_kl_against_numpy(self):
        rng = np.random.default_rng(3)
        for temperature in (0.5, 1.0, 4.0, 10.0):
            for scale in (1.0, 30.0):
                t = (scale * rng.normal(size=(17, 7))).astype("float32")
                s = (scale * rng.normal(size=(17, 7))).astype("float32")
                got = distillation.softened_kl(t, s, temperature).numpy()
                self.assertAllClose(
                    got, numpy_kl(t.astype("float64"), s.astype("float64"), temperature), atol=1e-4, rtol=1e-4
                )
                self.assertTrue(np.all(got >= -1e-6))

    def test_kl_zero_iff_equal(self):
        t = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
        self.assertAllClose(distillation.softened_kl(t, t, 2.0), np.zeros(5), atol=1e-6)
        # Softmax ignores a constant shift of the logits.
        self.assertAllClose(distillation.softened_kl(t, t + 3.0, 2.0), np.zeros(5), atol=1e-5)


class DistillerTest(TestCase):
    def make(self, temperature=3.0, alpha=0.3, teacher_cls=MLPClassifier):
        kwargs = {"hidden_dims": (16,)} if teacher_cls is MLPClassifier else {}
        teacher = classifier(12, 32, cls=teacher_cls, **kwargs)
        student = classifier(4, 8, hidden_dims=(8,))
        return teacher, student, Distiller(teacher, student, temperature, alpha)

    def test_teacher_frozen_student_trained(self):
        x, y = labelled()
        for teacher_cls in (MLPClassifier, SVMClassifier):
            teacher, student, distiller = self.make(teacher_cls=teacher_cls)
            distiller.compile(optimizer=keras.optimizers.SGD(0.5))
            teacher_before = [w.copy() for w in teacher.get_weights()]
            student(x[:1])
            student_before = [np.array(w) for w in student.trainable_weights]
            self.run_fit(distiller, tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=2)
            for a, b in zip(teacher_before, teacher.get_weights()):
                self.assertAllEqual(a, b)
            # (The feature statistics are not trained: only adapt sets them.)
            changed = [not np.allclose(a, np.array(b)) for a, b in zip(student_before, student.trainable_weights)]
            self.assertTrue(all(changed), "every student weight should train")
            # Not swapped: the distiller predicts with the student.
            self.assertIs(distiller.student, student)
            self.assertIs(distiller.teacher, teacher)
            self.assertAllClose(distiller(x), student(x))
            self.assertEqual(
                {id(v) for v in distiller.trainable_variables},
                {id(v) for v in student.trainable_variables},
            )
            # The student is compiled by the Distiller: it evaluates alone.
            logs = student.evaluate(x, y, verbose=0, return_dict=True)
            self.assertAllClose(logs["accuracy"], np.mean(np.argmax(student.predict(x, verbose=0), 1) == y))

    def test_student_of_plain_keras_is_compiled_for_evaluation(self):
        x, y = labelled()
        teacher = classifier(16, 32)
        inputs = keras.Input((8, 8, 1))
        student = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
        distiller = Distiller(teacher, student)
        distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        distiller.fit(x, y, batch_size=16, verbose=0)
        logs = student.evaluate(x, y, verbose=0, return_dict=True)
        self.assertIn("accuracy", logs)
        self.assertTrue(np.isfinite(logs["loss"]))

    def test_logged_loss_is_the_objective(self):
        x, y = labelled(16)
        for alpha in (0.0, 0.3, 1.0):
            teacher, student, distiller = self.make(alpha=alpha)
            distiller.compile(optimizer=keras.optimizers.SGD(0.0))
            t = teacher(x).numpy().astype("float64")
            s = student(x).numpy().astype("float64")
            logs = distiller.fit(x, y, batch_size=16, verbose=0).history
            expected = numpy_loss(t, s, y, 3.0, alpha)
            self.assertAllClose(logs["loss"][0], expected, atol=1e-5, rtol=1e-5)
            evaluated = distiller.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
            self.assertAllClose(evaluated["loss"], expected, atol=1e-5, rtol=1e-5)

    def test_unlabelled_spelling_is_a_deprecated_alias(self):
        from keras_pt.models import distiller as distiller_module

        with self.assertWarns(DeprecationWarning):
            self.assertEqual(Distiller.UNLABELLED, Distiller.UNLABELED)
        with self.assertWarns(DeprecationWarning):
            self.assertEqual(distiller_module.UNLABELLED, -1)

    def test_unlabelled_examples_distil_only(self):
        # A transfer set mixing labelled and unlabelled (-1) examples: the
        # cross-entropy covers the labelled ones, the KL term every one.
        x, y = labelled(16)
        y = np.where(np.arange(16) % 3 == 0, y, Distiller.UNLABELED).astype("int32")
        teacher, student, distiller = self.make(alpha=0.4)
        distiller.compile(optimizer=keras.optimizers.SGD(0.0))
        t = teacher(x).numpy().astype("float64")
        s = student(x).numpy().astype("float64")
        logs = distiller.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        self.assertAllClose(logs["loss"], numpy_loss(t, s, y, 3.0, 0.4), atol=1e-5, rtol=1e-5)
        known = y != Distiller.UNLABELED
        self.assertAllClose(logs["student_loss"], numpy_loss(t[known], s[known], y[known], 3.0, 1.0), atol=1e-5)
        self.assertAllClose(logs["accuracy"], np.mean(s[known].argmax(-1) == y[known]), atol=1e-6)
        # A batch without any label trains on the teacher alone.
        distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        before = [w.copy() for w in student.get_weights()]
        none = np.full(16, Distiller.UNLABELED, "int32")
        history = distiller.fit(x, none, batch_size=16, verbose=0).history
        self.assertAllClose(history["loss"][0], 0.6 * 9.0 * numpy_kl(t, s, 3.0).mean(), atol=1e-5)
        self.assertFalse(all(np.allclose(a, b) for a, b in zip(before, student.get_weights())))

    @pytest.mark.slow
    def test_strategy_equivalence(self):
        x, y = labelled(48)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)

        def build_and_compile():
            keras.utils.set_random_seed(7)
            teacher = classifier(12, 32, hidden_dims=(16,))
            student = classifier(4, 8, hidden_dims=(8,))
            teacher(x[:2])  # a trained teacher is built
            distiller = Distiller(teacher, student, temperature=2.0, alpha=0.5)
            distiller(x[:2])
            distiller.compile(optimizer=keras.optimizers.SGD(0.5))
            return distiller

        def reference_loss(model, batch):
            bx, by = (b.numpy() for b in batch)
            t = model.teacher(bx).numpy().astype("float64")
            s = model.student(bx).numpy().astype("float64")
            return numpy_loss(t, s, by, 2.0, 0.5)

        self.run_strategy_equivalence(
            build_and_compile,
            ds,
            loss_keys=("loss", "student_loss", "distillation_loss"),
            reference_loss=reference_loss,
        )

    def test_jit_compiled_fit(self):
        x, y = labelled()
        _, _, distiller = self.make()
        distiller.compile(optimizer="adam", jit_compile=True)
        self.run_fit(distiller, tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True))

    @pytest.mark.slow
    def test_config_saving_and_continued_training(self):
        x, y = labelled()
        teacher, student, distiller = self.make()
        distiller.compile(optimizer="adam")
        distiller.fit(x, y, batch_size=16, verbose=0)
        self.run_config_roundtrip(distiller)
        restored = self.run_saving(distiller, x)
        self.assertFalse(restored.teacher.trainable)
        self.assertAllOutputsClose(restored.teacher(x), teacher(x))
        self.assertAllOutputsClose(restored.student(x), student(x))
        self.assertEqual(restored.temperature, 3.0)
        self.assertEqual(restored.alpha, 0.3)
        restored.compile(optimizer="adam")
        self.run_fit(restored, tf.data.Dataset.from_tensor_slices((x, y)).batch(16))

    def test_bad_arguments(self):
        teacher = classifier(4, 8, hidden_dims=(8,))
        student = classifier(4, 8, hidden_dims=(8,))
        with self.assertRaisesRegex(ValueError, "temperature must be positive"):
            Distiller(teacher, student, temperature=0.0)
        with self.assertRaisesRegex(ValueError, r"alpha must lie in \[0, 1\]"):
            Distiller(teacher, student, alpha=1.5)
        with self.assertRaisesRegex(ValueError, "two different models"):
            Distiller(teacher, teacher)
        with self.assertRaisesRegex(ValueError, "keras Model"):
            Distiller("teacher", student)
        x, y = labelled(16)
        mismatched = Distiller(classifier(4, 8, num_classes=5, hidden_dims=(8,)), student)
        mismatched.compile(optimizer="adam")
        with self.assertRaisesRegex(ValueError, "same number of classes"):
            mismatched.fit(x, y, batch_size=16, verbose=0)
        with self.assertRaisesRegex(ValueError, "own loss"):
            Distiller(teacher, student).compile(optimizer="adam", loss="mse")
