"""MiniBERT recipes that the example binaries call.

`pretrain_minibert` learns a WordPiece vocabulary from a text corpus, builds
a `MiniBERT` (a preset shape, a fixed `sequence_length`), pre-trains it by
masked-LM and saves it as a `.keras` file with its preprocessor (and so its
vocabulary) inside. `finetune_minibert` loads such a file and fine-tunes a
`MiniBERTClassifier` on a few labels per class, with early stopping on the
validation split restoring the best weights, beside the same classifier
fine-tuned from random initialisation (same vocabulary, preprocessor,
optimizer and steps), and reports both test accuracies.
`distill_minibert` distils such a fine-tuned classifier into a smaller
student, beside the same student trained on the labels alone.
`export_text_classifier` writes a SavedModel whose signature takes raw
strings and returns class probabilities.

Example:

>>> from keras_pt import bert_recipes
>>> pretrained = bert_recipes.pretrain_minibert(model_dir="/tmp/mb")  # doctest: +SKIP
>>> result = bert_recipes.finetune_minibert(pretrained.model_path)  # doctest: +SKIP
>>> result.accuracy  # doctest: +SKIP
{'pretrained': ..., 'from_scratch': ...}
"""

import dataclasses
import hashlib
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt import distribute, training
from keras_pt import special_tokens
from keras_pt.evaluation import text_baselines
from keras_pt.layers.mini_bert_preprocessor import MiniBERTPreprocessor
from keras_pt.layers.wordpiece_tokenizer import WordPieceTokenizer
from keras_pt.models.distiller import Distiller
from keras_pt.models.mini_bert import PRESETS, MiniBERT
from keras_pt.models.mini_bert_classifier import MiniBERTClassifier

MODEL_FILENAME = "mini_bert.keras"
VOCABULARY_FILENAME = "vocabulary.txt"
CLASSIFIER_FILENAME = "classifier.keras"
SCRATCH_CLASSIFIER_FILENAME = "classifier_from_scratch.keras"
STUDENT_FILENAME = "student.keras"
EXPORT_DIRNAME = "export"


@keras.saving.register_keras_serializable(package="keras_pt")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's learning-rate schedule: linear warm-up, then linear decay to 0.

    Args:
        learning_rate: float. The peak, reached after `warmup_steps`.
        total_steps: int. The rate is 0 from this step on.
        warmup_steps: int. Steps of the linear warm-up from 0.
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need 0 <= warmup_steps <= total_steps and total_steps >= 1; got "
                f"warmup_steps={warmup_steps}, total_steps={total_steps}."
            )
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(max(self.warmup_steps, 1), tf.float32)
        decay = tf.cast(max(self.total_steps - self.warmup_steps, 1), tf.float32)
        up = step / warmup
        down = (self.total_steps - step) / decay
        factor = tf.clip_by_value(tf.minimum(up, down), 0.0, 1.0)
        return self.learning_rate * factor

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def _check_positive(**values):
    """Raises a ValueError naming the first value below 1."""
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive int; got {value}.")


