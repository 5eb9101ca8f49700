"""Few-label fine-tuning of a pre-trained MiniBERT (`finetune_minibert`).

Loads the `.keras` file of `pretrain_minibert` and fine-tunes a
`MiniBERTClassifier` on a few labels per class, with early stopping on the
validation split restoring the best weights, beside the same classifier
fine-tuned from random initialisation and TF-IDF + a linear SVM on the same
labels, and exports the pre-trained one as a SavedModel taking raw strings.
"""

import dataclasses
import time

import keras
import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt.export import export_text_classifier
from keras_pt.models.mini_bert import MiniBERT
from keras_pt.models.mini_bert_classifier import MiniBERTClassifier
from keras_pt.recipes.context import RunContext, load_model, resolve_config
from keras_pt.recipes.minibert_pretraining import MODEL_FILENAME
from keras_pt.recipes.text_common import (
    TextClassifierConfig,
    Schedule,
    accuracy_table,
    labelled_task,
    tfidf_svm_baseline,
    train_with_early_stopping,
)

CLASSIFIER_FILENAME = "classifier.keras"
SCRATCH_CLASSIFIER_FILENAME = "classifier_from_scratch.keras"
EXPORT_DIRNAME = "export"


@dataclasses.dataclass
class FinetuneResult:
    """What `finetune_minibert` measured and wrote.

    Attributes:
        accuracy: dict. Test accuracy of the classifier fine-tuned from the
            pre-trained MiniBERT (`"pretrained"`) and from random
            initialisation (`"from_scratch"`).
        validation_accuracy: dict. The best validation accuracy of each
            (the epoch whose weights were kept).
        epochs: dict. Epochs each ran before early stopping.
        num_labels: int. Labelled training examples used.
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written (`classifier`: the pre-trained
            one, `classifier_from_scratch`, `export`: the pre-trained one's
            SavedModel, `logs`).
        baselines: dict. `"tfidf_svm"`: TF-IDF + a linear SVM on the same
            labels and splits (`tfidf_svm_baseline`), when computed.
    """

    accuracy: dict
    validation_accuracy: dict
    epochs: dict
    num_labels: int
    seconds: float
    files: dict
    baselines: dict = dataclasses.field(default_factory=dict)

    def table(self):
        """Validation and test accuracy of both classifiers and the baselines as text."""
        return accuracy_table("encoder", ("pretrained", "from_scratch"), self)


@dataclasses.dataclass
class FinetuneConfig(TextClassifierConfig):
    """Settings of `finetune_minibert` (see its arguments)."""

    pretrained: object = f"runs/pretrain_minibert/{MODEL_FILENAME}"
    model_dir: str = "runs/finetune_minibert"
    batch_size: int = 16
    pooling: str = "mean"
    export: bool = True


def _load_pretrained(pretrained, strategy):
    """The pre-trained MiniBERT, built in the strategy's scope."""
    if isinstance(pretrained, str):
        if not tf.io.gfile.exists(pretrained):
            raise ValueError(
                f"no pre-trained MiniBERT at {pretrained!r}; run "
                "examples/pretrain_minibert.py first (it writes "
                f"<model_dir>/{MODEL_FILENAME}), or pass its path with --pretrained."
            )
        backbone = load_model(pretrained, "pre-trained MiniBERT", strategy)
    elif isinstance(pretrained, MiniBERT):
        with strategy.scope():
            backbone = MiniBERT.from_config(pretrained.get_config())
            backbone.set_weights(pretrained.get_weights())
    else:
        raise ValueError(
            f"pretrained must be the path of a MiniBERT .keras file or a MiniBERT; got {type(pretrained).__name__}."
        )
    if not isinstance(backbone, MiniBERT):
        raise ValueError(
            f"{pretrained!r} holds a {type(backbone).__name__}, not a MiniBERT; pass the "
            f"{MODEL_FILENAME} that examples/pretrain_minibert.py writes."
        )
    if backbone.preprocessor is None:
        raise ValueError(
            "the pre-trained MiniBERT has no preprocessor; pre-train it with "
            "preprocessor=MiniBERTPreprocessor(...) so its vocabulary is known."
        )
    return backbone


