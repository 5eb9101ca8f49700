"""Text data from what users have on disk or in memory.

`load_texts(source)` reads:
- a `.txt` file: one example per line, unlabelled (pre-training text);
- a `.jsonl` or `.csv` file with a text column (or two, for sentence
  pairs) and, optionally, a label column (class ids or class names);
- a folder with one sub-folder of `.txt` files per class (each file one
  example; a folder `unlabeled/` beside them holds pre-training text);
- in memory: a list of strings (unlabelled), `(texts, labels)`, or
  `((texts_a, texts_b), labels)` for sentence pairs.

Every source gives a `TextData`: `(text, label)` (or `((a, b), label)`)
train, validation and test `tf.data` sets from a seeded, stratified split,
and the unlabelled texts for pre-training (every text of the training
split plus any unlabelled ones).
"""

import csv
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from keras_pt.data.images import check_labels

UNLABELED_FOLDER = "unlabeled"


@dataclasses.dataclass
class TextData:
    """Labelled splits and pre-training text of a text data set.

    Attributes:
        name: str.
        train, validation, test: unbatched `tf.data.Dataset`s of
            `(text, label)` (or `((text_a, text_b), label)`), or None when
            the source has no labels.
        pretraining: unbatched `tf.data.Dataset` of strings: the training
            split's texts (both sides of pairs) and the unlabelled ones.
        heldout: unbatched `tf.data.Dataset` of strings held out of
            pre-training, for perplexity and retrieval: the test split's
            texts, or for unlabelled text a seeded `test_fraction` of it.
        num_classes: int (0 without labels).
        class_names: list of str or None.
        is_pair: bool. Examples are sentence pairs.
    """

    name: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    pretraining: tf.data.Dataset
    num_classes: int
    class_names: list = None
    is_pair: bool = False
    heldout: tf.data.Dataset = None

    def __str__(self):
        return self.name


def _as_texts(values, what):
    texts = [v if isinstance(v, str) else (v.decode("utf-8") if isinstance(v, bytes) else None) for v in values]
    if any(t is None for t in texts):
        bad = next(type(v).__name__ for v in values if not isinstance(v, (str, bytes)))
        raise ValueError(f"{what} must be strings; found a {bad}.")
    return texts


def _label_ids(labels, what):
    """Integer ids and class names (for string labels, sorted names)."""
    if len(labels) and all(isinstance(v, str) for v in labels):
        names = sorted(set(labels))
        index = {name: i for i, name in enumerate(names)}
        return np.asarray([index[v] for v in labels], np.int32), names
    try:
        ids = np.asarray(labels)
        if ids.dtype.kind == "f" and np.all(ids == np.round(ids)):
            ids = ids.astype(np.int64)
        if ids.dtype.kind not in "iu":
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be class ids (integers) or class names (strings).") from None
    return ids.astype(np.int32), None