def _weights_fingerprint(model):
    """A short SHA-256 of a model's weights (the starting point of a run)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]


def finetune_splits(name):
    """`(train, validation, test)` TFDS splits of a text classification data set.

    Data sets without a labelled validation split keep the last 10% of
    `train` for it; GLUE tasks, whose `test` labels are hidden, are tested on
    `validation` and validate on the last 5% of `train`.
    """
    labeled = data_lib.text_dataset_spec(name).labeled_splits
    if "validation" in labeled and "test" in labeled:
        return "train", "validation", "test"
    if "test" in labeled:
        return "train[:90%]", "train[90%:]", "test"
    return "train[:95%]", "train[95%:]", "validation"


def _texts(dataset):
    """The strings of a labelled data set (both texts of a pair)."""
    return data_lib.texts_only(dataset.map(lambda x, y: x))


def _packed(dataset, preprocessor, batch_size):
    """Every example, packed, in batches (the last one may be smaller)."""
    return dataset.batch(batch_size).map(
        lambda x, y: (preprocessor(x), y), num_parallel_calls=tf.data.AUTOTUNE
    )


def _ordinary_token_ids(packed_batches):
    """Ids of the real, non-special tokens of a packed data set (what MLM can select)."""
    ids = [
        batch["token_ids"][batch["padding_mask"].astype(bool)]
        for batch in packed_batches.as_numpy_iterator()
    ]
    ids = np.concatenate(ids) if ids else np.zeros((0,), np.int32)
    return ids[ids >= special_tokens.NUM_SPECIAL_TOKENS]


def unigram_baseline(preprocessor, train_texts, heldout_texts, batch_size=64):
    """The masked-LM accuracy of always predicting the most frequent token.

    Counts the ordinary tokens (not special, not padding: the ones masking
    selects from) of `train_texts`, picks the most frequent, and returns its
    share of the ordinary tokens of `heldout_texts` — the expected accuracy
    of that constant guess at uniformly selected masked positions.

    Returns:
        `(token, accuracy)`: the token string and the held-out accuracy.
    """
    train_ids = _ordinary_token_ids(
        train_texts.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    )
    heldout_ids = _ordinary_token_ids(
        heldout_texts.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    )
    if not len(train_ids) or not len(heldout_ids):
        raise ValueError("the texts hold no ordinary tokens to count.")
    top = int(np.argmax(np.bincount(train_ids)))
    return preprocessor.tokenizer.id_to_token(top), float(np.mean(heldout_ids == top))


@dataclasses.dataclass
class PretrainResult:
    """What `pretrain_minibert` measured and wrote.

    Attributes:
        model_path: str. The pre-trained `MiniBERT` (`.keras`, preprocessor
            and vocabulary inside).
        vocabulary_size: int. Tokens learned (special tokens included).
        mlm_accuracy: float. Masked-LM accuracy on the held-out test text.
        unigram_accuracy: float. Accuracy of always predicting
            `unigram_token` (the most frequent training token) there.
        unigram_token: str.
        steps: int. Optimizer steps taken.
        seconds: float. Wall-clock time of the whole job.
        files: dict of the paths written (model, vocabulary, TensorBoard logs).
    """

    model_path: str
    vocabulary_size: int
    mlm_accuracy: float
    unigram_accuracy: float
    unigram_token: str
    steps: int
    seconds: float
    files: dict


def pretrain_minibert(
    dataset="stdlib_docs",
    data_dir=None,
    strategy="auto",
    tpu=None,
    model_dir="runs/pretrain_minibert",
    preset="tiny",
    sequence_length=128,
    vocabulary_size=8192,
    vocabulary=None,
    batch_size=32,
    steps=6000,
    learning_rate=1e-3,
    warmup_fraction=0.1,
    weight_decay=0.01,
    dropout=0.1,
    mixed_precision=None,
    checkpoint_every=None,
    seed=0,
    verbose=1,
):
    """Learns a vocabulary, pre-trains a MiniBERT by masked-LM and saves it.

    The vocabulary is learned (`keras_pt.data.learn_vocabulary`) from the
    data set's pre-training text (`load_pretraining_texts`: for
    `stdlib_docs`, `train+unsupervised`, which holds no validation or test
    text), which also feeds pre-training: `steps` AdamW steps of
    `batch_size` texts packed to `sequence_length` tokens on the host, the
    learning rate warming up linearly over `warmup_fraction` of the steps,
    then decaying linearly to 0 (BERT's schedule). Masking is dynamic (fresh
    each step, in `MiniBERT.train_step`). Training runs through
    `keras_pt.training.train`, so it works under every strategy (the
    `strategy.run` loop under `multi_worker`), checkpoints under
    `model_dir/checkpoints` and resumes from there when run again. The
    masked-LM accuracy on the held-out test text is then compared with the
    unigram baseline (`unigram_baseline`).

    Args:
        dataset: str. A `keras_pt.data.TEXT_DATASETS` name. Defaults to the
            embedded `"stdlib_docs"`.
        data_dir: str or None. TFDS data directory.
        strategy: str or `tf.distribute.Strategy`. A `keras_pt.get_strategy`
            name.
        tpu: str or None. TPU name or address (`"tpu"`/`"auto"`).
        model_dir: str. Where `mini_bert.keras`, `vocabulary.txt`, the
            checkpoints and the TensorBoard logs (`logs/pretrain`) go.
        preset: str. `MiniBERT.from_preset` name: `"tiny"`, `"mini"` or
            `"small"`.
        sequence_length: int. Tokens per packed text, `[CLS]`/`[SEP]`
            included; longer texts are truncated.
        vocabulary_size: int. The most WordPiece tokens to learn. A small
            corpus may give fewer (merged pairs must be seen twice):
            `stdlib_docs` offers about 7,500.
        vocabulary: list of str, str or None. A vocabulary (or the path of
            a file with one token per line, e.g. the `vocabulary.txt` of an
            earlier run) to use instead of learning one; it must start with
            the special tokens. Defaults to None (learn `vocabulary_size`
            tokens).
        batch_size: int. Global batch size.
        steps: int. Optimizer steps (an epoch is one pass over the text).
        learning_rate: float. Peak AdamW learning rate.
        warmup_fraction: float. Share of `steps` spent warming up.
        weight_decay: float. AdamW weight decay.
        dropout: float. Dropout of the encoder.
        mixed_precision: str or None. `"mixed_bfloat16"` (TPUs) or
            `"mixed_float16"` (GPUs); None keeps float32.
        checkpoint_every: int or None. Steps between checkpoints. Defaults
            to once per epoch.
        seed: int. Seed of the weights, the data order and the masks.
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `PretrainResult`.

    Raises:
        ValueError: for an unknown data set, preset or strategy, or
            non-positive sizes.
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size, steps=steps)
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must lie in [0, 1); got {warmup_fraction}.")
    if preset not in PRESETS:
        raise ValueError(f"unknown MiniBERT preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = distribute.get_strategy(strategy, tpu=tpu)
    is_chief = distribute.is_chief(strategy)
    tf.io.gfile.makedirs(model_dir)

    # Learn the vocabulary from the pre-training text
    texts = data_lib.load_pretraining_texts(dataset, data_dir=data_dir)
    if vocabulary is None:
        vocabulary = data_lib.learn_vocabulary(texts, vocabulary_size)
    elif isinstance(vocabulary, str) and not tf.io.gfile.exists(vocabulary):
        raise ValueError(
            f"vocabulary file {vocabulary!r} does not exist; pass a file with one "
            "token per line (e.g. the vocabulary.txt of an earlier run), or leave "
            "it unset to learn a vocabulary."
        )
    else:
        vocabulary = WordPieceTokenizer(vocabulary).get_vocabulary()  # read and checked
    vocabulary_path = os.path.join(model_dir, VOCABULARY_FILENAME)
    if is_chief:
        with tf.io.gfile.GFile(vocabulary_path, "w") as f:
            f.write("\n".join(vocabulary) + "\n")
    preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), sequence_length)

    # Held-out text and the unigram baseline on it
    _, _, test_split = finetune_splits(dataset)
    test_texts = _texts(data_lib.load_text_dataset(dataset, test_split, data_dir))
    test = data_lib.preprocess_text_dataset(
        test_texts, preprocessor, min(batch_size, data_lib.count_examples(test_texts))
    ).cache()
    unigram_token, unigram_accuracy = unigram_baseline(preprocessor, texts, test_texts)

    # Pre-train by masked-LM
    def build():  # in the strategy's scope
        model = MiniBERT.from_preset(
            preset,
            preprocessor=preprocessor,
            max_sequence_length=sequence_length,
            dropout=dropout,
            seed=seed,
        )
        schedule = WarmupLinearDecay(learning_rate, steps, int(warmup_fraction * steps))
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay, epsilon=1e-6)
        )
        return model

    def dataset_fn(epoch, batch_size, seed):  # the same (epoch, seed), the same batches
        batches = data_lib.epoch_batches(texts, batch_size, seed, epoch)
        return batches.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE
        )

    log_dir = os.path.join(model_dir, "logs", "pretrain")
    trained = training.train(
        build,
        dataset_fn,
        batch_size=batch_size,
        steps=steps,
        strategy=strategy,
        mixed_precision=mixed_precision,
        model_dir=model_dir,
        checkpoint_every=checkpoint_every,
        callbacks=[keras.callbacks.TensorBoard(log_dir)] if is_chief else [],
        seed=seed,
        verbose=verbose,
    )
    model = trained.model
    model_path = os.path.join(model_dir, MODEL_FILENAME)
    if is_chief:
        model.save(model_path)
    return PretrainResult(
        model_path=model_path,
        vocabulary_size=len(vocabulary),
        mlm_accuracy=_mlm_accuracy(model, test),
        unigram_accuracy=unigram_accuracy,
        unigram_token=unigram_token,
        steps=trained.step,
        seconds=time.perf_counter() - start,
        files={"model": model_path, "vocabulary": vocabulary_path, "logs": log_dir},
    )


