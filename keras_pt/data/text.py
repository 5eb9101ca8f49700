"""Text data as `tf.data` pipelines for MiniBERT pre-training and fine-tuning.

`load_text_dataset` reads a TFDS text classification data set as
`(text, label)` or `((text_a, text_b), label)` pairs: the embedded
`stdlib_docs` and `debian_packages` (offline), or `imdb_reviews`, `glue/sst2`, `glue/mrpc`,
`glue/qqp` where they can be downloaded or are already in `data_dir`.
`load_pretraining_texts` gives the unlabelled text view for pre-training.
`preprocess_text_dataset` maps a `MiniBERTPreprocessor` over a data set on
the host and batches it with static shapes; `labeled_text_subset` keeps a
few labels per class for limited-label fine-tuning.

Example:

>>> from keras_pt import data
>>> from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer
>>> texts = data.load_pretraining_texts("stdlib_docs")  # doctest: +SKIP
>>> tokenizer = WordPieceTokenizer(data.learn_vocabulary(texts, 4096))  # doctest: +SKIP
>>> preprocessor = MiniBERTPreprocessor(tokenizer, sequence_length=128)  # doctest: +SKIP
>>> train = data.load_text_dataset("stdlib_docs", "train")  # doctest: +SKIP
>>> batches = data.preprocess_text_dataset(train, preprocessor, 32, shuffle_seed=0)  # doctest: +SKIP
"""

import dataclasses
import os
import re

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pt.data import debian_packages as _debian_packages
from keras_pt.data import stdlib_docs as _stdlib_docs
from keras_pt.data.batching import batch
from keras_pt.data.images import check_labels
from keras_pt.data.tfds_prepare import download_and_prepare
from keras_pt.utils.text_inputs import is_text
from keras_pt.data.epochs import epoch_batches


@dataclasses.dataclass(frozen=True)
class TextDatasetSpec:
    """How a TFDS text classification data set maps to keras_pt's inputs.

    Attributes:
        name: str. The TFDS name.
        text_features: tuple of str. One feature (single texts) or two
            (sentence pairs).
        num_classes: int.
        labeled_splits: tuple of str. Splits with labels (GLUE's `test` and
            the `unsupervised` splits have label -1).
        pretraining_split: str. The split of `load_pretraining_texts`: the
            text that holds no validation or test example.
        embedded: bool. Built locally from installed data (always prepared).
        pair_features: tuple of two str, or None. Two features that say the
            same thing in different words (`debian_packages`: a package's
            description and its debtags as words), the sentence-embedding
            pairs of `keras_pt.data.load_sentence_pairs`. None (the
            default): pairs are each text's first sentence and remainder.
    """

    name: str
    text_features: tuple
    num_classes: int
    labeled_splits: tuple
    pretraining_split: str
    embedded: bool = False
    pair_features: tuple = None

    @property
    def is_pair(self):
        return len(self.text_features) == 2


TEXT_DATASETS = {
    spec.name: spec
    for spec in (
        TextDatasetSpec(
            "stdlib_docs",
            ("text",),
            _stdlib_docs.NUM_CLASSES,
            ("train", "validation", "test"),
            "train+unsupervised",
            embedded=True,
        ),
        TextDatasetSpec(
            "debian_packages",
            ("text",),
            _debian_packages.NUM_CLASSES,
            ("train", "validation", "test"),
            "train+unsupervised",
            embedded=True,
            pair_features=("text", "tag_text"),
        ),
        TextDatasetSpec("imdb_reviews", ("text",), 2, ("train", "test"), "train+unsupervised"),
        TextDatasetSpec("glue/sst2", ("sentence",), 2, ("train", "validation"), "train"),
        TextDatasetSpec("glue/mrpc", ("sentence1", "sentence2"), 2, ("train", "validation"), "train"),
        TextDatasetSpec("glue/qqp", ("question1", "question2"), 2, ("train", "validation"), "train"),
    )
}