def _stratified(labels, fractions, seed):
    """Index arrays for (train, validation, test) per class."""
    rng = np.random.RandomState(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = len(members)
        n_val = int(round(fractions[0] * n)) if n > 2 else 0
        n_test = int(round(fractions[1] * n)) if n > 1 else 0
        parts[1].extend(members[:n_val])
        parts[2].extend(members[n_val : n_val + n_test])
        parts[0].extend(members[n_val + n_test :])
    return [np.sort(np.asarray(p, int)) for p in parts]


def text_data_from_lists(
    texts,
    labels=None,
    unlabeled=None,
    validation_fraction=0.1,
    test_fraction=0.2,
    seed=0,
    name="texts",
    class_names=None,
):
    """`TextData` from Python lists.

    Args:
        texts: list of str, or a pair `(texts_a, texts_b)` of lists.
        labels: class ids or class names, one per example, or None
            (unlabelled text, for pre-training only).
        unlabeled: list of str or None. Extra pre-training text.
        validation_fraction, test_fraction: held out per class, seeded.
        seed: int. Defaults to 0.
        name: str.
        class_names: list of str or None (taken from string labels).

    Raises:
        ValueError: for empty texts, non-string texts, a label count that
            differs from the text count, or fewer than two classes.
    """
    is_pair = isinstance(texts, tuple)
    columns = list(texts) if is_pair else [texts]
    if is_pair and len(columns) != 2:
        raise ValueError(f"sentence pairs are (texts_a, texts_b); got {len(columns)} columns.")
    columns = [_as_texts(list(c), "texts") for c in columns]
    if not columns[0]:
        raise ValueError("there are no texts: the source is empty.")
    if is_pair and len(columns[0]) != len(columns[1]):
        raise ValueError(f"pairs need as many texts on both sides; got {len(columns[0])} and {len(columns[1])}.")
    extra = _as_texts(list(unlabeled or []), "unlabeled texts")
    if labels is None:
        order = np.random.RandomState(seed).permutation(len(columns[0]))
        n_heldout = int(round(test_fraction * len(order))) if len(order) > 1 else 0
        heldout = [c[i] for c in columns for i in np.sort(order[:n_heldout])]
        pretraining = [c[i] for c in columns for i in np.sort(order[n_heldout:])] + extra
        return TextData(
            name,
            None,
            None,
            None,
            tf.data.Dataset.from_tensor_slices(pretraining),
            0,
            None,
            is_pair,
            heldout=tf.data.Dataset.from_tensor_slices(heldout) if heldout else None,
        )
    labels = list(labels)
    if len(labels) != len(columns[0]):
        raise ValueError(f"{len(labels)} labels for {len(columns[0])} texts; give one label per text.")
    ids, names = _label_ids(labels, "labels")
    class_names = names if class_names is None else list(class_names)
    num_classes = len(class_names) if class_names else int(ids.max()) + 1
    check_labels(ids, num_classes)
    if len(np.unique(ids)) < 2:
        raise ValueError("the labels hold one class; a classifier needs at least two classes.")
    for fraction, what in ((validation_fraction, "validation_fraction"), (test_fraction, "test_fraction")):
        if not 0.0 <= float(fraction) < 1.0:
            raise ValueError(f"{what} must lie in [0, 1); got {fraction}.")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError("validation_fraction + test_fraction must be below 1.")
    splits = _stratified(ids, (validation_fraction, test_fraction), seed)

    def subset(index):
        if not len(index):
            return None
        x = tuple(np.asarray([c[i] for i in index], object) for c in columns)
        return tf.data.Dataset.from_tensor_slices((x if is_pair else x[0], ids[index]))

    train_texts = [c[i] for c in columns for i in splits[0]]
    test_texts = [c[i] for c in columns for i in splits[2]]
    return TextData(
        name=name,
        train=subset(splits[0]),
        validation=subset(splits[1]),
        test=subset(splits[2]),
        pretraining=tf.data.Dataset.from_tensor_slices(train_texts + extra),
        num_classes=num_classes,
        class_names=class_names,
        is_pair=is_pair,
        heldout=tf.data.Dataset.from_tensor_slices(test_texts) if test_texts else None,
    )


def _columns(records, path, text_column, label_column):
    """Texts (or pairs) and labels (or None) from dict records."""
    text_columns = (text_column,) if isinstance(text_column, str) else tuple(text_column)
    if not records:
        raise ValueError(f"{path} has no records: the file is empty.")
    keys = list(records[0])
    for column in text_columns:
        if column not in records[0]:
            raise ValueError(
                f"{path} has no column {column!r}; its columns are {keys}. Name the text "
                "column with text_column= (--text_column)."
            )
    has_labels = label_column is not None and label_column in records[0]
    if label_column is not None and not has_labels and label_column != "label":
        raise ValueError(
            f"{path} has no column {label_column!r}; its columns are {keys}. Name the label "
            "column with label_column= (--label_column)."
        )
    texts = [[r[c] for r in records] for c in text_columns]
    labels = [r[label_column] for r in records] if has_labels else None
    if labels is not None and all(isinstance(v, str) for v in labels):
        labels = [int(v) if v.strip().lstrip("-").isdigit() else v for v in labels]
    return (tuple(texts) if len(texts) == 2 else texts[0]), labels


def _read_records(path):
    if path.endswith(".jsonl"):
        records = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise ValueError(f"{path}, line {number}: not JSON ({error.msg}).") from None
        return records
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def text_source(dataset, text_column="text", label_column="label"):
    """What the text recipes' `dataset=` takes, from a binary's flags: a
    TFDS name or a default-column file as it is, otherwise the `TextData`
    of the file read with the named columns."""
    if (text_column, label_column) == ("text", "label"):
        return dataset
    text_column = tuple(text_column.split(",")) if "," in text_column else text_column
    return load_texts(dataset, text_column=text_column, label_column=label_column)


def load_texts(
    source,
    text_column="text",
    label_column="label",
    validation_fraction=0.1,
    test_fraction=0.2,
    seed=0,
):
    """`TextData` from a file, a folder or lists (see the module doc).

    Args:
        source: a path (`.txt`, `.jsonl`, `.csv`, or a folder of class
            folders), a list of strings, `(texts, labels)` or
            `((texts_a, texts_b), labels)`.
        text_column: str, or two names for sentence pairs. The text
            column(s) of `.jsonl`/`.csv`. Defaults to `"text"`.
        label_column: str or None. The label column; a file without the
            default `"label"` column is read as unlabelled text.
        validation_fraction, test_fraction, seed: the seeded split.

    Raises:
        ValueError: with what to change (a missing path, an empty file, a
            missing column, a single class, ...).
    """
    split = dict(validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed)
    if isinstance(source, list):
        return text_data_from_lists(source, **split)
    if isinstance(source, tuple) and len(source) == 2:
        return text_data_from_lists(source[0], source[1], **split)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            "a text source is a path (.txt, .jsonl, .csv or a folder of class folders), a "
            f"list of strings or (texts, labels); got {type(source).__name__}."
        )
    path = os.fspath(source)
    name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    if os.path.isdir(path):
        return _load_text_folder(path, name, split)
    if not os.path.isfile(path):
        raise ValueError(f"no file or folder {path!r}.")
    if path.endswith(".txt"):
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
        if not lines:
            raise ValueError(f"{path} is empty: no line holds text.")
        return text_data_from_lists(lines, name=name, **split)
    if path.endswith((".jsonl", ".csv")):
        texts, labels = _columns(_read_records(path), path, text_column, label_column)
        return text_data_from_lists(texts, labels, name=name, **split)
    raise ValueError(f"{path!r}: read .txt, .jsonl and .csv files, or a folder of class folders.")


def _load_text_folder(path, name, split):
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and d != UNLABELED_FOLDER)

    def read_folder(folder):
        texts = []
        for file in sorted(os.listdir(folder)):
            if file.endswith(".txt"):
                with open(os.path.join(folder, file), encoding="utf-8") as f:
                    text = f.read().strip()
                if text:
                    texts.append(text)
        return texts

    if len(classes) < 2:
        raise ValueError(
            f"{path!r} has {len(classes)} class folder(s) {classes}; give one sub-folder of "
            ".txt files per class, at least two."
        )
    texts, labels = [], []
    for label, cls in enumerate(classes):
        found = read_folder(os.path.join(path, cls))
        texts += found
        labels += [label] * len(found)
    if not texts:
        raise ValueError(f"the class folders of {path!r} hold no non-empty .txt files.")
    unlabeled_folder = os.path.join(path, UNLABELED_FOLDER)
    unlabeled = read_folder(unlabeled_folder) if os.path.isdir(unlabeled_folder) else None
    return text_data_from_lists(texts, labels, unlabeled=unlabeled, name=name, class_names=classes, **split)