def _mlm_accuracy(model, packed, repeats=3):
    """Held-out masked-LM accuracy, over `repeats` fresh maskings.

    The masks come from a copy of the seed state, which is put back after,
    so evaluating does not change the masks of later training.
    """
    state = model.seed_generator.state.numpy()
    accuracy = np.mean(
        [
            model.evaluate(packed, verbose=0, return_dict=True)["mlm_accuracy"]
            for _ in range(repeats)
        ]
    )
    model.seed_generator.state.assign(state)
    return float(accuracy)


@dataclasses.dataclass
class _LabelledTask:
    """The few-label training examples and the packed evaluation data."""

    train_split: str
    labelled: tf.data.Dataset  # unbatched (text, label), cached
    num_labels: int
    validation: tf.data.Dataset  # packed batches, cached
    test: tf.data.Dataset  # packed batches


def _labelled_task(dataset, data_dir, preprocessor, labels_per_class, batch_size, seed):
    """`labels_per_class` training examples per class (drawn with `seed`)
    and the packed validation and test splits (`finetune_splits`)."""
    spec = data_lib.text_dataset_spec(dataset)
    train_split, validation_split, test_split = finetune_splits(dataset)
    labelled = data_lib.labeled_text_subset(
        data_lib.load_text_dataset(dataset, train_split, data_dir),
        labels_per_class,
        seed=seed,
        num_classes=spec.num_classes,
    )
    num_labels = labels_per_class * spec.num_classes
    if batch_size > num_labels:
        raise ValueError(
            f"batch_size={batch_size} exceeds the {num_labels} labelled examples; "
            "lower batch_size or raise labels_per_class."
        )
    return _LabelledTask(
        train_split=train_split,
        labelled=labelled.cache(),
        num_labels=num_labels,
        validation=_packed(
            data_lib.load_text_dataset(dataset, validation_split, data_dir), preprocessor, 64
        ).cache(),
        test=_packed(data_lib.load_text_dataset(dataset, test_split, data_dir), preprocessor, 64),
    )


