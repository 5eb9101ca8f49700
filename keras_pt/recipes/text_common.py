"""What the text recipes share: splits, labelled tasks, vocabularies,
baselines and early-stopped fine-tuning."""

import dataclasses

import tensorflow as tf

from keras_pt import data as data_lib
from keras_pt import training
from keras_pt.evaluation import text_baselines
from keras_pt.layers.mini_bert_preprocessor import MiniBERTPreprocessor
from keras_pt.layers.wordpiece_tokenizer import WordPieceTokenizer
from keras_pt.recipes.context import RunConfig

VOCABULARY_FILENAME = "vocabulary.txt"


@dataclasses.dataclass
class TextClassifierConfig(RunConfig):
    """The settings of the recipes that train text classifiers on a few
    labels per class with early stopping (`finetune_minibert`,
    `distill_minibert`), beside the TF-IDF baseline over
    `baseline_draws` label draws."""

    dataset: object = "stdlib_docs"
    labels_per_class: int = 20
    epochs: int = 20
    steps_per_epoch: int = 25
    patience: int = 5
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    dropout: float = 0.1
    baseline_draws: int = 5

    def check_sizes(self, **sizes):
        """Refuses a non-positive training size (these and `sizes`)."""
        check_positive(
            labels_per_class=self.labels_per_class,
            batch_size=self.batch_size,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            patience=self.patience,
            **sizes,
        )


@dataclasses.dataclass
class SmallTextModelConfig(RunConfig):
    """The settings of the recipes that build a small text model with a
    vocabulary learned from the data set (`pretrain_minigpt`,
    `train_sentence_embeddings`): its size, vocabulary, sequence length,
    steps, learning rate and dropout."""

    dataset: object = "stdlib_docs"
    preset: str = "tiny"
    hidden_dim: object = None
    num_layers: object = None
    vocabulary: object = None
    vocabulary_size: int = 2000
    vocabulary_texts: object = None
    sequence_length: int = 64
    steps: int = 300
    learning_rate: float = 1e-3
    dropout: float = 0.1
    verbose: int = 0


def check_positive(**values):
    """Raises a ValueError naming the first value below 1."""
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive int; got {value}.")


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


def texts_of(dataset):
    """The strings of a labelled data set (both texts of a pair)."""
    return data_lib.texts_only(dataset.map(lambda x, y: x))


def packed(dataset, preprocessor, batch_size):
    """Every example, packed, in batches (the last one may be smaller)."""
    return dataset.batch(batch_size).map(lambda x, y: (preprocessor(x), y), num_parallel_calls=tf.data.AUTOTUNE)


@dataclasses.dataclass
class LabelledTask:
    """The few-label training examples and the packed evaluation data."""

    train_split: str
    labelled: tf.data.Dataset  # unbatched (text, label), cached
    num_labels: int
    validation: tf.data.Dataset  # packed batches, cached
    test: tf.data.Dataset  # packed batches


def labelled_task(dataset, data_dir, preprocessor, labels_per_class, batch_size, seed):
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
    return LabelledTask(
        train_split=train_split,
        labelled=labelled.cache(),
        num_labels=num_labels,
        validation=packed(data_lib.load_text_dataset(dataset, validation_split, data_dir), preprocessor, 64).cache(),
        test=packed(data_lib.load_text_dataset(dataset, test_split, data_dir), preprocessor, 64),
    )


def accuracy(model, packed):
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
    check_positive(labels_per_class=labels_per_class, draws=draws)
    spec = data_lib.text_dataset_spec(dataset)
    train_split, validation_split, test_split = finetune_splits(dataset)
    train = data_lib.load_text_dataset(dataset, train_split, data_dir)
    validation = text_baselines.texts_and_labels(data_lib.load_text_dataset(dataset, validation_split, data_dir))
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


def accuracy_table(label, names, result, parameters=None):
    """The text table of a classifier recipe's result.

    One row per model in `names` (validation and test accuracy from
    `result.validation_accuracy` and `result.accuracy`, epochs from
    `result.epochs` where trained), then the TF-IDF baseline of
    `result.baselines` on the recipe's draw and its spread over draws.
    `parameters` (a function of a model name giving its parameter count)
    adds a parameters column.
    """
    width = max(len(label), len("tfidf_svm"), *(len(name) for name in names)) + 2
    sizes = parameters is not None

    def row(name, validation, test, epochs=None, size=None):
        size = (f"{size:>11,d}" if size is not None else f"{'-':>11}") if sizes else ""
        epochs = f"{epochs:>8d}" if epochs is not None else f"{'-':>8}"
        return f"{name:<{width}}{size}{validation:>11.3f}{test:>8.3f}{epochs}"

    size_header = f"{'parameters':>11}" if sizes else ""
    header = f"{label:<{width}}{size_header}{'validation':>11}{'test':>8}{'epochs':>8}"
    lines = [header, "-" * len(header)]
    for name in names:
        size = parameters(name) if sizes else None
        lines.append(row(name, result.validation_accuracy[name], result.accuracy[name], result.epochs.get(name), size))
    tfidf = result.baselines.get("tfidf_svm")
    if tfidf is not None:
        lines.append(row("tfidf_svm", tfidf["validation"], tfidf["test"]))
        seeds = tfidf["seeds"]
        if len(seeds) > 1:
            mean, sd = text_baselines.mean_and_sd(tfidf["draws"])
            lines.append(
                f"tfidf_svm over {len(seeds)} label draws (seeds {seeds[0]}-{seeds[-1]}): test {mean:.3f} ± {sd:.3f}"
            )
    return "\n".join(lines)


