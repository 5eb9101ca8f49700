"""Knowledge distillation of a fine-tuned MiniBERT classifier (`distill_minibert`)."""

import dataclasses
import time

import keras
import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt.models.distiller import Distiller
from keras_pt.models.mini_bert import MiniBERT
from keras_pt.models.mini_bert_classifier import MiniBERTClassifier
from keras_pt.recipes.context import RunContext, load_model, resolve_config
from keras_pt.recipes.minibert_finetuning import CLASSIFIER_FILENAME
from keras_pt.recipes.text_common import (
    TextClassifierConfig,
    Schedule,
    accuracy as test_accuracy,
    accuracy_table,
    labelled_task,
    tfidf_svm_baseline,
    train_with_early_stopping,
)

STUDENT_FILENAME = "student.keras"


@dataclasses.dataclass
class DistillResult:
    """What `distill_minibert` measured and wrote.

    Attributes:
        accuracy: dict. Test accuracy of the teacher (`"teacher"`), of the
            student distilled from it (`"distilled"`) and of the same student
            trained on the labels alone (`"alone"`).
        validation_accuracy: dict. The best validation accuracy of each
            student (the epoch whose weights were kept) and the teacher's.
        epochs: dict. Epochs each student ran before early stopping.
        parameters: dict. Weights of the teacher and of the student.
        num_labels: int. Labelled training examples.
        num_transfer: int. Examples in the transfer set (labelled ones
            included).
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written (student, logs).
        baselines: dict. `"tfidf_svm"`: TF-IDF + a linear SVM on the same
            labels and splits (`tfidf_svm_baseline`), when computed.
    """

    accuracy: dict
    validation_accuracy: dict
    epochs: dict
    parameters: dict
    num_labels: int
    num_transfer: int
    seconds: float
    files: dict
    baselines: dict = dataclasses.field(default_factory=dict)

    def table(self):
        """Parameters, validation and test accuracy of the three models as text."""
        return accuracy_table(
            "model",
            ("teacher", "distilled", "alone"),
            self,
            parameters=lambda name: self.parameters["teacher" if name == "teacher" else "student"],
        )


@dataclasses.dataclass
class DistillConfig(TextClassifierConfig):
    """Settings of `distill_minibert` (see its arguments)."""

    teacher: object = f"runs/finetune_minibert/{CLASSIFIER_FILENAME}"
    model_dir: str = "runs/distill"
    student_layers: int = 1
    student_hidden_dim: int = 64
    temperature: float = 4.0
    alpha: float = 0.5


def _load_teacher(teacher, strategy, num_classes, dataset):
    if isinstance(teacher, str):
        if not tf.io.gfile.exists(teacher):
            raise ValueError(
                f"no teacher classifier at {teacher!r}; run examples/finetune_minibert.py "
                f"first (it writes <model_dir>/{CLASSIFIER_FILENAME}), or pass its path "
                "with --teacher."
            )
        teacher = load_model(teacher, "teacher classifier", strategy)
    if not isinstance(teacher, MiniBERTClassifier) or teacher.backbone.preprocessor is None:
        raise ValueError(
            "the teacher must be a MiniBERTClassifier whose MiniBERT has a "
            f"preprocessor (as finetune_minibert saves it); got {type(teacher).__name__}."
        )
    if teacher.num_classes != num_classes:
        raise ValueError(
            f"the teacher predicts {teacher.num_classes} classes but {dataset!r} has "
            f"{num_classes}; distil on the data set the teacher was fine-tuned on."
        )
    return teacher


def _transfer_set(c, task):
    """The labelled examples and the training split with its labels hidden
    (label `Distiller.UNLABELED`): text of the task's classes. (stdlib_docs'
    other pre-training text, docstrings of other modules, would teach the
    student the teacher's guesses on out-of-task text.)"""
    unlabelled = data_lib.load_text_dataset(c.dataset, task.train_split, c.data_dir).map(
        lambda x, y: (x, tf.constant(Distiller.UNLABELED, tf.int32))
    )
    return task.labelled.concatenate(unlabelled).cache()