def _accuracy(model, packed):
    return training.classification_accuracy(packed, "accuracy")(model)["accuracy"]


def tfidf_svm_baseline(dataset, data_dir, labels_per_class, seed=0, draws=5, labelled=None):
    """TF-IDF + a linear SVM on a recipe's labels and splits (`finetune_splits`).

    Trains `keras_pt.evaluation.text_baselines.TfidfSVM` on
    `labels_per_class` examples per class drawn as the recipes draw them
    (`keras_pt.data.labeled_text_subset` with `seed`) and scores it on the
    validation and test splits; then repeats the test score for the draws
    of `seed + 1`, ..., `seed + draws - 1`, for the spread over label draws.

    Args:
        dataset: str. A `keras_pt.data.TEXT_DATASETS` name.
        data_dir: str or None. TFDS data directory.
        labels_per_class: int. Labelled training examples per class.
        seed: int. Seed of the first draw (the recipe's).
        draws: int. Label draws scored on the test split, the first one the
            recipe's (at least 1).
        labelled: `tf.data.Dataset` or None. The recipe's drawn examples
            (`(text, label)`), to reuse instead of drawing them again.

    Returns:
        dict with `"validation"` and `"test"` (the `seed` draw), `"draws"`
        (test accuracy per draw) and `"seeds"`.
    """
    _check_positive(labels_per_class=labels_per_class, draws=draws)
    spec = data_lib.text_dataset_spec(dataset)
    train_split, validation_split, test_split = finetune_splits(dataset)
    train = data_lib.load_text_dataset(dataset, train_split, data_dir)
    validation = text_baselines.texts_and_labels(
        data_lib.load_text_dataset(dataset, validation_split, data_dir)
    )
    test = text_baselines.texts_and_labels(data_lib.load_text_dataset(dataset, test_split, data_dir))
    seeds = [seed + i for i in range(draws)]
    scores = []
    for i, draw_seed in enumerate(seeds):
        if i == 0 and labelled is not None:
            examples = labelled
        else:
            examples = data_lib.labeled_text_subset(
                train, labels_per_class, seed=draw_seed, num_classes=spec.num_classes
            )
        model = text_baselines.TfidfSVM().fit(*text_baselines.texts_and_labels(examples))
        scores.append(model.accuracy(*test))
        if i == 0:
            validation_accuracy = model.accuracy(*validation)
    return {
        "validation": validation_accuracy,
        "test": scores[0],
        "draws": scores,
        "seeds": seeds,
    }


