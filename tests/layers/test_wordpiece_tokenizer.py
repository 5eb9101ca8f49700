import os

import keras
import numpy as np
import tensorflow as tf

from keras_pt import data
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens
from tests.test_case import TestCase

SPECIALS = list(special_tokens.SPECIAL_TOKENS)
VOCABULARY = SPECIALS + ["the", "quick", "brown", "fox", "jump", "##s", "##ed", "over", "lazy", "dog", "."]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy dog sleeps; the quick fox doesn't.",
    "Résumé of the café: naïve foxes jumped over dogs!",
    "Tokenizers split words into word pieces, and pieces into characters.",
] * 5


def ids_of(tokenizer, tokens):
    return [tokenizer.token_to_id(t) for t in tokens]


class WordPieceTokenizerTest(TestCase):
    def test_tokenize_detokenize(self):
        tokenizer = WordPieceTokenizer(VOCABULARY)
        self.assertEqual(tokenizer.vocabulary_size(), len(VOCABULARY))
        self.assertEqual(tokenizer.get_vocabulary(), VOCABULARY)
        ids = tokenizer(["The QUICK fox jumps.", "brown dog jumped over"])
        self.assertIsInstance(ids, tf.RaggedTensor)
        self.assertEqual(ids.dtype, tf.int32)
        self.assertEqual(
            ids.to_list(),
            [
                ids_of(tokenizer, ["the", "quick", "fox", "jump", "##s", "."]),
                ids_of(tokenizer, ["brown", "dog", "jump", "##ed", "over"]),
            ],
        )
        # Round trip: the lowercased text, words separated by single spaces.
        self.assertAllEqual(tokenizer.detokenize(ids), [b"the quick fox jumps .", b"brown dog jumped over"])
        # A scalar string gives 1-D ids; padded dense ids drop [PAD].
        self.assertAllEqual(tokenizer("lazy dog"), ids_of(tokenizer, ["lazy", "dog"]))
        padded = tf.constant([[5, 8, 0, 0]])
        self.assertAllEqual(tokenizer.detokenize(padded), [b"the fox"])

    def test_unknown_words_and_normalization(self):
        tokenizer = WordPieceTokenizer(VOCABULARY)
        ids = tokenizer(["the zebra jumps", "", "Thé\tFOX\u200b"]).to_list()
        self.assertEqual(ids[0], ids_of(tokenizer, ["the", "[UNK]", "jump", "##s"]))
        self.assertEqual(ids[1], [])
        # Accents stripped, case folded, control/format characters are spaces.
        self.assertEqual(ids[2], ids_of(tokenizer, ["the", "fox"]))
        cased = WordPieceTokenizer(VOCABULARY, lowercase=False)
        self.assertEqual(cased(["The fox"]).to_list(), [[special_tokens.UNK_ID, 8]])

    def test_bad_vocabulary(self):
        with self.assertRaisesRegex(ValueError, r"must start with the special tokens.*\[MASK\]"):
            WordPieceTokenizer(["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"])
        with self.assertRaisesRegex(ValueError, "must start with the special tokens"):
            WordPieceTokenizer(["the", "fox"])
        with self.assertRaisesRegex(ValueError, "duplicate tokens.*'fox'"):
            WordPieceTokenizer(SPECIALS + ["fox", "fox"])
        with self.assertRaisesRegex(ValueError, "non-empty strings"):
            WordPieceTokenizer(SPECIALS + [""])
        tokenizer = WordPieceTokenizer(VOCABULARY)
        with self.assertRaisesRegex(ValueError, "takes strings"):
            tokenizer(tf.constant([1, 2]))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "vocabulary_size=16"):
            tokenizer.detokenize([[5, 16]])

    def test_vocabulary_file_and_config(self):
        path = os.path.join(self.get_temp_dir(), "vocab.txt")
        with open(path, "w") as f:
            f.write("\n".join(VOCABULARY) + "\n")
        tokenizer = WordPieceTokenizer(path)
        self.assertEqual(tokenizer.get_vocabulary(), VOCABULARY)
        config = tokenizer.get_config()
        self.assertEqual(config["vocabulary"], VOCABULARY)
        rebuilt = self.run_config_roundtrip(tokenizer)
        restored = keras.layers.deserialize(keras.layers.serialize(tokenizer))
        for other in (rebuilt, restored):
            self.assertEqual(other(["the lazy dogs"]).to_list(), tokenizer(["the lazy dogs"]).to_list())

    def test_in_tf_data(self):
        tokenizer = WordPieceTokenizer(VOCABULARY)
        ds = tf.data.Dataset.from_tensor_slices(["the fox", "lazy dog jumps"]).batch(2).map(tokenizer)
        (ids,) = list(ds)
        self.assertEqual(ids.to_list(), tokenizer(["the fox", "lazy dog jumps"]).to_list())


