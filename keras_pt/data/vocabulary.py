"""Learning a WordPiece vocabulary from a `tf.data` text data set."""

import collections

import numpy as np
import tensorflow as tf
from tensorflow_text.python.ops import bert_tokenizer
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from keras_pt import special_tokens
from keras_pt.utils.text_inputs import is_text

# tensorflow-text's learner accepts vocabularies between (1 - SLACK_RATIO)
# and 1 times the target size.
SLACK_RATIO = 0.05


def _trim(vocabulary, vocabulary_size):
    """Drops the least frequent multi-character pieces down to `vocabulary_size`.

    tensorflow-text's learner's output is the special tokens, the characters, then the
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
    return [token for i, token in enumerate(vocabulary) if i < num_special or single[i] or i in kept]


def texts_only(dataset):
    """The strings of a text data set, whatever its element structure.

    Accepts elements that are a string, `(text, label)`, `((text_a, text_b),
    label)` or `(text_a, text_b)`; pairs give both texts, one after the other.

    Raises:
        ValueError: if the elements hold no string tensor.
    """
    spec = dataset.element_spec
    flat = tf.nest.flatten(spec)
    texts = [isinstance(s, tf.TensorSpec) and is_text(s) for s in flat]
    if not any(texts):
        raise ValueError(f"the data set holds no strings (element spec {spec}); pass a data set of raw texts.")
    if len(flat) == 1:
        return dataset

    def strings(*element):
        values = tf.nest.flatten(element)
        kept = [v for v, t in zip(values, texts, strict=True) if t]
        return tf.data.Dataset.from_tensor_slices(tf.stack(kept))

    return dataset.flat_map(strings)


METHODS = ("tokenizers", "tensorflow_text")


def _words(texts, lowercase, batch_size):
    """Batches of the texts' words, split as the package's tokenizer splits them.

    BERT's basic tokenizer: the normalization of
    `keras_pt.layers.wordpiece_tokenizer.normalize` (case folding, NFD,
    accents and control characters removed), then a split on whitespace and
    punctuation, each CJK character a word. Gives a ragged string tensor of
    shape `(batch, None)` per batch.
    """
    splitter = bert_tokenizer.BasicTokenizer(lower_case=bool(lowercase))
    return texts.batch(batch_size).map(splitter.tokenize, num_parallel_calls=tf.data.AUTOTUNE)


def _check_not_empty(word_counts):
    if not word_counts:
        raise ValueError(
            "the corpus is empty (no non-blank text), so no vocabulary can be "
            "learned from it; pass a data set of texts."
        )


def _word_counts(texts, lowercase, batch_size):
    """A `collections.Counter` of the texts' words (bytes), split as the tokenizer splits."""
    counts = collections.Counter()
    for words in _words(texts, lowercase, batch_size).prefetch(tf.data.AUTOTUNE):
        counts.update(words.flat_values.numpy().tolist())
    return counts


def _repeated_words(word_counts, repeats_per_line=4096, lines_per_batch=256):
    """Batches of lines that hold each word as often as it was counted.

    Words in sorted order, each line one word repeated (at most
    `repeats_per_line` times), so the trainer counts exactly `word_counts`
    without the corpus being read again.
    """
    batch = []
    for word, count in sorted(word_counts.items()):
        while count > 0:
            n = min(count, repeats_per_line)
            batch.append(" ".join([word] * n))
            count -= n
            if len(batch) == lines_per_batch:
                yield batch
                batch = []
    if batch:
        yield batch