def _baseline_rows(baselines):
    """The table rows of the TF-IDF baseline: the recipe's draw, then the spread over draws."""
    if "tfidf_svm" not in baselines:
        return []
    tfidf = baselines["tfidf_svm"]
    rows = [("tfidf_svm", tfidf["validation"], tfidf["test"])]
    seeds = tfidf["seeds"]
    if len(seeds) > 1:
        mean, sd = text_baselines.mean_and_sd(tfidf["draws"])
        rows.append(
            f"tfidf_svm over {len(seeds)} label draws (seeds {seeds[0]}-{seeds[-1]}): "
            f"test {mean:.3f} ± {sd:.3f}"
        )
    return rows


@dataclasses.dataclass
class _Schedule:
    """How `_train_with_early_stopping` trains (the recipes' shared arguments)."""

    preprocessor: MiniBERTPreprocessor
    strategy: tf.distribute.Strategy
    mixed_precision: str
    batch_size: int
    epochs: int
    steps_per_epoch: int
    patience: int
    seed: int
    verbose: int


def _train_with_early_stopping(build, examples, task, model_dir, name, config, schedule):
    """`training.train` on the labelled `examples` with early stopping.

    Epochs of `steps_per_epoch` batches (shuffled passes over `examples`,
    a pure function of `(seed, epoch)`); the validation accuracy after each
    epoch; early stopping on it, keeping the best weights (BERT's
    fine-tuning recipe). Checkpoints go to `model_dir/train/<name>` (an
    interrupted run resumes, on any strategy, `multi_worker` included) and
    TensorBoard logs to `model_dir/logs/<name>`. Returns `(model, best
    validation accuracy, epochs run, test accuracy)`.
    """
    strategy, batch_size = schedule.strategy, schedule.batch_size
    steps_per_epoch = schedule.steps_per_epoch
    passes = -(-steps_per_epoch * batch_size // data_lib.count_examples(examples))

    def dataset_fn(epoch, batch_size, seed):
        return data_lib.epoch_text_batches(
            examples, schedule.preprocessor, batch_size, seed, epoch, passes=passes
        )

    log_dir = os.path.join(model_dir, "logs", name)
    trained = training.train(
        build,
        dataset_fn,
        batch_size=batch_size,
        epochs=schedule.epochs,
        steps_per_epoch=steps_per_epoch,
        strategy=strategy,
        mixed_precision=schedule.mixed_precision,
        model_dir=os.path.join(model_dir, "train", name),
        callbacks=[keras.callbacks.TensorBoard(log_dir)] if distribute.is_chief(strategy) else [],
        seed=schedule.seed,
        validation_fn=training.classification_accuracy(task.validation),
        early_stopping=training.EarlyStopping(
            "val_accuracy", mode="max", patience=schedule.patience
        ),
        config=config,
        verbose=schedule.verbose,
    )
    history = trained.validation["val_accuracy"]
    return trained.model, float(max(history)), len(history), _accuracy(trained.model, task.test)


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
        lines = [f"{'encoder':<14}{'validation':>11}{'test':>8}{'epochs':>8}", "-" * 41]
        for name in ("pretrained", "from_scratch"):
            lines.append(
                f"{name:<14}{self.validation_accuracy[name]:>11.3f}"
                f"{self.accuracy[name]:>8.3f}{self.epochs[name]:>8d}"
            )
        for row in _baseline_rows(self.baselines):
            if isinstance(row, str):
                lines.append(row)
            else:
                name, validation, test = row
                lines.append(f"{name:<14}{validation:>11.3f}{test:>8.3f}{'-':>8}")
        return "\n".join(lines)


def finetune_minibert(
    pretrained,
    dataset="stdlib_docs",
    data_dir=None,
    strategy="auto",
    tpu=None,
    mixed_precision=None,
    model_dir="runs/finetune_minibert",
    labels_per_class=20,
    batch_size=16,
    epochs=20,
    steps_per_epoch=25,
    patience=5,
    learning_rate=1e-3,
    weight_decay=0.01,
    dropout=0.1,
    pooling="mean",
    seed=0,
    export=True,
    baseline_draws=5,
    verbose=1,
):
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
            path.
        dataset: str. A `keras_pt.data.TEXT_DATASETS` name (sentence-pair
            tasks work too). Splits: `finetune_splits(dataset)`.
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
            states: masked-LM pre-training trains no `[CLS]` pooler) or
            `"cls"`.
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
    _check_positive(
        labels_per_class=labels_per_class,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        patience=patience,
    )
    start = time.perf_counter()
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = distribute.get_strategy(strategy, tpu=tpu)
    tf.io.gfile.makedirs(model_dir)
    spec = data_lib.text_dataset_spec(dataset)
    if isinstance(pretrained, str) and not os.path.exists(pretrained):
        raise ValueError(
            f"no pre-trained MiniBERT at {pretrained!r}; run "
            "examples/pretrain_minibert.py first (it writes "
            f"<model_dir>/{MODEL_FILENAME}), or pass its path."
        )

    def load_pretrained():
        if isinstance(pretrained, str):
            return keras.saving.load_model(pretrained)
        return MiniBERT.from_config(pretrained.get_config())

    with strategy.scope():
        backbone = load_pretrained()
        if not isinstance(pretrained, str):
            backbone.set_weights(pretrained.get_weights())
    if backbone.preprocessor is None:
        raise ValueError(
            "the pre-trained MiniBERT has no preprocessor; pre-train it with "
            "preprocessor=MiniBERTPreprocessor(...) so its vocabulary is known."
        )
    preprocessor = backbone.preprocessor

    # The labelled subset, the validation and the test data
    task = _labelled_task(dataset, data_dir, preprocessor, labels_per_class, batch_size, seed)
    num_labels = task.num_labels
    baselines = {}
    if baseline_draws:
        baselines["tfidf_svm"] = tfidf_svm_baseline(
            dataset, data_dir, labels_per_class, seed, baseline_draws, labelled=task.labelled
        )
    config = {
        "recipe": "finetune_minibert",
        "pretrained": _weights_fingerprint(backbone),
        "dataset": dataset,
        "labels_per_class": labels_per_class,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "dropout": dropout,
        "pooling": pooling,
        "patience": patience,
    }

    schedule = _Schedule(
        preprocessor, strategy, mixed_precision, batch_size, epochs, steps_per_epoch,
        patience, seed, verbose,
    )

    # Fine-tune on the pre-trained and on a randomly initialised encoder
    accuracy, validation_accuracy, epochs_run, classifiers = {}, {}, {}, {}
    for name in ("pretrained", "from_scratch"):

        def build(name=name):  # in the strategy's scope
            if name == "pretrained":
                encoder_model = backbone
            else:
                keras.utils.set_random_seed(seed + 1)
                encoder_model = MiniBERT.from_config(backbone.get_config())
            keras.utils.set_random_seed(seed)  # the same head weights for both
            classifier = MiniBERTClassifier(
                encoder_model,  # holds the preprocessor, saved with it
                num_classes=spec.num_classes,
                dropout=dropout,
                seed=seed,
                pooling=pooling,
                name=f"classifier_{name}",
            )
            classifier.compile(
                optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
            )
            return classifier

        if verbose:
            print(f"Fine-tuning the {name} classifier on {num_labels} labels")
        (
            classifiers[name], validation_accuracy[name], epochs_run[name], accuracy[name]
        ) = _train_with_early_stopping(
            build, task.labelled, task, model_dir, name, dict(config, arm=name), schedule
        )

    # Save both classifiers; export the pre-trained one as a strings-in SavedModel
    files = {"logs": os.path.join(model_dir, "logs")}
    files["classifier"] = os.path.join(model_dir, CLASSIFIER_FILENAME)
    files["classifier_from_scratch"] = os.path.join(model_dir, SCRATCH_CLASSIFIER_FILENAME)
    if distribute.is_chief(strategy):
        classifiers["pretrained"].save(files["classifier"])
        classifiers["from_scratch"].save(files["classifier_from_scratch"])
    if export and distribute.is_chief(strategy):
        files["export"] = export_text_classifier(
            classifiers["pretrained"],
            os.path.join(model_dir, EXPORT_DIRNAME),
            sentence_pairs=spec.is_pair,
        )
    return FinetuneResult(
        accuracy=accuracy,
        validation_accuracy=validation_accuracy,
        epochs=epochs_run,
        num_labels=num_labels,
        seconds=time.perf_counter() - start,
        files=files,
        baselines=baselines,
    )


