"""Learning a WordPiece vocabulary from a `tf.data` text data set."""

import numpy as np
import tensorflow as tf
from tensorflow_text.python.ops import bert_tokenizer
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from keras_pt import special_tokens

# The learner accepts vocabularies between (1 - SLACK_RATIO) and 1 times the
# target size.
SLACK_RATIO = 0.05


def _trim(vocabulary, vocabulary_size):
    """Drops the least frequent multi-character pieces down to `vocabulary_size`.

    The learner's output is the special tokens, the characters, then the
    longer pieces by decreasing count — with the single-character
    continuations (`##x`) among them, so those are kept by rule, not by
    position: with every character as a word start and a continuation,
    every word stays spellable.
    """
    num_special = special_tokens.NUM_SPECIAL_TOKENS
    single = [len(token.removeprefix("##")) == 1 for token in vocabulary]
    num_required = num_special + sum(single[num_special:])
    if num_required > vocabulary_size:
        raise ValueError(
            f"vocabulary_size={vocabulary_size} is too small for this corpus: its "
            f"characters alone (each as a word start and as a continuation) and "
            f"the special tokens need {num_required} tokens. Raise "
            "vocabulary_size."
        )
    pieces = [i for i in range(num_special, len(vocabulary)) if not single[i]]
    kept = set(pieces[: vocabulary_size - num_required])
    return [
        token
        for i, token in enumerate(vocabulary)
        if i < num_special or single[i] or i in kept
    ]


def texts_only(dataset):
    """The strings of a text data set, whatever its element structure.

    Accepts elements that are a string, `(text, label)`, `((text_a, text_b),
    label)` or `(text_a, text_b)`; pairs give both texts, one after the other.

    Raises:
        ValueError: if the elements hold no string tensor.
    """
    spec = dataset.element_spec
    flat = tf.nest.flatten(spec)
    is_text = [isinstance(s, tf.TensorSpec) and s.dtype == tf.string for s in flat]
    if not any(is_text):
        raise ValueError(
            f"the data set holds no strings (element spec {spec}); pass a data "
            "set of raw texts."
        )
    if len(flat) == 1:
        return dataset

    def strings(*element):
        values = tf.nest.flatten(element)
        texts = [v for v, t in zip(values, is_text, strict=True) if t]
        return tf.data.Dataset.from_tensor_slices(tf.stack(texts))

    return dataset.flat_map(strings)


def learn_vocabulary(
    dataset,
    vocabulary_size,
    lowercase=True,
    min_frequency=2,
    max_texts=100_000,
    batch_size=256,
):
    """Learns a WordPiece vocabulary with tensorflow-text's BERT vocabulary learner.

    Texts are split into words as `keras_pt.layers.WordPieceTokenizer` splits
    them (BERT's basic tokenizer), word counts are collected, and
    `tensorflow_text`'s WordPiece learner
    (`tools.wordpiece_vocab`, as its `bert_vocab_from_dataset` runs it)
    picks the pieces: every character seen (as a word start and as a `##`
    continuation), then the most useful longer pieces, up to
    `vocabulary_size`. The special
    tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` come first (ids 0-4).

    The vocabulary at the count threshold `min_frequency` holds the most
    pieces the corpus offers: a small corpus may not have `vocabulary_size`
    of them and then gives fewer, in one pass of the learner. If it has
    more, the learner searches a higher threshold giving between 95% and
    100% of `vocabulary_size` tokens; where the lowest threshold overshoots
    by at most 5% (or the search cannot reach the target), the least
    frequent multi-character pieces are dropped instead.

    Args:
        dataset: `tf.data.Dataset` of strings (also `(text, label)` or
            sentence-pair elements: their texts are used), unbatched.
        vocabulary_size: int. The most tokens to return, special tokens
            included.
        lowercase: bool. Lowercase and strip accents first, as the tokenizer
            will. Defaults to True.
        min_frequency: int. The least count of a piece considered. Defaults
            to 2.
        max_texts: int or None. Read at most this many texts (the first
            ones), which bounds the time. Defaults to 100,000.
        batch_size: int. Texts split per step. Defaults to 256.

    Returns:
        The vocabulary, a list of str.

    Raises:
        ValueError: for an empty corpus (no non-blank text), a
            `vocabulary_size` too small for the special tokens and the
            corpus' characters, or a data set without strings.

    Example:

    >>> texts = tf.data.Dataset.from_tensor_slices(["the fox jumps"] * 10)
    >>> learn_vocabulary(texts, 100)[:6]
    ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'e']
    """
    num_special = special_tokens.NUM_SPECIAL_TOKENS
    if int(vocabulary_size) != vocabulary_size or vocabulary_size <= num_special:
        raise ValueError(
            f"vocabulary_size must be an integer > {num_special} (the special "
            f"tokens take {num_special} ids), got {vocabulary_size}."
        )
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}.")
    texts = texts_only(dataset)
    if max_texts is not None:
        texts = texts.take(max_texts)
    texts = texts.filter(lambda text: tf.strings.length(tf.strings.strip(text)) > 0)
    if not any(True for _ in texts.take(1)):
        raise ValueError(
            "the corpus is empty (no non-blank text), so no vocabulary can be "
            "learned from it; pass a data set of texts."
        )
    # Split into words as the tokenizer will, and count them
    splitter = bert_tokenizer.BasicTokenizer(lower_case=bool(lowercase))
    word_counts = learner.count_words(texts.batch(batch_size).map(splitter.tokenize))
    reserved = list(special_tokens.SPECIAL_TOKENS)

    def learn(lower, upper=None):
        return [
            str(token)
            for token in learner.learn(
                word_counts,
                int(vocabulary_size),
                reserved,
                lower_thresh=lower,
                upper_thresh=upper,
                slack_ratio=SLACK_RATIO,
            )
        ]

    # One pass at the lowest threshold gives the most pieces the corpus
    # offers. Small corpora stop there: it fits, or overshoots by at most
    # the learner's slack and is trimmed. Larger ones need the learner's
    # binary search over higher thresholds (~14 passes).
    vocabulary = learn(int(min_frequency), int(min_frequency))
    if len(vocabulary) > vocabulary_size * (1.0 + SLACK_RATIO):
        vocabulary = learn(int(min_frequency) + 1)
    # The learner puts reserved tokens first; check, since ids depend on it.
    assert vocabulary[:num_special] == reserved, vocabulary[:8]
    if len(vocabulary) > vocabulary_size:
        vocabulary = _trim(vocabulary, int(vocabulary_size))
    return vocabulary


def token_counts(tokenizer, dataset, max_texts=None, batch_size=256):
    """Tokens per text of a data set under a tokenizer, as a NumPy array.

    Useful to choose `sequence_length` (e.g. its 95th percentile plus 2 for
    `[CLS]` and `[SEP]`).
    """
    texts = texts_only(dataset)
    if max_texts is not None:
        texts = texts.take(max_texts)
    counts = [
        ids.row_lengths().numpy()
        for ids in texts.batch(batch_size).map(tokenizer)
    ]
    return np.concatenate(counts) if counts else np.zeros((0,), np.int64)