def _learn_with_tokenizers(texts, vocabulary_size, lowercase, min_frequency, batch_size):
    """The `tokenizers` library's WordPiece trainer on the texts' word counts."""
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    except ImportError as error:  # a dependency (setup.cfg); say how to get it
        raise ImportError(
            "learn_vocabulary(method='tokenizers') needs the `tokenizers` library: "
            "pip install tokenizers (or use method='tensorflow_text')."
        ) from error

    # Words split in TensorFlow exactly as the tokenizer layer splits them.
    word_counts = {word.decode("utf-8"): count for word, count in _word_counts(texts, lowercase, batch_size).items()}
    _check_not_empty(word_counts)
    num_special = special_tokens.NUM_SPECIAL_TOKENS
    characters = sorted({c for word in word_counts for c in word})
    required = num_special + 2 * len(characters)
    if required > vocabulary_size:
        raise ValueError(
            f"vocabulary_size={vocabulary_size} is too small for this corpus: its "
            f"characters alone (each as a word start and as a continuation) and "
            f"the special tokens need {required} tokens. Raise "
            "vocabulary_size."
        )
    # The trainer breaks ties between equally frequent merges by token id,
    # and numbers the characters in the (random) order of its word table:
    # given first, as reserved tokens, in sorted order, every character has
    # a fixed id, so the same corpus gives the same vocabulary.
    reserved = list(special_tokens.SPECIAL_TOKENS) + characters + ["##" + c for c in characters]
    tokenizer = Tokenizer(models.WordPiece(unk_token=special_tokens.UNK_TOKEN))
    # Words may hold non-ASCII spaces (the split keeps them, as the
    # tokenizer layer does): cut the lines at ASCII spaces only.
    tokenizer.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    trainer = trainers.WordPieceTrainer(
        vocab_size=int(vocabulary_size),
        min_frequency=int(min_frequency),
        special_tokens=reserved,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tokenizer.train_from_iterator(_repeated_words(word_counts), trainer)
    ids = tokenizer.get_vocab()
    # Ids: the reserved tokens, then the merged pieces in the order the
    # trainer made them (the most frequent pairs first).
    tokens = sorted(ids, key=ids.get)
    if tokens[: len(reserved)] != reserved:
        raise AssertionError(f"the trainer reordered the reserved tokens: {tokens[:8]}")
    # Every character is there as a word start and as a continuation, so
    # every word stays spellable without [UNK] whatever merges are kept.
    return tokens[: int(vocabulary_size)]


def _learn_with_tensorflow_text(texts, vocabulary_size, lowercase, min_frequency, batch_size):
    """tensorflow-text's BERT vocabulary learner (as `bert_vocab_from_dataset` runs it)."""
    num_special = special_tokens.NUM_SPECIAL_TOKENS
    word_counts = learner.count_words(_words(texts, lowercase, batch_size))
    _check_not_empty(word_counts)
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


def learn_vocabulary(
    dataset,
    vocabulary_size,
    lowercase=True,
    min_frequency=2,
    max_texts=None,
    batch_size=1024,
    method="tokenizers",
):
    """Learns a WordPiece vocabulary from a `tf.data` text data set.

    Texts are split into words as `keras_pt.layers.WordPieceTokenizer` splits
    them (BERT's basic tokenizer, run in TensorFlow: the same normalization
    and the same word boundaries), then a WordPiece trainer picks the
    pieces. The special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` come first
    (ids 0-4), then every character seen, both as a word start and as a
    `##` continuation (so every word of the corpus is spelled without
    `[UNK]`), then the longer pieces, the most useful first, up to
    `vocabulary_size`.

    Methods:

    - `"tokenizers"` (the default): the `tokenizers` library's WordPiece
      trainer (BPE-style merges of the most frequent adjacent pieces, in
      Rust). 100,000 short texts take a few seconds, most of it the
      TensorFlow word split. Merges need `min_frequency` occurrences, so a
      small corpus may give fewer than `vocabulary_size` tokens.
    - `"tensorflow_text"`: tensorflow-text's BERT vocabulary learner
      (`tools.wordpiece_vocab`, as `bert_vocab_from_dataset` runs it), in
      Python, minutes for 100,000 texts. At the count threshold
      `min_frequency` it gives the most pieces the corpus offers; with more
      than that, it searches a higher threshold giving between 95% and
      100% of `vocabulary_size` tokens, and trims the least frequent
      multi-character pieces where that overshoots.

    Both give vocabularies that `WordPieceTokenizer` (tensorflow-text's
    `FastWordpieceTokenizer`) loads. Learning is deterministic: the same
    texts give the same vocabulary.

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
            ones). Defaults to None: the whole data set.
        batch_size: int. Texts split per step. Defaults to 1024.
        method: str. `"tokenizers"` or `"tensorflow_text"` (see above).
            Defaults to `"tokenizers"`.

    Returns:
        The vocabulary, a list of str.

    Raises:
        ValueError: for an empty corpus (no non-blank text), a
            `vocabulary_size` too small for the special tokens and the
            corpus' characters, a data set without strings, or an unknown
            `method`.

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
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if max_texts is not None and max_texts < 1:
        raise ValueError(f"max_texts must be a positive int or None (all texts), got {max_texts}.")
    texts = texts_only(dataset)
    if max_texts is not None:
        texts = texts.take(max_texts)
    learn = _learn_with_tokenizers if method == "tokenizers" else _learn_with_tensorflow_text
    return learn(texts, int(vocabulary_size), lowercase, int(min_frequency), int(batch_size))


def token_counts(tokenizer, dataset, max_texts=None, batch_size=256):
    """Tokens per text of a data set under a tokenizer, as a NumPy array.

    Useful to choose `sequence_length` (e.g. its 95th percentile plus 2 for
    `[CLS]` and `[SEP]`).
    """
    texts = texts_only(dataset)
    if max_texts is not None:
        texts = texts.take(max_texts)
    counts = [ids.row_lengths().numpy() for ids in texts.batch(batch_size).map(tokenizer)]
    return np.concatenate(counts) if counts else np.zeros((0,), np.int64)
