"""MiniBERT preprocessor: raw strings or sentence pairs -> packed model inputs."""

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_pt import special_tokens


@keras.saving.register_keras_serializable(package="keras_pt")
class MiniBERTPreprocessor(keras.layers.Layer):
    """Tokenizes and packs one or two text segments to a fixed length.

    `call(x)` takes a string tensor of shape `(batch,)` (single texts) or a
    tuple/list of two such tensors (sentence pairs) and returns a dict of
    int32 tensors of shape `(batch, sequence_length)`:

    - `"token_ids"`: `[CLS] a... [SEP] b... [SEP] [PAD]...`
    - `"segment_ids"`: 0 for `[CLS]`, segment a and its `[SEP]`; 1 for
      segment b and its `[SEP]`; 0 on padding.
    - `"padding_mask"`: 1 on real tokens (`[CLS]`/`[SEP]` included), 0 on
      `[PAD]`.

    A scalar string (or a pair of scalars) gives tensors of shape
    `(sequence_length,)`, so the layer can also be mapped over an unbatched
    `tf.data.Dataset`. It runs as TensorFlow ops on the host: map it over a
    `tf.data` pipeline (`keras_pt.data.preprocess_text_dataset`) and feed the
    packed tensors to the model, which keeps the training step free of
    strings and its shapes static.

    With `truncate=True`, too long inputs are trimmed as in BERT: tokens come
    off the end of the longer segment first (`tensorflow_text`'s
    `RoundRobinTrimmer`). With `truncate=False` they raise an
    `InvalidArgumentError` naming `sequence_length`.

    Args:
        tokenizer: `keras_pt.layers.WordPieceTokenizer` (or any layer mapping
            strings to ragged int ids with a `vocabulary_size()` method and
            the special token ids of `keras_pt.layers.special_tokens`).
        sequence_length: int. Length of the packed sequences, `[CLS]` and
            `[SEP]` included.
        truncate: bool. Trim too long inputs (True) or raise (False).
            Defaults to True.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> from keras_pt.layers import WordPieceTokenizer
    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    ...               "the", "quick", "fox", "jump", "##s", "."]
    >>> preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), 8)
    >>> x = preprocessor((["the fox"], ["fox jumps"]))
    >>> x["token_ids"].numpy()
    array([[2, 5, 7, 3, 7, 8, 9, 3]], dtype=int32)
    >>> x["segment_ids"].numpy()
    array([[0, 0, 0, 0, 1, 1, 1, 1]], dtype=int32)
    >>> preprocessor(["the fox"])["padding_mask"].numpy()
    array([[1, 1, 1, 1, 0, 0, 0, 0]], dtype=int32)
    """

    def __init__(self, tokenizer, sequence_length, truncate=True, **kwargs):
        super().__init__(**kwargs)
        # Strings and lists of strings are valid inputs: no float conversion.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if not hasattr(tokenizer, "vocabulary_size"):
            raise ValueError(
                "tokenizer must be a keras_pt.layers.WordPieceTokenizer (a layer "
                f"with a vocabulary_size() method), got {type(tokenizer).__name__}."
            )
        if int(sequence_length) != sequence_length or sequence_length < 2:
            raise ValueError(
                f"sequence_length must be an integer >= 2 (room for [CLS] and [SEP]), got {sequence_length}."
            )

        # === Layers ===
        self.tokenizer = tokenizer

        # === Config ===
        self.sequence_length = int(sequence_length)
        self.truncate = bool(truncate)
        self.built = True

    def _segments(self, inputs):
        if isinstance(inputs, dict):
            raise ValueError(
                "MiniBERTPreprocessor takes a string tensor or a tuple of two "
                "string tensors (sentence pairs), not a dict; pass "
                "(text_a, text_b)."
            )
        # A tuple holds segments; so does a list of tensors or of lists. A
        # list of Python strings is one batch of single texts.
        pair = isinstance(inputs, tuple) or (
            isinstance(inputs, list) and inputs and not isinstance(inputs[0], (str, bytes))
        )
        if pair:
            segments = [tf.convert_to_tensor(x) for x in inputs]
        else:
            segments = [tf.convert_to_tensor(inputs)]
        if len(segments) not in (1, 2):
            raise ValueError(f"MiniBERTPreprocessor packs one segment or a pair of segments, got {len(segments)}.")
        for segment in segments:
            if segment.dtype != tf.string:
                raise ValueError(
                    f"MiniBERTPreprocessor takes strings, got a {segment.dtype.name} tensor; pass raw text."
                )
        ranks = {segment.shape.rank for segment in segments}
        if len(ranks) != 1 or ranks.pop() not in (0, 1):
            raise ValueError(
                "each segment must be a string scalar or a 1-D string tensor of "
                f"shape (batch,), and both segments alike; got shapes "
                f"{[tuple(s.shape) for s in segments]}."
            )
        if len(segments) == 2 and self.sequence_length < 3:
            raise ValueError(
                f"sequence_length={self.sequence_length} leaves no room for a pair: "
                "[CLS] a [SEP] b [SEP] needs at least 3."
            )
        return segments

    def call(self, inputs):
        segments = self._segments(inputs)
        scalar = segments[0].shape.rank == 0
        if scalar:
            segments = [segment[tf.newaxis] for segment in segments]
        # Token ids per segment, ragged: (batch, None)
        token_ids = [tf.cast(self.tokenizer(segment), tf.int32) for segment in segments]
        num_special = len(token_ids) + 1  # [CLS] and one [SEP] per segment
        if self.truncate:
            trimmer = tf_text.RoundRobinTrimmer(self.sequence_length - num_special)
            token_ids = trimmer.trim(token_ids)
        else:
            lengths = tf.add_n([ids.row_lengths() for ids in token_ids]) + num_special
            check = tf.debugging.assert_less_equal(
                tf.cast(lengths, tf.int32),
                self.sequence_length,
                message=(
                    f"MiniBERTPreprocessor(truncate=False): an input is longer than "
                    f"sequence_length={self.sequence_length} tokens ([CLS] and [SEP] "
                    "included). Raise sequence_length or pass truncate=True."
                ),
            )
            with tf.control_dependencies([check]):
                token_ids = [tf.identity(ids) for ids in token_ids]
        # [CLS] a [SEP] (b [SEP]), ragged: (batch, None)
        token_ids, segment_ids = tf_text.combine_segments(
            token_ids,
            start_of_sequence_id=special_tokens.CLS_ID,
            end_of_segment_id=special_tokens.SEP_ID,
        )
        # Padded: (batch, sequence_length)
        token_ids, padding_mask = tf_text.pad_model_inputs(
            token_ids, self.sequence_length, pad_value=special_tokens.PAD_ID
        )
        segment_ids, _ = tf_text.pad_model_inputs(segment_ids, self.sequence_length, pad_value=0)
        outputs = {
            "token_ids": tf.cast(token_ids, tf.int32),
            "segment_ids": tf.cast(segment_ids, tf.int32),
            "padding_mask": tf.cast(padding_mask, tf.int32),
        }
        # Keep the static batch size (drop_remainder batches) for XLA / TPU.
        shape = [segments[0].shape[0], self.sequence_length]
        for value in outputs.values():
            value.set_shape(shape)
        if scalar:
            outputs = {key: value[0] for key, value in outputs.items()}
        return outputs

    def compute_output_spec(self, inputs):
        first = inputs[0] if isinstance(inputs, tuple) else inputs
        shape = tuple(first.shape) + (self.sequence_length,)
        return {key: keras.KerasTensor(shape, dtype="int32") for key in ("token_ids", "segment_ids", "padding_mask")}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.layers.serialize(self.tokenizer),
                "sequence_length": self.sequence_length,
                "truncate": self.truncate,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["tokenizer"], dict):
            config["tokenizer"] = keras.layers.deserialize(config["tokenizer"])
        return cls(**config)