def _student_builder(c, preprocessor, num_classes):
    """A function building the same initial student on every call."""

    def student():
        keras.utils.set_random_seed(c.seed + 2)
        backbone = MiniBERT(
            preprocessor=preprocessor,
            num_layers=c.student_layers,
            hidden_dim=c.student_hidden_dim,
            num_heads=max(1, c.student_hidden_dim // 64),
            intermediate_dim=4 * c.student_hidden_dim,
            max_sequence_length=preprocessor.sequence_length,
            dropout=c.dropout,
            seed=c.seed,
        )
        return MiniBERTClassifier(
            backbone, num_classes=num_classes, dropout=c.dropout, seed=c.seed, pooling="mean", name="student"
        )

    return student


def distill_minibert(teacher=None, config=None, **overrides):
    """Distils a fine-tuned MiniBERT classifier into a smaller student.

    The teacher is a `MiniBERTClassifier` (the `classifier.keras` of
    `finetune_minibert`, fine-tuned on `labels_per_class` labels per class).
    Two copies of one small student (`student_layers` encoder blocks of
    width `student_hidden_dim`, the teacher's vocabulary and preprocessor,
    the same initial weights) then learn the same task:

    - `"alone"`: on the labelled examples only (cross-entropy), as a
      classifier of that size would be trained without a teacher;
    - `"distilled"`: by `keras_pt.Distiller` on a transfer set made of the
      labelled examples (with their labels) and the whole training split
      with its labels hidden (label `Distiller.UNLABELED`), so each batch
      minimises `alpha·CE + (1 − alpha)·T²·KL(teacher ‖ student)` with the
      cross-entropy over its labelled examples only (Hinton et al., 2015).

    Both train with AdamW for up to `epochs` epochs of `steps_per_epoch`
    steps, stop when the validation accuracy has not improved for
    `patience` epochs and keep the best weights. The teacher and both
    students are then tested on the test split. The distilled student is
    saved as `student.keras` (raw strings in, like the teacher). TF-IDF + a
    linear SVM is trained on the same labelled examples and scored on the
    same splits (`tfidf_svm_baseline`, over `baseline_draws` label draws).

    Args:
        teacher: str or `MiniBERTClassifier`. The fine-tuned teacher or its
            `.keras` path (its `.sha256`, when present, is checked).
        config: `DistillConfig` or None. The settings; keyword arguments
            override its fields (the defaults without one).
        dataset: the teacher's data set: a TFDS name, a labelled text file
            or class folder, or a `keras_pt.data.TextData`.
        data_dir: str or None. TFDS data directory.
        strategy: str or `tf.distribute.Strategy`. A `keras_pt.get_strategy`
            name. Both students train through `keras_pt.training.train`.
        tpu: str or None. TPU name or address (`"tpu"`/`"auto"`).
        mixed_precision: str or None. `"mixed_bfloat16"` or
            `"mixed_float16"` for the students (the teacher runs as loaded).
        model_dir: str. Where `student.keras`, the training checkpoints
            (`train/distilled`, `train/alone`: a rerun with the same
            settings resumes) and the TensorBoard logs (`logs/distilled`,
            `logs/alone`) go.
        labels_per_class: int. Labelled training examples per class (drawn
            with `seed` as `finetune_minibert` draws them: pass the same
            values to distil on the teacher's labels).
        student_layers: int. Encoder blocks of the student.
        student_hidden_dim: int. Width of the student (heads: width / 64,
            at least 1; intermediate: 4 × width).
        batch_size: int. Global batch size.
        epochs: int. The most epochs.
        steps_per_epoch: int. Steps between validations.
        patience: int. Epochs without a better validation accuracy before
            stopping.
        learning_rate: float. AdamW learning rate.
        weight_decay: float. AdamW weight decay.
        temperature: float. Softening temperature `T`.
        alpha: float in `[0, 1]`. Weight of the label cross-entropy.
        dropout: float. Dropout of the student.
        seed: int. Seed of the label draw, the student and the data order.
        baseline_draws: int. Label draws (seeds `seed`, `seed + 1`, ...) the
            TF-IDF baseline is tested on; 0 skips the baseline.
        scale_batch_size: bool. Multiply the batch size and learning rate
            by the number of replicas.
        checkpoint_every: int or None. Steps between checkpoints.
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `DistillResult`.

    Raises:
        ValueError: for a missing teacher file, a teacher that is not a
            `MiniBERTClassifier` with a preprocessor, or bad sizes.
    """
    if teacher is not None:
        overrides["teacher"] = teacher
    config = resolve_config(DistillConfig, config, overrides)
    c = config
    c.check_sizes(student_layers=c.student_layers, student_hidden_dim=c.student_hidden_dim)
    start = time.perf_counter()
    spec = data_lib.text_dataset_spec(c.dataset)
    ctx = RunContext("distill_minibert", config)
    teacher = _load_teacher(c.teacher, ctx.strategy, spec.num_classes, c.dataset)
    preprocessor = teacher.backbone.preprocessor

    # Labelled examples, the transfer set, validation and test data
    task = labelled_task(c.dataset, c.data_dir, preprocessor, c.labels_per_class, c.batch_size, c.seed)
    labelled, num_labels = task.labelled, task.num_labels
    baselines = {}
    if c.baseline_draws:
        baselines["tfidf_svm"] = tfidf_svm_baseline(
            c.dataset, c.data_dir, c.labels_per_class, c.seed, c.baseline_draws, labelled=labelled
        )
    transfer = _transfer_set(c, task)
    num_transfer = data_lib.count_examples(transfer)
    student = _student_builder(c, preprocessor, spec.num_classes)

    # The teacher's accuracy
    accuracy = {"teacher": test_accuracy(teacher, task.test)}
    validation_accuracy = {"teacher": test_accuracy(teacher, task.validation)}

    # The student alone, then distilled
    schedule = Schedule(preprocessor, c.batch_size, c.epochs, c.steps_per_epoch, c.patience)
    runs = {"alone": labelled, "distilled": transfer}
    epochs_run, models = {}, {}
    for name, examples in runs.items():

        def build(name=name):  # in the strategy's scope
            model = student()
            if name == "distilled":
                model = Distiller(teacher, model, temperature=c.temperature, alpha=c.alpha)
            model.compile(optimizer=keras.optimizers.AdamW(c.learning_rate, weight_decay=c.weight_decay))
            return model

        if c.verbose:
            what = f"{num_transfer} transfer examples" if name == "distilled" else f"{num_labels} labels"
            print(f"Training the student {name} on {what}")
        (models[name], validation_accuracy[name], epochs_run[name], accuracy[name]) = train_with_early_stopping(
            ctx, build, examples, task, name, schedule, inputs={"arm": name}
        )

    distilled_student = models["distilled"].student
    files = {
        "student": ctx.save_model(distilled_student, ctx.path(STUDENT_FILENAME)),
        "logs": ctx.path("logs"),
    }
    return DistillResult(
        accuracy=accuracy,
        validation_accuracy=validation_accuracy,
        epochs=epochs_run,
        parameters={
            "teacher": int(teacher.count_params()),
            "student": int(distilled_student.count_params()),
        },
        num_labels=num_labels,
        num_transfer=num_transfer,
        seconds=time.perf_counter() - start,
        files=files,
        baselines=baselines,
    )