class _Serving(tf.Module):
    """The exported object: the endpoint and the variables it reads.

    Only the variables are tracked, not the Keras model: saving a tracked
    subclassed Keras model also traces its default signature, with float
    inputs (`Layer._default_save_signature`), which a model of token ids
    rejects.
    """

    def __init__(self, fn, input_signature, weights):
        super().__init__()
        self.model_variables = [getattr(w, "value", w) for w in weights]
        self.serve = tf.function(fn, input_signature=input_signature)


def export_text_classifier(classifier, path, preprocessor=None, sentence_pairs=False):
    """Exports a text classifier as a SavedModel that takes raw strings.

    The `serving_default` signature (also the object's `serve` function)
    takes `text`, a `tf.string` tensor of shape `(None,)` — or `text_a` and
    `text_b` for sentence pairs — and returns `{"probabilities": float32
    (batch, num_classes)}`. Tokenization and packing run inside the graph,
    so serving needs TensorFlow and tensorflow-text only:

        import tensorflow_text  # registers the tokenizer ops
        served = tf.saved_model.load(path)
        served.serve(tf.constant(["Return the logger."]))["probabilities"]

    Args:
        classifier: a `MiniBERTClassifier` (or any Keras model mapping the
            packed dict to logits).
        path: str. The SavedModel directory.
        preprocessor: the `MiniBERTPreprocessor`. Defaults to
            `classifier.preprocessor`, else its backbone's.
        sentence_pairs: bool. Take two strings per example.

    Returns:
        `path`.

    Raises:
        ValueError: if no preprocessor is given or found.
    """
    if preprocessor is None:
        preprocessor = getattr(classifier, "preprocessor", None)
    if preprocessor is None:  # a MiniBERTClassifier's backbone holds it
        preprocessor = getattr(getattr(classifier, "backbone", None), "preprocessor", None)
    if preprocessor is None:
        raise ValueError(
            "the classifier has no preprocessor; pass preprocessor=MiniBERTPreprocessor(...)."
        )

    def probabilities(texts):
        packed = preprocessor(texts)  # (batch, sequence_length) int32 each
        logits = classifier(packed, training=False)  # (batch, num_classes)
        return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    # Build every weight eagerly, outside the traced endpoint.
    example = tf.constant(["."])
    probabilities((example, example) if sentence_pairs else example)
    if sentence_pairs:
        signature = [
            tf.TensorSpec([None], tf.string, name="text_a"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ]

        def serve(text_a, text_b):
            return probabilities((text_a, text_b))

    else:
        signature = [tf.TensorSpec([None], tf.string, name="text")]
        serve = probabilities
    module = _Serving(serve, signature, classifier.weights)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


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
        lines = [
            f"{'model':<11}{'parameters':>11}{'validation':>11}{'test':>8}{'epochs':>8}",
            "-" * 49,
        ]
        for name in ("teacher", "distilled", "alone"):
            size = self.parameters["teacher" if name == "teacher" else "student"]
            epochs = f"{self.epochs[name]:>8d}" if name in self.epochs else f"{'-':>8}"
            lines.append(
                f"{name:<11}{size:>11,d}{self.validation_accuracy[name]:>11.3f}"
                f"{self.accuracy[name]:>8.3f}{epochs}"
            )
        for row in _baseline_rows(self.baselines):
            if isinstance(row, str):
                lines.append(row)
            else:
                name, validation, test = row
                lines.append(f"{name:<11}{'-':>11}{validation:>11.3f}{test:>8.3f}{'-':>8}")
        return "\n".join(lines)


def distill_minibert(
    teacher,
    dataset="stdlib_docs",
    data_dir=None,
    strategy="auto",
    tpu=None,
    mixed_precision=None,
    model_dir="runs/distill",
    labels_per_class=20,
    student_layers=1,
    student_hidden_dim=64,
    batch_size=32,
    epochs=20,
    steps_per_epoch=25,
    patience=5,
    learning_rate=1e-3,
    weight_decay=0.01,
    temperature=4.0,
    alpha=0.5,
    dropout=0.1,
    seed=0,
    baseline_draws=5,
    verbose=1,
):
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
      with its labels hidden (label `Distiller.UNLABELLED`), so each batch
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
            `.keras` path.
        dataset: str. A `keras_pt.data.TEXT_DATASETS` name, the teacher's.
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
        verbose: int. Keras verbosity (1: progress bars).

    Returns:
        A `DistillResult`.

    Raises:
        ValueError: for a missing teacher file, a teacher that is not a
            `MiniBERTClassifier` with a preprocessor, or bad sizes.
    """
    _check_positive(
        labels_per_class=labels_per_class,
        student_layers=student_layers,
        student_hidden_dim=student_hidden_dim,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        patience=patience,
    )
    start = time.perf_counter()
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = distribute.get_strategy(strategy, tpu=tpu)
    tf.io.gfile.makedirs(model_dir)
    spec = data_lib.text_dataset_spec(dataset)
    if isinstance(teacher, str) and not os.path.exists(teacher):
        raise ValueError(
            f"no teacher classifier at {teacher!r}; run examples/finetune_minibert.py "
            f"first (it writes <model_dir>/{CLASSIFIER_FILENAME}), or pass its path."
        )
    with strategy.scope():
        if isinstance(teacher, str):
            teacher = keras.saving.load_model(teacher)
    if not isinstance(teacher, MiniBERTClassifier) or teacher.backbone.preprocessor is None:
        raise ValueError(
            "the teacher must be a MiniBERTClassifier whose MiniBERT has a "
            f"preprocessor (as finetune_minibert saves it); got {type(teacher).__name__}."
        )
    if teacher.num_classes != spec.num_classes:
        raise ValueError(
            f"the teacher predicts {teacher.num_classes} classes but {dataset!r} has "
            f"{spec.num_classes}; distil on the data set the teacher was fine-tuned on."
        )
    preprocessor = teacher.backbone.preprocessor

    # Labelled examples, the transfer set, validation and test data
    task = _labelled_task(dataset, data_dir, preprocessor, labels_per_class, batch_size, seed)
    labelled, num_labels = task.labelled, task.num_labels
    baselines = {}
    if baseline_draws:
        baselines["tfidf_svm"] = tfidf_svm_baseline(
            dataset, data_dir, labels_per_class, seed, baseline_draws, labelled=labelled
        )
    # The training split with its labels hidden: text of the task's classes.
    # (stdlib_docs' other pre-training text, docstrings of other modules,
    # would teach the student the teacher's guesses on out-of-task text.)
    unlabelled = data_lib.load_text_dataset(dataset, task.train_split, data_dir).map(
        lambda x, y: (x, tf.constant(Distiller.UNLABELLED, tf.int32))
    )
    transfer = labelled.concatenate(unlabelled).cache()
    num_transfer = data_lib.count_examples(transfer)

    def student():
        keras.utils.set_random_seed(seed + 2)  # the same initial student twice
        backbone = MiniBERT(
            preprocessor=preprocessor,
            num_layers=student_layers,
            hidden_dim=student_hidden_dim,
            num_heads=max(1, student_hidden_dim // 64),
            intermediate_dim=4 * student_hidden_dim,
            max_sequence_length=preprocessor.sequence_length,
            dropout=dropout,
            seed=seed,
        )
        return MiniBERTClassifier(
            backbone,
            num_classes=spec.num_classes,
            dropout=dropout,
            seed=seed,
            pooling="mean",
            name="student",
        )

    def optimizer():
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)

    # The teacher's accuracy
    accuracy = {"teacher": _accuracy(teacher, task.test)}
    validation_accuracy = {"teacher": _accuracy(teacher, task.validation)}

    # The student alone, then distilled
    config = {
        "recipe": "distill_minibert",
        "teacher": _weights_fingerprint(teacher),
        "dataset": dataset,
        "labels_per_class": labels_per_class,
        "student_layers": student_layers,
        "student_hidden_dim": student_hidden_dim,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "temperature": temperature,
        "alpha": alpha,
        "dropout": dropout,
        "patience": patience,
    }
    schedule = _Schedule(
        preprocessor, strategy, mixed_precision, batch_size, epochs, steps_per_epoch,
        patience, seed, verbose,
    )
    runs = {"alone": labelled, "distilled": transfer}
    epochs_run, models = {}, {}
    for name, examples in runs.items():

        def build(name=name):  # in the strategy's scope
            model = student()
            if name == "distilled":
                model = Distiller(teacher, model, temperature=temperature, alpha=alpha)
            model.compile(optimizer=optimizer())
            return model

        if verbose:
            what = (
                f"{num_transfer} transfer examples" if name == "distilled"
                else f"{num_labels} labels"
            )
            print(f"Training the student {name} on {what}")
        (
            models[name], validation_accuracy[name], epochs_run[name], accuracy[name]
        ) = _train_with_early_stopping(
            build, examples, task, model_dir, name, dict(config, arm=name), schedule
        )

    files = {
        "student": os.path.join(model_dir, STUDENT_FILENAME),
        "logs": os.path.join(model_dir, "logs"),
    }
    distilled_student = models["distilled"].student
    if distribute.is_chief(strategy):
        distilled_student.save(files["student"])
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
