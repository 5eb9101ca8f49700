"""WordPiece tokenizer layer on tensorflow-text's FastWordpieceTokenizer."""

import os

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_pt import special_tokens


def normalize(strings, lowercase=True):
    """BERT's text normalization, as `tensorflow_text.BertTokenizer` does it.

    Control and format characters become spaces; with `lowercase`, the text
    is case folded, NFD normalized and stripped of accents (uncased BERT).

    Args:
        strings: string `tf.Tensor` of any shape.
        lowercase: bool. Lowercase and strip accents. Defaults to True.
    """
    if lowercase:
        strings = tf_text.case_fold_utf8(strings)
        strings = tf_text.normalize_utf8(strings, "NFD")
        strings = tf.strings.regex_replace(strings, r"\p{Mn}", "")
    return tf.strings.regex_replace(strings, r"\p{Cc}|\p{Cf}", " ")


def check_vocabulary(vocabulary):
    """Raises a ValueError unless `vocabulary` is a valid keras_pt vocabulary.

    Valid: a list of unique non-empty strings that starts with
    `special_tokens.SPECIAL_TOKENS` in that order.
    """
    if isinstance(vocabulary, (str, bytes)) or not hasattr(vocabulary, "__len__"):
        raise ValueError(
            "vocabulary must be a list of token strings or the path of a file "
            f"with one token per line, got {type(vocabulary).__name__}."
        )
    bad = [t for t in vocabulary if not isinstance(t, str) or not t or t != t.strip()]
    if bad:
        raise ValueError(
            f"vocabulary tokens must be non-empty strings without surrounding whitespace, got {bad[:5]!r}."
        )
    specials = list(special_tokens.SPECIAL_TOKENS)
    if list(vocabulary[: len(specials)]) != specials:
        raise ValueError(
            f"vocabulary must start with the special tokens {specials} in this "
            f"order (ids 0..{len(specials) - 1}), but it starts with "
            f"{list(vocabulary[: len(specials)])}. Learn one with "
            "keras_pt.data.learn_vocabulary, or put these tokens first."
        )
    seen, duplicates = set(), []
    for token in vocabulary:
        if token in seen:
            duplicates.append(token)
        seen.add(token)
    if duplicates:
        raise ValueError(f"vocabulary has duplicate tokens {duplicates[:5]!r}; remove them.")


def _read_vocabulary(path):
    with tf.io.gfile.GFile(path, "r") as f:
        return [line.rstrip("\r\n") for line in f if line.rstrip("\r\n")]