@dataclasses.dataclass
class Schedule:
    """How `train_with_early_stopping` trains (the recipes' shared arguments)."""

    preprocessor: MiniBERTPreprocessor
    batch_size: int
    epochs: int
    steps_per_epoch: int
    patience: int


def train_with_early_stopping(ctx, build, examples, task, name, schedule, inputs=None):
    """`ctx.train` on the labelled `examples` with early stopping.

    Epochs of `steps_per_epoch` batches (shuffled passes over `examples`,
    a pure function of `(seed, epoch)`); the validation accuracy after each
    epoch; early stopping on it, keeping the best weights (BERT's
    fine-tuning recipe). Checkpoints go to `<model_dir>/train/<name>` (an
    interrupted run resumes, on any strategy, `multi_worker` included),
    recording the fingerprints of `inputs`, and TensorBoard logs to
    `logs/train/<name>`. Returns `(model, best validation accuracy, epochs
    run, test accuracy)`.
    """
    passes = -(-schedule.steps_per_epoch * schedule.batch_size // data_lib.count_examples(examples))

    def dataset_fn(epoch, batch_size, seed):
        return data_lib.epoch_text_batches(examples, schedule.preprocessor, batch_size, seed, epoch, passes=passes)

    trained = ctx.train(
        f"train/{name}",
        build,
        dataset_fn,
        inputs=inputs,
        batch_size=schedule.batch_size,
        epochs=schedule.epochs,
        steps_per_epoch=schedule.steps_per_epoch,
        scale_batch_size=ctx.scale_batch_size,
        scale_learning_rate=ctx.scale_batch_size,
        checkpoint_every=ctx.checkpoint_every,
        validation_fn=training.classification_accuracy(task.validation),
        early_stopping=training.EarlyStopping("val_accuracy", mode="max", patience=schedule.patience),
    )
    history = trained.validation["val_accuracy"]
    return trained.model, float(max(history)), len(history), accuracy(trained.model, task.test)


def heldout_split(name):
    """The held-out split of a text data set: `test` if it has labels, else the last labelled split."""
    spec = data_lib.text_dataset_spec(name)
    return "test" if "test" in spec.labeled_splits else spec.labeled_splits[-1]


def resolve_vocabulary(texts, vocabulary, vocabulary_size, vocabulary_texts=None):
    """The vocabulary to use: `vocabulary` (a list, or a file with one token
    per line) read and checked, or one learned from `texts`."""
    if vocabulary is None:
        return data_lib.learn_vocabulary(texts, vocabulary_size, max_texts=vocabulary_texts)
    if isinstance(vocabulary, str) and not tf.io.gfile.exists(vocabulary):
        raise ValueError(
            f"vocabulary file {vocabulary!r} does not exist; pass a file with one "
            "token per line (e.g. the vocabulary.txt of an earlier run), or leave "
            "it unset to learn a vocabulary."
        )
    return WordPieceTokenizer(vocabulary).get_vocabulary()  # read and checked


def build_preprocessor(dataset, data_dir, vocabulary, vocabulary_size, vocabulary_texts, sequence_length):
    """The pre-training texts and a `MiniBERTPreprocessor` over their vocabulary."""
    texts = data_lib.load_pretraining_texts(dataset, data_dir=data_dir)
    vocabulary = resolve_vocabulary(texts, vocabulary, vocabulary_size, vocabulary_texts)
    preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), sequence_length)
    return texts, preprocessor


def write_vocabulary(ctx, preprocessor):
    """Writes `vocabulary.txt` (one token per line) in the model folder (chief only)."""
    tokens = preprocessor.tokenizer.get_vocabulary()
    return ctx.write_text(ctx.path(VOCABULARY_FILENAME), "\n".join(tokens) + "\n")


def model_shape(hidden_dim, num_layers, dropout, sequence_length):
    shape = {"max_sequence_length": sequence_length, "dropout": dropout}
    if hidden_dim is not None:
        shape.update(hidden_dim=hidden_dim, num_heads=max(1, hidden_dim // 64), intermediate_dim=4 * hidden_dim)
    if num_layers is not None:
        shape["num_layers"] = num_layers
    return shape


def text_batches(dataset, pack):
    """A `keras_pt.training.train` data set function: the `(seed, epoch)`
    shuffle of an unbatched text data set, batched and packed on the host."""

    def dataset_fn(epoch, batch_size, seed):
        batches = data_lib.epoch_batches(dataset, batch_size, seed, epoch)
        return batches.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def steps_per_epoch(dataset, batch_size):
    """Full batches in one pass (filtered data sets have no known length)."""
    n = data_lib.count_examples(dataset)
    if n < batch_size:
        raise ValueError(f"the data set has {n} examples, fewer than batch_size={batch_size}; lower the batch size.")
    return n // batch_size