LOCAL_SPLITS = ("train", "validation", "test")


def is_local_source(name):
    """True for a path (or list) that `keras_pt.data.load_texts` reads,
    rather than a TFDS name."""
    from keras_pt.data.text_sources import TextData

    if isinstance(name, (list, tuple, TextData)):
        return True
    if not isinstance(name, (str, os.PathLike)):
        return False
    name = os.fspath(name)
    return os.path.exists(name) or name.startswith((".", "/", "~")) or name.endswith((".txt", ".csv", ".jsonl"))


_local_cache = {}


def local_text_data(source):
    """The `TextData` of a local source, read once per process (and again
    when the file changes)."""
    from keras_pt.data.text_sources import TextData, load_texts

    if isinstance(source, TextData):
        return source
    if isinstance(source, (list, tuple)):
        return load_texts(source)
    path = os.path.abspath(os.fspath(source))
    stamp = os.path.getmtime(path) if os.path.exists(path) else None
    key = (path, stamp)
    if key not in _local_cache:
        _local_cache[key] = load_texts(os.fspath(source))
    return _local_cache[key]


def _local_spec(source):
    data = local_text_data(source)
    splits = tuple(s for s in LOCAL_SPLITS if getattr(data, s) is not None)
    if data.heldout is not None and "test" not in splits:
        splits += ("heldout",)
    return TextDatasetSpec(
        name=os.fspath(source) if isinstance(source, (str, os.PathLike)) else data.name,
        text_features=("text_a", "text_b") if data.is_pair else ("text",),
        num_classes=data.num_classes,
        labeled_splits=splits,
        pretraining_split="pretraining",
        embedded=True,
    )