def finetune_minibert(pretrained=None, config=None, **overrides):
    """Fine-tunes a classifier on a pre-trained MiniBERT and on a fresh one.

    Loads the pre-trained `MiniBERT` (a `.keras` file from
    `pretrain_minibert`, or a model), keeps `labels_per_class` training
    examples of each class (`keras_pt.data.labeled_text_subset`, drawn with
    `seed`), and fine-tunes two `MiniBERTClassifier`s with everything else
    equal: one on the pre-trained encoder, one on an encoder of the same
    shape with random weights (same vocabulary and preprocessor, same head
    initialisation, optimizer, batches and epochs). Each trains for up to
    `epochs` epochs of `steps_per_epoch` steps with AdamW through
    `keras_pt.training.train`, stops when the validation accuracy has not
    improved for `patience` epochs and restores the best weights, as in
    BERT's fine-tuning recipe; then both are tested on the test split.
    Training checkpoints (early-stopping state included) go to
    `model_dir/train/<pretrained|from_scratch>`: running again with the same
    settings resumes an interrupted run, and one with other settings or
    another pre-trained model is refused (use a new `model_dir`).
    Both classifiers are saved (`classifier.keras`,
    `classifier_from_scratch.keras`) and, with `export`, the pre-trained
    one is exported as a SavedModel taking raw strings. TF-IDF + a linear
    SVM is trained on the same labelled examples and scored on the same
    splits (`tfidf_svm_baseline`), and on `baseline_draws` label draws in
    all, for the spread.

    Args:
        pretrained: str or `MiniBERT`. The pre-trained model or its `.keras`
            path (its `.sha256`, when present, is checked).
        config: `FinetuneConfig` or None. The settings; keyword arguments
            override its fields (the defaults without one).
        dataset: a TFDS name (`keras_pt.data.TEXT_DATASETS`; sentence-pair
            tasks work too), a labelled text file or class folder, or a
            `keras_pt.data.TextData`. Splits: `finetune_splits(dataset)`.
        data_dir: str or None. TFDS data directory.
        strategy: str or `tf.distribute.Strategy`. A
            `keras_pt.get_strategy` name. Both classifiers train through
            `keras_pt.training.train` (every strategy, `multi_worker`
            included).
        tpu: str or None. TPU name or address (`"tpu"`/`"auto"`).
        mixed_precision: str or None. `"mixed_bfloat16"` or
            `"mixed_float16"` for the classifiers (the pre-trained weights
            are loaded as float32 variables either way).
        model_dir: str. Where `classifier.keras`, `export/`, the training
            checkpoints (`train/`) and the TensorBoard logs
            (`logs/pretrained`, `logs/from_scratch`) go.
        labels_per_class: int. Labelled training examples per class.
        batch_size: int. Global batch size (at most the number of labels).
        epochs: int. The most epochs.
        steps_per_epoch: int. Steps between validations: an epoch is this
            many batches of the repeated labelled examples, so that a few
            labels still make epochs long enough for early stopping to
            judge (not a handful of steps).
        patience: int. Epochs without a better validation accuracy before
            stopping.
        learning_rate: float. AdamW learning rate.
        weight_decay: float. AdamW weight decay.
        dropout: float. Dropout before the classification layer.
        pooling: str. `MiniBERTClassifier` pooling, `"mean"` (of the token
            states: masked-LM pre-training trains no `[CLS]` pooler),
            `"pooled"` (the `[CLS]` pooler) or `"first_token"`.
        scale_batch_size: bool. Multiply the batch size and learning rate
            by the number of replicas.
        checkpoint_every: int or None. Steps between checkpoints (default:
            each epoch).
        seed: int. Seed of the label draw, the head and the data order.
        export: bool. Write the SavedModel export.
        baseline_draws: int. Label draws (seeds `seed`, `seed + 1`, ...) the
            TF-IDF baseline is tested on; 0 skips the baseline.
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `FinetuneResult`.

    Raises:
        ValueError: for a missing pre-trained file, a model without a
            preprocessor, or bad sizes.
    """
    if pretrained is not None:
        overrides["pretrained"] = pretrained
    config = resolve_config(FinetuneConfig, config, overrides)
    c = config
    c.check_sizes()
    start = time.perf_counter()
    spec = data_lib.text_dataset_spec(c.dataset)
    ctx = RunContext("finetune_minibert", config)
    backbone = _load_pretrained(c.pretrained, ctx.strategy)
    preprocessor = backbone.preprocessor

    # The labelled subset, the validation and the test data
    task = labelled_task(c.dataset, c.data_dir, preprocessor, c.labels_per_class, c.batch_size, c.seed)
    baselines = {}
    if c.baseline_draws:
        baselines["tfidf_svm"] = tfidf_svm_baseline(
            c.dataset, c.data_dir, c.labels_per_class, c.seed, c.baseline_draws, labelled=task.labelled
        )
    schedule = Schedule(preprocessor, c.batch_size, c.epochs, c.steps_per_epoch, c.patience)

    # Fine-tune on the pre-trained and on a randomly initialised encoder
    accuracy, validation_accuracy, epochs_run, classifiers = {}, {}, {}, {}
    for name in ("pretrained", "from_scratch"):

        def build(name=name):  # in the strategy's scope
            if name == "pretrained":
                encoder_model = backbone
            else:
                keras.utils.set_random_seed(c.seed + 1)
                encoder_model = MiniBERT.from_config(backbone.get_config())
            keras.utils.set_random_seed(c.seed)  # the same head weights for both
            classifier = MiniBERTClassifier(
                encoder_model,  # holds the preprocessor, saved with it
                num_classes=spec.num_classes,
                dropout=c.dropout,
                seed=c.seed,
                pooling=c.pooling,
                name=f"classifier_{name}",
            )
            classifier.compile(optimizer=keras.optimizers.AdamW(c.learning_rate, weight_decay=c.weight_decay))
            return classifier

        if c.verbose:
            print(f"Fine-tuning the {name} classifier on {task.num_labels} labels")
        (classifiers[name], validation_accuracy[name], epochs_run[name], accuracy[name]) = train_with_early_stopping(
            ctx, build, task.labelled, task, name, schedule, inputs={"arm": name}
        )

    # Save both classifiers; export the pre-trained one as a strings-in SavedModel
    files = {
        "logs": ctx.path("logs"),
        "classifier": ctx.save_model(classifiers["pretrained"], ctx.path(CLASSIFIER_FILENAME)),
        "classifier_from_scratch": ctx.save_model(classifiers["from_scratch"], ctx.path(SCRATCH_CLASSIFIER_FILENAME)),
    }
    if c.export and ctx.is_chief:
        files["export"] = export_text_classifier(
            classifiers["pretrained"], ctx.path(EXPORT_DIRNAME), sentence_pairs=spec.is_pair
        )
    return FinetuneResult(
        accuracy=accuracy,
        validation_accuracy=validation_accuracy,
        epochs=epochs_run,
        num_labels=task.num_labels,
        seconds=time.perf_counter() - start,
        files=files,
        baselines=baselines,
    )
