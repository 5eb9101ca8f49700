"""Distiller: knowledge distillation from a frozen teacher into a student."""

import copy
import inspect

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import distillation as distillation_kernel
from keras_pt.utils.deprecation import DeprecatedAlias, module_aliases
from keras_pt.models.input_checks import InputCheckMixin

UNLABELED = -1  # the label of a transfer-set example without one
# The old spelling, for one release.
__getattr__ = module_aliases(__name__, {"UNLABELLED": "UNLABELED"})


@keras.saving.register_keras_serializable(package="keras_pt")
class Distiller(InputCheckMixin, keras.Model):
    """Trains a student classifier on a frozen teacher's softened outputs.

    The training loss of each example is

        alpha · CE(y, student(x)) + (1 − alpha) · T² · KL(softmax(t / T) ‖ softmax(s / T))

    with `t = teacher(x)` and `s = student(x)` the logits (an SVM head's
    scores play the part of logits), `T` the temperature, and the KL term
    from the jit-compiled `keras_pt.kernels.distillation.softened_kl`. The
    loss is averaged over the global batch; only the student's weights are
    trained, the teacher runs in inference mode and is never updated.

    `call(x)` returns the student's logits, so a trained `Distiller`
    predicts like its student; `distiller.student` is the model to keep.
    `compile` also compiles an uncompiled student (with the Distiller's
    optimizer, and a keras_pt classifier's own loss and metrics, else
    cross-entropy from logits and accuracy), so `student.evaluate` works
    after distillation.
    Teacher and student take the same inputs (e.g. the same images, or the
    same packed token ids) and predict the same `num_classes`.

    Unlabelled examples (a transfer set of raw inputs, as in Hinton et
    al.) carry the label `UNLABELED` (-1): their cross-entropy term is
    zero, their distillation term counts as usual, so a batch may mix
    labelled and unlabelled examples. The loss stays a mean over every
    example of the global batch.

    Logged: `loss` (the total), `student_loss` (the cross-entropy, over the
    labelled examples), `distillation_loss` (`T² · KL`), `accuracy` (the
    student's, over the labelled examples).

    Args:
        teacher: keras.Model. A trained classifier returning
            `(batch, num_classes)` logits. It is frozen (`trainable=False`).
        student: keras.Model. The classifier to train, same output shape.
        temperature: float. Softening temperature `T > 0`. Defaults to 4.0.
        alpha: float in `[0, 1]`. Weight of the label cross-entropy; the
            distillation term gets `1 − alpha`. Defaults to 0.1.

    Example:

    >>> import numpy as np
    >>> from keras_pt import Autoencoder, MLPClassifier
    >>> teacher = MLPClassifier(Autoencoder((8, 8, 1), latent_dim=16).encoder,
    ...                         num_classes=10, hidden_dims=(64,))
    >>> student = MLPClassifier(Autoencoder((8, 8, 1), latent_dim=4).encoder,
    ...                         num_classes=10, hidden_dims=(8,),
    ...                         trainable_encoder=True)
    >>> x = np.random.rand(32, 8, 8, 1).astype("float32")
    >>> y = np.random.randint(0, 10, size=(32,))
    >>> distiller = Distiller(teacher, student, temperature=4.0, alpha=0.1)
    >>> distiller.compile(optimizer="adam")
    >>> history = distiller.fit(x, y, batch_size=16, verbose=0)

    References:
        Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural
        Network", 2015.
    """

    TAKES = "what the student takes (raw strings, packed ids or arrays)"
    TAKES_TEXT = True

    UNLABELED = UNLABELED
    UNLABELLED = DeprecatedAlias("UNLABELED")

    def __init__(self, teacher, student, temperature=4.0, alpha=0.1, **kwargs):
        for name, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.layers.Layer):
                raise ValueError(
                    f"{name} must be a keras Model mapping inputs to "
                    f"(batch, num_classes) logits, got {type(model).__name__}."
                )
        if teacher is student:
            raise ValueError("teacher and student must be two different models.")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}.")
        super().__init__(**kwargs)

        # === Layers ===
        self.teacher = teacher
        self.student = student
        # Freeze every layer of the teacher: a sub-model's own `trainable`
        # flag may have been set after its parent's (as encoder heads do).
        self.teacher.trainable = False
        for layer in self.teacher._flatten_layers(include_self=False):
            layer.trainable = False

        # === Config ===
        self.temperature = float(temperature)
        self.alpha = float(alpha)

        # === Trackers ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.student_loss_tracker,
            self.distillation_loss_tracker,
            self.accuracy_tracker,
        ]

    def compile(self, optimizer="adam", **kwargs):
        """Compiles with the student's optimizer; the loss is built in."""
        for name in ("loss", "metrics"):
            if kwargs.pop(name, None) not in (None, "auto"):
                raise ValueError(f"Distiller builds its own loss and metrics; do not pass {name}=.")
        super().compile(optimizer=optimizer, **kwargs)
        if not getattr(self.student, "compiled", False):
            self._compile_student()

    def _compile_student(self):
        """Compiles an uncompiled student, so that `distiller.student` can be
        evaluated (`student.evaluate`) and trained further on its own after
        distillation. It shares the Distiller's optimizer: `student.fit`
        continues from the distillation's optimizer state."""
        loss = inspect.signature(self.student.compile).parameters.get("loss")
        if loss is not None and loss.default == "auto":
            # keras_pt classifiers choose their own loss and metrics.
            self.student.compile(optimizer=self.optimizer)
        else:
            self.student.compile(
                optimizer=self.optimizer,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _check_outputs(self, teacher_logits, student_logits):
        if teacher_logits.shape[-1] != student_logits.shape[-1]:
            raise ValueError(
                f"teacher and student must predict the same number of classes; "
                f"got {teacher_logits.shape[-1]} and {student_logits.shape[-1]}."
            )

    def _per_example_losses(self, y, teacher_logits, student_logits):
        """Labels, labelled mask, cross-entropy and T²·KL, each (batch,).

        Unlabeled examples (`UNLABELED`) get label 0 and a zero mask, so
        their cross-entropy is masked out; the losses are float32.
        """
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        labelled = tf.not_equal(y, UNLABELED)
        y = tf.where(labelled, y, tf.zeros_like(y))
        if hasattr(self.student, "check_labels"):
            y = self.student.check_labels(y)
        labelled = tf.cast(labelled, tf.float32)
        student_logits = tf.cast(student_logits, tf.float32)
        ce = labelled * tf.nn.sparse_softmax_cross_entropy_with_logits(y, student_logits)
        kl = distillation_kernel.softened_kl(teacher_logits, student_logits, self.temperature)
        return y, labelled, ce, self.temperature**2 * kl

    def _loss(self, ce, distill):
        return self.alpha * tf.reduce_mean(ce) + (1.0 - self.alpha) * tf.reduce_mean(distill)

    def _update_trackers(self, y, labelled, ce, distill, student_logits):
        self.loss_tracker.update_state(self._loss(ce, distill))
        # Over the labelled examples only (weighted, so batches without a
        # label add nothing).
        self.student_loss_tracker.update_state(
            tf.math.divide_no_nan(tf.reduce_sum(ce), tf.reduce_sum(labelled)),
            sample_weight=tf.reduce_sum(labelled),
        )
        self.distillation_loss_tracker.update_state(tf.reduce_mean(distill))
        self.accuracy_tracker.update_state(y, student_logits, sample_weight=labelled)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y = data[0], data[1]
        teacher_logits = self.teacher(x, training=False)  # (batch, classes)

        # Train the student
        with tf.GradientTape() as tape:
            student_logits = self.student(x, training=True)
            self._check_outputs(teacher_logits, student_logits)
            y, labelled, ce, distill = self._per_example_losses(y, teacher_logits, student_logits)
            loss = self._loss(ce, distill)
            if self.student.losses:
                loss = loss + tf.add_n([tf.cast(l, tf.float32) for l in self.student.losses])
            scaled_loss = self.optimizer.scale_loss(distribute.scale_loss(loss))
        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        return self._update_trackers(y, labelled, ce, distill, student_logits)

    def test_step(self, data):
        x, y = data[0], data[1]
        teacher_logits = self.teacher(x, training=False)
        student_logits = self.student(x, training=False)
        self._check_outputs(teacher_logits, student_logits)
        y, labelled, ce, distill = self._per_example_losses(y, teacher_logits, student_logits)
        return self._update_trackers(y, labelled, ce, distill, student_logits)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "teacher": _serialize_uncompiled(self.teacher),
                "student": _serialize_uncompiled(self.student),
                "temperature": self.temperature,
                "alpha": self.alpha,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        config["teacher"] = keras.layers.deserialize(config["teacher"])
        config["student"] = keras.layers.deserialize(config["student"])
        return cls(**config)


def _serialize_uncompiled(model):
    """The model's serialized config without its compile settings (the
    Distiller compiles its student itself)."""
    config = keras.layers.serialize(model)
    config.pop("compile_config", None)
    return config