def text_dataset_spec(name):
    """The `TextDatasetSpec` of a known text data set name or a local source.

    Local sources (files and folders that `keras_pt.data.load_texts` reads)
    have the splits `train`, `validation`, `test` (seeded, stratified) and
    the pre-training split `pretraining`; unlabelled text has `heldout`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if is_local_source(name):
        return _local_spec(name)
    try:
        return TEXT_DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown text data set {name!r}; known: {', '.join(TEXT_DATASETS)} "
            "(stdlib_docs and debian_packages are embedded and work offline)."
        ) from None


def _base_splits(split):
    """`"train[:80%]+unsupervised"` -> `["train", "unsupervised"]`."""
    return [re.sub(r"\[.*\]$", "", part.strip()) for part in split.split("+")]


def _check_not_empty(dataset, what):
    n = int(dataset.cardinality())
    if n == 0 or (n == tf.data.UNKNOWN_CARDINALITY and not any(True for _ in dataset.take(1))):
        raise ValueError(f"{what} is empty: there is nothing to train or evaluate on.")


def _as_dataset(spec, split, data_dir, download, shuffle_files=False):
    builder = tfds.builder(spec.name, data_dir=data_dir)
    if download or spec.embedded:
        builder = download_and_prepare(builder, spec.name, data_dir)
    try:
        return builder.as_dataset(split=split, shuffle_files=shuffle_files)
    except ValueError as error:  # e.g. "Instruction ... corresponds to no data!"
        raise ValueError(
            f"split {split!r} of data set {spec.name!r} is empty or invalid ({error}); "
            f"its splits are {sorted(builder.info.splits.keys())}."
        ) from error


def load_text_dataset(name, split, data_dir=None, download=True, shuffle_files=False):
    """Loads a labelled split of a TFDS text classification data set.

    Args:
        name: str. One of `TEXT_DATASETS`: `"stdlib_docs"` or
            `"debian_packages"` (embedded, offline), `"imdb_reviews"`, `"glue/sst2"`, or the sentence-pair
            tasks `"glue/mrpc"` and `"glue/qqp"`.
        split: str. A TFDS split of labelled splits, slicing and `+` allowed
            (`"train"`, `"validation"`, `"train[:80%]"`).
        data_dir: str or None. TFDS data directory (a `gs://` path works).
            Defaults to TFDS's default (`~/tensorflow_datasets`).
        download: bool. Whether TFDS may download and prepare the data.
            Embedded data sets are always prepared locally. Defaults to True.
        shuffle_files: bool. Passed to TFDS. Defaults to False.

    Returns:
        An unbatched `tf.data.Dataset` of `(text, label)` (single texts) or
        `((text_a, text_b), label)` (pairs): scalar strings and int32 labels.

    Raises:
        ValueError: for an unknown name, a split without labels, or an empty
            split.
    """
    spec = text_dataset_spec(name)
    if is_local_source(name):
        return _local_split(name, split, labelled=True)
    unlabeled = [s for s in _base_splits(split) if s not in spec.labeled_splits]
    if unlabeled:
        raise ValueError(
            f"split {split!r} of {name!r} includes {unlabeled}, which has no "
            f"labels; the labelled splits are {list(spec.labeled_splits)}. Use "
            "load_pretraining_texts for unlabelled text."
        )
    ds = _as_dataset(spec, split, data_dir, download, shuffle_files)
    features = spec.text_features

    if spec.is_pair:

        def select(example):
            texts = (example[features[0]], example[features[1]])
            return texts, tf.cast(example["label"], tf.int32)

    else:

        def select(example):
            return example[features[0]], tf.cast(example["label"], tf.int32)

    ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    _check_not_empty(ds, f"split {split!r} of data set {name!r}")
    return ds


def _local_split(source, split, labelled):
    """A split of a local source: labelled `(text, label)` pairs, or texts."""
    data = local_text_data(source)
    if split in ("pretraining", "heldout") or not labelled:
        if split == "pretraining":
            return data.pretraining
        if split == "heldout":
            if data.heldout is None:
                raise ValueError(f"{source!r} has too little text to hold any out.")
            return data.heldout
        dataset = _local_split(source, split, labelled=True)
        if data.is_pair:
            return dataset.flat_map(lambda x, y: tf.data.Dataset.from_tensor_slices(tf.stack(x)))
        return dataset.map(lambda x, y: x)
    if data.train is None:
        raise ValueError(
            f"{source!r} has no labels; classification needs a label column "
            "(label_column, --label_column) or one folder per class. Unlabelled text "
            "serves pre-training."
        )
    if split not in LOCAL_SPLITS or getattr(data, split) is None:
        available = [s for s in LOCAL_SPLITS if getattr(data, s) is not None]
        raise ValueError(f"{source!r} has no split {split!r}; its splits are {available}.")
    return getattr(data, split)


def load_pretraining_texts(name="stdlib_docs", split=None, data_dir=None, download=True):
    """The unlabelled text view of a data set, for pre-training.

    Args:
        name: str. One of `TEXT_DATASETS`. Defaults to `"stdlib_docs"`.
        split: str or None. Defaults to the data set's `pretraining_split`,
            which holds no validation or test text (for `stdlib_docs`:
            `"train+unsupervised"`, the labelled training docstrings plus the
            other modules' docstrings and the language reference).
        data_dir: str or None. TFDS data directory.
        download: bool. Whether TFDS may download and prepare the data.

    Returns:
        An unbatched `tf.data.Dataset` of scalar strings; sentence pairs give
        both sentences, one after the other.

    Raises:
        ValueError: for an unknown name or an empty split.
    """
    spec = text_dataset_spec(name)
    split = split or spec.pretraining_split
    if is_local_source(name):
        return _local_split(name, split, labelled=False)
    ds = _as_dataset(spec, split, data_dir, download)
    features = spec.text_features
    if spec.is_pair:
        ds = ds.flat_map(lambda ex: tf.data.Dataset.from_tensor_slices(tf.stack([ex[f] for f in features])))
    else:
        ds = ds.map(lambda ex: ex[features[0]], num_parallel_calls=tf.data.AUTOTUNE)
    _check_not_empty(ds, f"split {split!r} of data set {name!r}")
    return ds


def load_feature_pairs(name, split, data_dir=None, download=True):
    """The `pair_features` of a data set's split as `(text_a, text_b)` pairs.

    Examples where either feature is empty (a `debian_packages` package
    without debtags) are skipped.

    Args:
        name: str. One of `TEXT_DATASETS` whose spec has `pair_features`.
        split: str. Any split, labelled or not, slicing and `+` allowed.
        data_dir: str or None. TFDS data directory.
        download: bool. Whether TFDS may download and prepare the data.

    Returns:
        An unbatched `tf.data.Dataset` of `(text_a, text_b)` scalar strings.

    Raises:
        ValueError: for an unknown name, a data set without
            `pair_features`, or a split with no pair.
    """
    spec = text_dataset_spec(name)
    if spec.pair_features is None:
        with_pairs = [s.name for s in TEXT_DATASETS.values() if s.pair_features]
        raise ValueError(
            f"{name!r} has no paired features; the data sets with them are "
            f"{', '.join(with_pairs)}. Use keras_pt.data.sentence_pairs for "
            "(first sentence, remainder) pairs of any text."
        )
    first, second = spec.pair_features
    ds = _as_dataset(spec, split, data_dir, download)
    ds = ds.map(lambda ex: (ex[first], ex[second]), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda a, b: tf.logical_and(tf.strings.length(a) > 0, tf.strings.length(b) > 0))
    _check_not_empty(ds, f"the ({first}, {second}) pairs of split {split!r} of data set {name!r}")
    return ds


def _packer(element_spec, preprocessor):
    """A function mapping a batched element to the preprocessed element."""
    if isinstance(element_spec, tuple) and len(element_spec) == 2:
        x, y = element_spec
        if not isinstance(x, tuple) and not isinstance(y, tuple) and is_text(x) and is_text(y):
            # (text_a, text_b)
            return lambda a, b: preprocessor((a, b))
        if is_text(x):  # (text or (text_a, text_b), label)
            return lambda x, y: (preprocessor(tuple(x) if isinstance(x, tuple) else x), y)
    elif is_text(element_spec):
        return preprocessor
    raise ValueError(
        "preprocess_text_dataset takes a data set of texts, (text, label), "
        f"(text_a, text_b) or ((text_a, text_b), label); got {element_spec}."
    )


def epoch_text_batches(dataset, preprocessor, batch_size, seed, epoch, passes=1):
    """One epoch of a text data set for `keras_pt.training.train`, packed.

    `keras_pt.data.epoch_batches` (the `(seed, epoch)` shuffle, static
    batches, `passes` shuffled passes per epoch), then the preprocessor on
    each batch on the host, as in `preprocess_text_dataset`.

    Args:
        dataset: unbatched `tf.data.Dataset` of texts, `(text, label)`,
            `(text_a, text_b)` or `((text_a, text_b), label)`.
        preprocessor: the layer that packs a batch of strings (or pairs).
        batch_size: int. The global batch size.
        seed: int. Seed of the run.
        epoch: int. Epoch number (0-based).
        passes: int. Shuffled passes over `dataset` in the epoch.

    Returns:
        A batched, packed, prefetched `tf.data.Dataset`.
    """
    pack = _packer(dataset.element_spec, preprocessor)
    batches = epoch_batches(dataset, batch_size, seed, epoch, passes=passes)
    return batches.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def preprocess_text_dataset(
    dataset,
    preprocessor,
    batch_size,
    shuffle_seed=None,
    repeat=False,
    shuffle_buffer_size=None,
):
    """Shuffles, batches (static shapes), packs with a preprocessor, prefetches.

    The preprocessor (a `keras_pt.layers.MiniBERTPreprocessor`) runs in the
    `tf.data` pipeline on the host, on whole batches, so the model's
    training step sees only int32 tensors of shape `(batch_size,
    sequence_length)`.

    Args:
        dataset: unbatched `tf.data.Dataset` of texts (pre-training: yields
            the packed dict), or `(text, label)` / `((text_a, text_b), label)`
            (classification: yields `(packed dict, label)`).
        preprocessor: the layer that packs a batch of strings (or a pair of
            batches).
        batch_size: int. The global batch size.
        shuffle_seed: int or None. Shuffle with this seed each epoch (the
            same order for the same seed). Defaults to None (no shuffle).
        repeat: bool. Repeat forever. Defaults to False.
        shuffle_buffer_size: int or None. Defaults to the data set size
            (10,000 when unknown).

    Raises:
        ValueError: if the data set is empty or smaller than one batch, or
            its elements are not texts.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    pack = _packer(dataset.element_spec, preprocessor)
    return batch(
        dataset,
        batch_size,
        shuffle_seed=shuffle_seed,
        repeat=repeat,
        shuffle_buffer_size=shuffle_buffer_size,
        map_fn=pack,
    )


def labeled_text_subset(dataset, labels_per_class, seed=0, num_classes=None, at_most=False):
    """The first `labels_per_class` examples of each class after a seeded shuffle.

    Deterministic given `seed`. Reads the labels alone first, so that a
    class with too few examples is refused before any text is collected,
    then keeps only the chosen texts in memory, which suits the few labels
    of limited-label fine-tuning on a large corpus.

    Args:
        dataset: unbatched `tf.data.Dataset` of `(text, label)` or
            `((text_a, text_b), label)`.
        labels_per_class: int. Examples to keep for each class.
        seed: int. Seed of the shuffle. Defaults to 0.
        num_classes: int or None. Labels must lie in `[0, num_classes)`.
            Defaults to the labels seen.
        at_most: bool. If True, a class with fewer than `labels_per_class`
            examples contributes all of them instead of being refused.
            Defaults to False.

    Returns:
        A `tf.data.Dataset` with the same structure, `num_classes *
        labels_per_class` examples (fewer with `at_most=True`) in shuffled
        order.

    Raises:
        ValueError: if a class has fewer than `labels_per_class` examples
            (and `at_most` is False), a label is out of range, or the data
            set is empty.
    """
    if labels_per_class <= 0:
        raise ValueError(f"labels_per_class must be positive, got {labels_per_class}.")
    label_batches = dataset.map(lambda x, y: y).batch(4096).as_numpy_iterator()
    labels = np.concatenate([np.reshape(b, [-1]) for b in label_batches] or [np.zeros([0])])
    if not len(labels):
        raise ValueError("the data set is empty: there is nothing to take labels from.")
    labels = labels.astype(np.int32)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    check_labels(labels, num_classes)
    order = np.random.RandomState(seed).permutation(len(labels))
    chosen = np.zeros(len(labels), dtype=bool)
    for c in range(num_classes):
        members = order[labels[order] == c][:labels_per_class]
        if len(members) < labels_per_class and not at_most:
            raise ValueError(
                f"class {c} has only {len(members)} examples, fewer than "
                f"labels_per_class={labels_per_class}; lower labels_per_class, "
                "or pass at_most=True to take all of a smaller class."
            )
        chosen[members] = True
    keep = order[chosen[order]]  # the chosen examples, in shuffled order

    # Read only the chosen texts (in data set order), then put them in `keep` order.
    mask = tf.constant(chosen)
    picked = dataset.enumerate().filter(lambda i, example: tf.gather(mask, i))
    inputs = [x for _, (x, _) in picked.as_numpy_iterator()]
    position = {index: k for k, index in enumerate(np.flatnonzero(chosen))}

    def column(values):
        return np.array([values[position[i]] for i in keep], dtype=object)

    if isinstance(inputs[0], tuple):
        x = tuple(column([pair[j] for pair in inputs]) for j in range(len(inputs[0])))
    else:
        x = column(inputs)
    return tf.data.Dataset.from_tensor_slices((x, labels[keep]))
