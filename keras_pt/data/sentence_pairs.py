"""Sentence pairs for contrastive sentence embeddings.

A docstring's first sentence (its summary line) and the rest of it describe
the same object in different words: `sentence_pairs` turns a text data set
into such `(first_sentence, remainder)` pairs — the supervised positives of
`keras_pt.SentenceEncoder`, and the held-out retrieval task that measures
sentence embeddings (find a summary's own remainder among N candidates).
A data set whose texts are one phrase may name two features that describe
the same thing instead (`TextDatasetSpec.pair_features`: a
`debian_packages` description and its debtags as words);
`load_sentence_pairs` pairs those.

Example:

>>> import tensorflow as tf
>>> texts = tf.data.Dataset.from_tensor_slices([
...     "Return the sum of two numbers. Both must be integers or floats.",
...     "Too short.",
... ])
>>> [(a.decode(), b.decode()) for a, b in sentence_pairs(texts).as_numpy_iterator()]
[('Return the sum of two numbers.', 'Both must be integers or floats.')]
"""

import tensorflow as tf

from keras_pt.data import text as text_lib
from keras_pt.data.batching import batch
from keras_pt.data.vocabulary import texts_only

# The shortest first sentence up to its end mark, whitespace, then the rest.
FIRST_SENTENCE_PATTERN = r"(?s)^\s*(.+?[.!?])\s+(\S.*?)\s*$"


def sentence_pairs(texts, min_chars=20):
    """`(first_sentence, remainder)` pairs of the texts that have both.

    The first sentence ends at the first `.`, `!` or `?` followed by
    whitespace; texts with one sentence, or a part shorter than `min_chars`
    characters, are dropped.

    Args:
        texts: unbatched `tf.data.Dataset` of strings (or of `(text, label)`:
            the texts are used).
        min_chars: int. The least length of either part. Defaults to 20.

    Returns:
        An unbatched `tf.data.Dataset` of `(first_sentence, remainder)`
        scalar strings.
    """
    if int(min_chars) != min_chars or min_chars < 1:
        raise ValueError(f"min_chars must be a positive integer, got {min_chars}.")
    texts = texts_only(texts)

    def split(text):
        first = tf.strings.regex_replace(text, FIRST_SENTENCE_PATTERN, r"\1")
        rest = tf.strings.regex_replace(text, FIRST_SENTENCE_PATTERN, r"\2")
        return first, rest

    def keep(text):
        return tf.strings.regex_full_match(text, FIRST_SENTENCE_PATTERN)

    def long_enough(first, rest):
        return tf.logical_and(
            tf.strings.length(first, unit="UTF8_CHAR") >= min_chars,
            tf.strings.length(rest, unit="UTF8_CHAR") >= min_chars,
        )

    return texts.filter(keep).map(split).filter(long_enough)


FIRST_SENTENCE_NAMES = ("first sentence", "remainder")


def pair_names(name):
    """What `load_sentence_pairs(name)` pairs, as two short names.

    Returns:
        `("first sentence", "remainder")`, or the data set's
        `pair_features` (`("text", "tag_text")` for `debian_packages`).

    Raises:
        ValueError: for an unknown data set.
    """
    return text_lib.text_dataset_spec(name).pair_features or FIRST_SENTENCE_NAMES


def load_sentence_pairs(name="stdlib_docs", split="train+unsupervised", data_dir=None, min_chars=20):
    """Pairs of texts that describe the same thing, from a data set's split.

    For a data set with `pair_features` (`debian_packages`: `(text,
    tag_text)`, a package's description and its debtags as words) the
    pairs are those features, examples with an empty one skipped;
    otherwise each text's `(first_sentence, remainder)` (see
    `sentence_pairs`). `pair_names(name)` says which.

    Args:
        name: str. A `keras_pt.data.TEXT_DATASETS` name. Defaults to
            `"stdlib_docs"` (embedded).
        split: str. Any split, labelled or not. Defaults to
            `"train+unsupervised"` (stdlib_docs' pre-training text); use
            `"test"` for held-out pairs.
        data_dir: str or None. TFDS data directory.
        min_chars: int. The least length of either part of a first-sentence
            split (not used for `pair_features`). Defaults to 20.

    Returns:
        An unbatched `tf.data.Dataset` of `(text_a, text_b)` strings.

    Raises:
        ValueError: for an unknown data set or split, or when no text of the
            split gives a pair.
    """
    if text_lib.text_dataset_spec(name).pair_features is not None:
        return text_lib.load_feature_pairs(name, split, data_dir)
    pairs = sentence_pairs(text_lib.load_pretraining_texts(name, split, data_dir), min_chars)
    if not any(True for _ in pairs.take(1)):
        raise ValueError(
            f"split {split!r} of {name!r} has no text with a first sentence and a "
            f"remainder of at least {min_chars} characters; lower min_chars."
        )
    return pairs


def distinct_pairs(firsts, seconds):
    """The pairs whose first text and whose second text were not seen before.

    A retrieval query with a twin (the same text, another partner) or a
    candidate with a twin (the same text partnering another query) has no
    single right answer; the first pair of each text is kept.

    Args:
        firsts: list of str.
        seconds: list of str, `seconds[i]` the partner of `firsts[i]`.

    Returns:
        `(firsts, seconds)`: lists of the kept pairs, in their order.

    Example:

    >>> distinct_pairs(["a", "b", "a", "c"], ["x", "x", "y", "z"])
    (['a', 'c'], ['x', 'z'])
    """
    if len(firsts) != len(seconds):
        raise ValueError(f"{len(firsts)} first texts but {len(seconds)} second texts; pass pairs.")
    kept_firsts, kept_seconds, seen_firsts, seen_seconds = [], [], set(), set()
    for first, second in zip(firsts, seconds):
        if first in seen_firsts or second in seen_seconds:
            continue
        seen_firsts.add(first)
        seen_seconds.add(second)
        kept_firsts.append(first)
        kept_seconds.append(second)
    return kept_firsts, kept_seconds


def preprocess_sentence_pairs(dataset, preprocessor, batch_size, shuffle_seed=None, repeat=False):
    """Batches `(text_a, text_b)` pairs and packs each side on its own.

    Unlike `preprocess_text_dataset`, which packs a pair into one
    `[CLS] a [SEP] b [SEP]` sequence (a cross-encoder's input), this packs
    `a` and `b` separately — the two towers of a bi-encoder.

    Args:
        dataset: unbatched `tf.data.Dataset` of `(text_a, text_b)` strings.
        preprocessor: the layer packing a batch of strings (a
            `MiniBERTPreprocessor`).
        batch_size: int. The global batch size (`drop_remainder=True`).
        shuffle_seed: int or None. Shuffle with this seed. Defaults to None.
        repeat: bool. Repeat forever. Defaults to False.

    Returns:
        A `tf.data.Dataset` of `(packed_a, packed_b)` dicts.

    Raises:
        ValueError: if the elements are not pairs of strings, or there are
            fewer pairs than one batch.
    """
    spec = dataset.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and all(isinstance(s, tf.TensorSpec) and s.dtype == tf.string for s in spec)
    ):
        raise ValueError(f"preprocess_sentence_pairs takes a data set of (text_a, text_b) strings; got {spec}.")
    return batch(
        dataset,
        batch_size,
        shuffle_seed=shuffle_seed,
        repeat=repeat,
        map_fn=lambda a, b: (preprocessor(a), preprocessor(b)),
        noun="pairs",
    )