class LearnVocabularyTest(TestCase):
    def test_learned_vocabulary(self):
        corpus = tf.data.Dataset.from_tensor_slices(CORPUS)
        vocabulary = data.learn_vocabulary(corpus, 120, min_frequency=1)
        self.assertEqual(vocabulary[:5], SPECIALS)
        self.assertLessEqual(len(vocabulary), 120)
        self.assertGreater(len(vocabulary), 60)
        self.assertEqual(len(set(vocabulary)), len(vocabulary))
        self.assertIn("the", vocabulary)
        tokenizer = WordPieceTokenizer(vocabulary)
        ids = tokenizer(CORPUS[:4])
        # Every character of the corpus is in the vocabulary: no [UNK], and
        # detokenize gives back the normalized words.
        self.assertNotIn(special_tokens.UNK_ID, ids.flat_values.numpy())
        self.assertTrue(np.all(ids.flat_values.numpy() >= special_tokens.NUM_SPECIAL_TOKENS))
        self.assertAllEqual(tokenizer.detokenize(ids)[0], b"the quick brown fox jumps over the lazy dog .")
        self.assertEqual(tokenizer.detokenize(ids)[2].numpy()[:15], b"resume of the c")
        # A smaller size gives a smaller vocabulary, within the bound.
        small = data.learn_vocabulary(corpus, 70, min_frequency=1)
        self.assertLessEqual(len(small), 70)
        self.assertLess(len(small), len(vocabulary))
        self.assertEqual(small[:5], SPECIALS)

    def test_special_tokens_and_characters_in_both_methods(self):
        corpus = tf.data.Dataset.from_tensor_slices(CORPUS)
        for method in data.vocabulary.METHODS:
            vocabulary = data.learn_vocabulary(corpus, 150, min_frequency=1, method=method)
            tokenizer = WordPieceTokenizer(vocabulary)  # FastWordpieceTokenizer loads it
            self.assertEqual(vocabulary[:5], SPECIALS, method)
            for token, id in [
                (special_tokens.PAD_TOKEN, special_tokens.PAD_ID),
                (special_tokens.UNK_TOKEN, special_tokens.UNK_ID),
                (special_tokens.CLS_TOKEN, special_tokens.CLS_ID),
                (special_tokens.SEP_TOKEN, special_tokens.SEP_ID),
                (special_tokens.MASK_TOKEN, special_tokens.MASK_ID),
            ]:
                self.assertEqual(tokenizer.token_to_id(token), id)
            # Every character both as a word start and as a continuation.
            characters = {t for t in vocabulary[5:] if len(t) == 1}
            self.assertEqual({t[2:] for t in vocabulary if t.startswith("##") and len(t) == 3}, characters)
            # The tokenizer's normalization: lowercase, accents stripped.
            self.assertIn("e", characters)
            self.assertFalse(characters & set("RTAÉéï"), method)
            ids = tokenizer(["RÉSUMÉ OF THE NAÏVE CAFÉ", "pieces, characters; words!"])
            self.assertNotIn(special_tokens.UNK_ID, ids.flat_values.numpy(), method)
            with self.subTest(method=method):
                self.assertLen(vocabulary, len(set(vocabulary)))

    def test_cased_vocabulary(self):
        corpus = tf.data.Dataset.from_tensor_slices(CORPUS)
        vocabulary = data.learn_vocabulary(corpus, 200, lowercase=False, min_frequency=1)
        self.assertIn("T", vocabulary)
        self.assertIn("é", vocabulary)
        tokenizer = WordPieceTokenizer(vocabulary, lowercase=False)
        ids = tokenizer(tf.constant(CORPUS[:4])).flat_values.numpy()
        self.assertNotIn(special_tokens.UNK_ID, ids)

    def test_reads_the_whole_corpus_unless_told(self):
        # A character seen only after the first 100,000 texts.
        texts = ["the cat sat"] * 100_000 + ["zq quiz"] * 3
        corpus = tf.data.Dataset.from_tensor_slices(texts)
        vocabulary = data.learn_vocabulary(corpus, 100)
        self.assertIn("z", vocabulary)
        self.assertIn("##q", vocabulary)
        tokenizer = WordPieceTokenizer(vocabulary)
        self.assertNotIn(special_tokens.UNK_ID, tokenizer(["zq quiz"]).flat_values.numpy())
        first = data.learn_vocabulary(corpus, 100, max_texts=100_000)
        self.assertNotIn("z", first)
        self.assertIn(special_tokens.UNK_ID, WordPieceTokenizer(first)(["zq"]).flat_values.numpy())
        with self.assertRaisesRegex(ValueError, "max_texts must be a positive int"):
            data.learn_vocabulary(corpus, 100, max_texts=0)

    def test_deterministic(self):
        texts = [
            f"{w} of the {v}s"
            for w in ("module", "function", "class", "method")
            for v in ("value", "object", "string", "file")
        ]
        corpus = tf.data.Dataset.from_tensor_slices(texts * 3 + CORPUS)
        first = data.learn_vocabulary(corpus, 120, min_frequency=1)
        for _ in range(3):
            self.assertEqual(data.learn_vocabulary(corpus, 120, min_frequency=1), first)

    def test_unknown_method(self):
        corpus = tf.data.Dataset.from_tensor_slices(CORPUS)
        with self.assertRaisesRegex(ValueError, "unknown method 'bpe'.*tokenizers, tensorflow_text"):
            data.learn_vocabulary(corpus, 100, method="bpe")

    def test_labeled_and_pair_data_sets(self):
        pairs = tf.data.Dataset.from_tensor_slices(((CORPUS[:4], CORPUS[4:8]), [0, 1, 0, 1]))
        self.assertLen(list(data.texts_only(pairs)), 8)
        vocabulary = data.learn_vocabulary(pairs, 200, min_frequency=1)
        self.assertEqual(vocabulary[:5], SPECIALS)

    def test_bad_input(self):
        blank = tf.data.Dataset.from_tensor_slices(["", "   "])
        with self.assertRaisesRegex(ValueError, "corpus is empty"):
            data.learn_vocabulary(blank, 100)
        with self.assertRaisesRegex(ValueError, "corpus is empty"):
            data.learn_vocabulary(tf.data.Dataset.from_tensor_slices(tf.constant([], tf.string)), 100)
        corpus = tf.data.Dataset.from_tensor_slices(CORPUS)
        with self.assertRaisesRegex(ValueError, "vocabulary_size must be an integer > 5"):
            data.learn_vocabulary(corpus, 5)
        with self.assertRaisesRegex(ValueError, "too small for this corpus.*Raise vocabulary_size"):
            data.learn_vocabulary(corpus, 20)
        with self.assertRaisesRegex(ValueError, "holds no strings"):
            data.learn_vocabulary(tf.data.Dataset.range(3), 100)


class MiniBERTPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.tokenizer = WordPieceTokenizer(VOCABULARY)

    def ids(self, *tokens):
        return ids_of(self.tokenizer, tokens)

    def test_single_segment(self):
        preprocessor = MiniBERTPreprocessor(self.tokenizer, sequence_length=8)
        x = preprocessor(["the fox jumps", "lazy dog"])
        self.assertEqual(set(x), {"token_ids", "segment_ids", "padding_mask"})
        for value in x.values():
            self.assertEqual(value.shape, (2, 8))
            self.assertEqual(value.dtype, tf.int32)
        cls, sep, pad = special_tokens.CLS_ID, special_tokens.SEP_ID, special_tokens.PAD_ID
        self.assertAllEqual(
            x["token_ids"],
            [
                [cls] + self.ids("the", "fox", "jump", "##s") + [sep, pad, pad],
                [cls] + self.ids("lazy", "dog") + [sep, pad, pad, pad, pad],
            ],
        )
        self.assertAllEqual(x["segment_ids"], np.zeros((2, 8)))
        self.assertAllEqual(x["padding_mask"], [[1] * 6 + [0] * 2, [1] * 4 + [0] * 4])
        # A scalar string gives one unbatched example.
        single = preprocessor("lazy dog")
        self.assertAllEqual(single["token_ids"], x["token_ids"][1])

    def test_pair_segments(self):
        preprocessor = MiniBERTPreprocessor(self.tokenizer, sequence_length=10)
        x = preprocessor((["the fox", "dog"], ["lazy dog", "the quick brown fox"]))
        cls, sep, pad = special_tokens.CLS_ID, special_tokens.SEP_ID, special_tokens.PAD_ID
        self.assertAllEqual(
            x["token_ids"],
            [
                [cls] + self.ids("the", "fox") + [sep] + self.ids("lazy", "dog") + [sep, pad, pad, pad],
                [cls] + self.ids("dog") + [sep] + self.ids("the", "quick", "brown", "fox") + [sep, pad, pad],
            ],
        )
        self.assertAllEqual(x["segment_ids"], [[0, 0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]])
        self.assertAllEqual(x["padding_mask"], [[1] * 7 + [0] * 3, [1] * 8 + [0] * 2])

    def test_truncation(self):
        preprocessor = MiniBERTPreprocessor(self.tokenizer, sequence_length=6)
        long = "the quick brown fox jumps over"
        x = preprocessor([long])
        cls, sep = special_tokens.CLS_ID, special_tokens.SEP_ID
        self.assertAllEqual(x["token_ids"], [[cls] + self.ids("the", "quick", "brown", "fox") + [sep]])
        self.assertAllEqual(x["padding_mask"], [[1] * 6])
        # Pairs: tokens come off the longer segment first (BERT's rule).
        x = preprocessor(([long], ["dog"]))
        self.assertAllEqual(x["token_ids"], [[cls] + self.ids("the", "quick") + [sep] + self.ids("dog") + [sep]])
        self.assertAllEqual(x["segment_ids"], [[0, 0, 0, 0, 1, 1]])

    def test_no_truncation_raises(self):
        preprocessor = MiniBERTPreprocessor(self.tokenizer, sequence_length=6, truncate=False)
        ok = preprocessor(["the quick brown fox"])  # exactly 6 with [CLS], [SEP]
        self.assertAllEqual(ok["padding_mask"], [[1] * 6])
        message = r"longer than sequence_length=6.*truncate=True"
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
            preprocessor(["the fox", "the quick brown fox jumps"])
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
            preprocessor((["the fox"], ["lazy dog"]))
        ds = tf.data.Dataset.from_tensor_slices(["the fox", "the quick brown fox jumps"]).batch(2).map(preprocessor)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
            list(ds)

    def test_in_tf_data_static_shapes(self):
        preprocessor = MiniBERTPreprocessor(self.tokenizer, sequence_length=8)
        pairs = tf.data.Dataset.from_tensor_slices((["the fox"] * 5, ["dog"] * 5))
        ds = pairs.batch(2, drop_remainder=True).map(lambda a, b: preprocessor((a, b)))
        self.assertEqual(ds.element_spec["token_ids"].shape, (2, 8))
        batches = list(ds)
        self.assertLen(batches, 2)
        eager = preprocessor((["the fox"] * 2, ["dog"] * 2))
        self.assertAllEqual(batches[0]["segment_ids"], eager["segment_ids"])

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "sequence_length must be an integer >= 2"):
            MiniBERTPreprocessor(self.tokenizer, 1)
        with self.assertRaisesRegex(ValueError, "tokenizer must be"):
            MiniBERTPreprocessor(keras.layers.Dense(2), 8)
        preprocessor = MiniBERTPreprocessor(self.tokenizer, 8)
        with self.assertRaisesRegex(ValueError, "one segment or a pair"):
            preprocessor((["a"], ["b"], ["c"]))
        with self.assertRaisesRegex(ValueError, "takes strings"):
            preprocessor(tf.constant([1, 2]))
        with self.assertRaisesRegex(ValueError, "1-D string tensor"):
            preprocessor(tf.constant([["a", "b"]]))
        with self.assertRaisesRegex(ValueError, "no room for a pair"):
            MiniBERTPreprocessor(self.tokenizer, 2)((["a"], ["b"]))

    def test_config_and_saving(self):
        preprocessor = MiniBERTPreprocessor(self.tokenizer, sequence_length=8, truncate=False, name="preprocessor")
        rebuilt = self.run_config_roundtrip(preprocessor)
        self.assertEqual(rebuilt.tokenizer.get_vocabulary(), VOCABULARY)
        self.assertFalse(rebuilt.truncate)
        texts = ["the lazy dog jumps", "quick fox"]
        self.assertAllEqual(rebuilt(texts)["token_ids"], preprocessor(texts)["token_ids"])
        # Saved inside a model, the vocabulary travels in the .keras file.
        model = _PackingModel(preprocessor)
        restored = self.run_saving(model, tf.constant(texts), call=lambda m, x: m(x))
        self.assertEqual(restored.preprocessor.tokenizer.get_vocabulary(), VOCABULARY)
        self.assertEqual(restored.preprocessor.sequence_length, 8)


@keras.saving.register_keras_serializable(package="keras_pt_tests")
class _PackingModel(keras.Model):
    """A model over raw strings: packs them and embeds the token ids."""

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        self.preprocessor = preprocessor
        size = preprocessor.tokenizer.vocabulary_size()
        self.embedding = keras.layers.Embedding(size, 3, name="embedding")

    def build(self, input_shape):
        self.embedding.build((None, self.preprocessor.sequence_length))

    def call(self, strings):
        x = self.preprocessor(strings)
        return self.embedding(x["token_ids"]) * keras.ops.cast(x["padding_mask"], "float32")[..., None]

    def get_config(self):
        return {**super().get_config(), "preprocessor": keras.layers.serialize(self.preprocessor)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        return cls(**config)