@keras.saving.register_keras_serializable(package="keras_pt")
class WordPieceTokenizer(keras.layers.Layer):
    """WordPiece tokenizer: raw strings in, int32 token ids out.

    Splits text as BERT does (normalization, then whitespace and punctuation,
    each CJK character its own word) and each word into the longest
    vocabulary pieces, continuation pieces marked with `suffix_indicator`.
    Words it cannot spell with the vocabulary become `[UNK]` (id 1). It runs
    as TensorFlow ops (tensorflow-text's `FastWordpieceTokenizer`), so it
    works in `tf.data` pipelines and SavedModel signatures.

    `call(strings)` maps a string tensor of shape `(batch,)` to a
    `tf.RaggedTensor` of int32 ids of shape `(batch, None)`, and a scalar
    string to a 1-D int32 tensor. `detokenize(ids)` maps ids back to
    (normalized, space-separated) text.

    The vocabulary is part of `get_config()`, so it is saved with any model
    that contains the layer. It must start with the special tokens
    `[PAD] [UNK] [CLS] [SEP] [MASK]` (ids 0-4), as
    `keras_pt.data.learn_vocabulary` makes it.

    Args:
        vocabulary: list of str, or str. The tokens (list index = id), or the
            path of a text file with one token per line.
        lowercase: bool. Lowercase and strip accents first (uncased BERT).
            Use the same value as when learning the vocabulary. Defaults to
            True.
        suffix_indicator: str. Prefix of word-continuation pieces. Defaults
            to `"##"`.
        max_bytes_per_word: int. Longer words become `[UNK]`. Defaults to 100.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    ...               "the", "quick", "fox", "jump", "##s", "."]
    >>> tokenizer = WordPieceTokenizer(vocabulary)
    >>> tokenizer(["The quick fox jumps."]).to_list()
    [[5, 6, 7, 8, 9, 10]]
    >>> tokenizer.detokenize([[5, 7, 8, 9]]).numpy()
    array([b'the fox jumps'], dtype=object)
    """

    def __init__(
        self,
        vocabulary,
        lowercase=True,
        suffix_indicator="##",
        max_bytes_per_word=100,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Strings and lists of strings are valid inputs: no float conversion.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = _read_vocabulary(os.fspath(vocabulary))
        vocabulary = list(vocabulary)
        check_vocabulary(vocabulary)
        if not suffix_indicator:
            raise ValueError("suffix_indicator must be a non-empty string such as '##'.")
        if max_bytes_per_word <= 0:
            raise ValueError(f"max_bytes_per_word must be positive, got {max_bytes_per_word}.")

        # === Config ===
        self.vocabulary = vocabulary
        self.lowercase = bool(lowercase)
        self.suffix_indicator = suffix_indicator
        self.max_bytes_per_word = int(max_bytes_per_word)

        # === Tokenizer ===
        self._fast_wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator=suffix_indicator,
            max_bytes_per_word=self.max_bytes_per_word,
            token_out_type=tf.int32,
            unknown_token=special_tokens.UNK_TOKEN,
            no_pretokenization=False,
            support_detokenization=True,
        )
        self.built = True

    def vocabulary_size(self):
        """The number of tokens, special tokens included."""
        return len(self.vocabulary)

    def get_vocabulary(self):
        """The tokens as a list of str (list index = id)."""
        return list(self.vocabulary)

    def id_to_token(self, id):
        """The token string of an id."""
        if not 0 <= id < len(self.vocabulary):
            raise ValueError(f"id {id} is outside the vocabulary [0, {len(self.vocabulary)}).")
        return self.vocabulary[id]

    def token_to_id(self, token):
        """The id of a token string."""
        try:
            return self.vocabulary.index(token)
        except ValueError:
            raise ValueError(f"token {token!r} is not in the vocabulary.") from None

    def call(self, inputs):
        strings = tf.convert_to_tensor(inputs)
        if strings.dtype != tf.string:
            raise ValueError(f"WordPieceTokenizer takes strings, got a {strings.dtype.name} tensor; pass raw text.")
        return self._fast_wordpiece.tokenize(normalize(strings, self.lowercase))

    def detokenize(self, ids):
        """Maps token ids back to text, dropping `[PAD]` ids.

        Args:
            ids: int tensor or `tf.RaggedTensor` of shape `(batch, None)` or
                `(None,)`, or nested lists.

        Returns:
            A string tensor of shape `(batch,)` (or a scalar for 1-D ids).
            Words are separated by single spaces, also around punctuation.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.ragged.constant(ids) if isinstance(ids, (list, tuple)) else tf.convert_to_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        size = len(self.vocabulary)
        flat = ids.flat_values if isinstance(ids, tf.RaggedTensor) else tf.reshape(ids, [-1])
        checks = [
            tf.debugging.assert_non_negative(flat, message="token ids must be >= 0"),
            tf.debugging.assert_less(flat, size, message=f"token ids must be < vocabulary_size={size}"),
        ]
        with tf.control_dependencies(checks):
            if not isinstance(ids, tf.RaggedTensor):
                ids = tf.RaggedTensor.from_tensor(ids) if ids.shape.rank == 2 else ids
            if isinstance(ids, tf.RaggedTensor):
                ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, special_tokens.PAD_ID))
            else:
                ids = tf.boolean_mask(ids, tf.not_equal(ids, special_tokens.PAD_ID))
            return self._fast_wordpiece.detokenize(ids)

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape) + (None,)
        return keras.KerasTensor(shape, dtype="int32", ragged=len(shape) > 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "lowercase": self.lowercase,
                "suffix_indicator": self.suffix_indicator,
                "max_bytes_per_word": self.max_bytes_per_word,
            }
        )
        return config
