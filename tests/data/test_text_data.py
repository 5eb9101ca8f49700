import functools
import hashlib
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pt import data
from keras_pt.data import stdlib_docs
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens
from tests.test_case import TestCase


@functools.lru_cache(maxsize=None)
def stdlib_data_dir():
    """A TFDS data_dir with stdlib_docs built once per test session."""
    data_dir = tempfile.mkdtemp(prefix="stdlib_docs_")
    tfds.builder("stdlib_docs", data_dir=data_dir).download_and_prepare()
    return data_dir


def texts_of(dataset):
    return [t.decode() for t in dataset.as_numpy_iterator()]


def tiny_preprocessor(sequence_length=16):
    corpus = tf.data.Dataset.from_tensor_slices(["abcdefghij klmnopqrst uvwxyz the a an"] * 3)
    vocabulary = data.learn_vocabulary(corpus, 200, min_frequency=1)
    return MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), sequence_length)


class StdlibDocsTest(TestCase):
    def test_builder_splits_and_classes(self):
        builder = tfds.builder("stdlib_docs", data_dir=stdlib_data_dir())
        info = builder.info
        self.assertEqual(set(info.splits.keys()), {"train", "validation", "test", "unsupervised"})
        self.assertEqual(info.features["label"].names, list(stdlib_docs.CLASS_NAMES))
        self.assertEqual(info.features["label"].num_classes, 10)
        sizes = {name: info.splits[name].num_examples for name in info.splits.keys()}
        labeled = sizes["train"] + sizes["validation"] + sizes["test"]
        self.assertGreater(labeled, 1000)
        self.assertGreater(sizes["unsupervised"], 1000)
        # The hash split gives ~70/10/20.
        self.assertAllClose(
            [sizes["train"] / labeled, sizes["validation"] / labeled, sizes["test"] / labeled],
            [0.7, 0.1, 0.2],
            atol=0.05,
        )
        splits = {}
        for split in ("train", "validation", "test", "unsupervised"):
            examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
            splits[split] = examples
            for ex in examples[:200]:
                text, module = ex["text"].decode(), ex["module"].decode()
                self.assertGreaterEqual(len(text), 40)
                self.assertLessEqual(len(text), 512)
                # The split is a stable function of the text and module.
                self.assertEqual(stdlib_docs.split_of(text, module), split)
                top = module.split(".")[0]
                expected = stdlib_docs.CLASS_NAMES.index(top) if split != "unsupervised" else -1
                self.assertEqual(ex["label"], expected)
        counts = np.bincount([ex["label"] for ex in splits["train"]], minlength=10)
        self.assertTrue(np.all(counts >= 50), counts)
        self.assertTrue(np.all(np.bincount([ex["label"] for ex in splits["test"]], minlength=10) >= 10))
        # Texts are unique across splits: no test text in any other split.
        test_texts = {ex["text"] for ex in splits["test"]}
        for split in ("train", "validation", "unsupervised"):
            self.assertFalse(test_texts & {ex["text"] for ex in splits[split]})
        # The unsupervised split has the other modules and the reference topics.
        modules = {ex["module"].decode().split(".")[0] for ex in splits["unsupervised"]}
        self.assertIn("pydoc_data", modules)
        self.assertFalse(modules & set(stdlib_docs.CLASS_NAMES))
        self.assertEqual(builder.info.metadata["python_version"].split(".")[0], "3")

    def test_harvest_is_deterministic(self):
        first, second = stdlib_docs.harvest(), stdlib_docs.harvest()
        self.assertEqual(first, second)
        names = [r["name"] for r in first["records"]]
        self.assertIn("json.dumps", names)
        self.assertFalse([n for n in names if n.split(".")[0] in ("antigravity", "this", "tkinter", "idlelib")])

    def test_split_of_is_a_stable_hash(self):
        text = "Return the sum of a and b, computed carefully."
        bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % 10
        expected = "test" if bucket < 2 else "validation" if bucket == 2 else "train"
        self.assertEqual(stdlib_docs.split_of(text, "asyncio.tasks"), expected)
        self.assertEqual(stdlib_docs.split_of(text, "json.decoder"), "unsupervised")

    def test_load_text_dataset_and_pretraining_texts(self):
        data_dir = stdlib_data_dir()
        train = data.load_text_dataset("stdlib_docs", "train", data_dir=data_dir)
        self.assertEqual(train.element_spec[0].dtype, tf.string)
        self.assertEqual(train.element_spec[1].dtype, tf.int32)
        text, label = next(iter(train))
        self.assertEqual(text.shape, ())
        self.assertBetween(int(label), 0, 9)
        self.assertEqual(data.text_dataset_spec("stdlib_docs").num_classes, 10)
        corpus = set(texts_of(data.load_pretraining_texts("stdlib_docs", data_dir=data_dir)))
        train_texts = {t.decode() for t, _ in train.as_numpy_iterator()}
        test_texts = {
            t.decode() for t, _ in data.load_text_dataset("stdlib_docs", "test", data_dir=data_dir).as_numpy_iterator()
        }
        self.assertTrue(train_texts <= corpus)
        self.assertFalse(test_texts & corpus)

    def test_stdlib_pipeline(self):
        data_dir = stdlib_data_dir()
        preprocessor = tiny_preprocessor(sequence_length=32)
        train = data.load_text_dataset("stdlib_docs", "train", data_dir=data_dir)
        batches = data.preprocess_text_dataset(train, preprocessor, 64, shuffle_seed=1)
        x, y = next(iter(batches))
        self.assertEqual(x["token_ids"].shape, (64, 32))
        self.assertEqual(y.shape, (64,))
        self.assertEqual(y.dtype, tf.int32)
        self.assertAllEqual(x["token_ids"][:, 0], [special_tokens.CLS_ID] * 64)
        # Same seed, same first batch; drop_remainder gives full batches only.
        again = next(iter(data.preprocess_text_dataset(train, preprocessor, 64, shuffle_seed=1)))
        self.assertAllEqual(again[1], y)
        num_train = int(train.cardinality())
        self.assertLen(list(data.preprocess_text_dataset(train, preprocessor, 100)), num_train // 100)
        texts = data.load_pretraining_texts("stdlib_docs", data_dir=data_dir)
        packed = next(iter(data.preprocess_text_dataset(texts, preprocessor, 8, repeat=True)))
        self.assertEqual(set(packed), {"token_ids", "segment_ids", "padding_mask"})


class MockTextDatasetsTest(TestCase):
    def test_single_text_tasks(self):
        preprocessor = tiny_preprocessor()
        with tfds.testing.mock_data(num_examples=12):
            for name in ("imdb_reviews", "glue/sst2"):
                ds = data.load_text_dataset(name, "train", data_dir=self.get_temp_dir())
                self.assertEqual(ds.element_spec[0].dtype, tf.string)
                x, y = next(iter(data.preprocess_text_dataset(ds, preprocessor, 4)))
                self.assertEqual(x["token_ids"].shape, (4, 16))
                self.assertAllEqual(x["segment_ids"], np.zeros((4, 16)))
                self.assertAllInSet(y.numpy(), [0, 1])
                texts = data.load_pretraining_texts(name, data_dir=self.get_temp_dir())
                self.assertEqual(texts.element_spec.dtype, tf.string)
            ds = data.load_text_dataset("glue/sst2", "validation", data_dir=self.get_temp_dir())
            self.assertLen(list(ds), 12)

    def test_sentence_pair_task(self):
        preprocessor = tiny_preprocessor()
        with tfds.testing.mock_data(num_examples=12):
            ds = data.load_text_dataset("glue/mrpc", "train", data_dir=self.get_temp_dir())
            (a, b), y = next(iter(ds))
            self.assertEqual((a.dtype, b.dtype, y.dtype), (tf.string, tf.string, tf.int32))
            x, y = next(iter(data.preprocess_text_dataset(ds, preprocessor, 4)))
            self.assertEqual(x["token_ids"].shape, (4, 16))
            # Each row: [CLS] a [SEP] with segment 0, then b [SEP] with segment 1.
            token_ids, segment_ids = x["token_ids"].numpy(), x["segment_ids"].numpy()
            for row, segments in zip(token_ids, segment_ids, strict=True):
                seps = np.flatnonzero(row == special_tokens.SEP_ID)
                self.assertLen(seps, 2)
                self.assertTrue(np.all(segments[: seps[0] + 1] == 0))
                self.assertTrue(np.all(segments[seps[0] + 1 : seps[1] + 1] == 1))
            texts = texts_of(data.load_pretraining_texts("glue/mrpc", data_dir=self.get_temp_dir()))
            self.assertLen(texts, 24)  # both sentences of each pair
            subset = data.labeled_text_subset(ds, 2, seed=0, num_classes=2)
            (a, b), y = next(iter(subset))
            self.assertEqual((a.dtype, b.dtype), (tf.string, tf.string))

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "unknown text data set 'imdb'.*stdlib_docs.*glue/sst2"):
            data.load_text_dataset("imdb", "train")
        with self.assertRaisesRegex(ValueError, r"includes \['test'\], which has no labels"):
            data.load_text_dataset("glue/sst2", "test")
        with self.assertRaisesRegex(ValueError, "unsupervised.*load_pretraining_texts"):
            data.load_text_dataset("stdlib_docs", "train+unsupervised")
        with self.assertRaisesRegex(ValueError, "is empty"):
            data.load_text_dataset("stdlib_docs", "test[:0]", data_dir=stdlib_data_dir())
        preprocessor = tiny_preprocessor()
        empty = tf.data.Dataset.from_tensor_slices((tf.constant([], tf.string), tf.constant([], tf.int32)))
        with self.assertRaisesRegex(ValueError, "empty"):
            data.preprocess_text_dataset(empty, preprocessor, 4)
        with self.assertRaisesRegex(ValueError, "empty"):
            data.preprocess_text_dataset(empty.filter(lambda x, y: True), preprocessor, 4)
        with self.assertRaisesRegex(ValueError, "empty"):
            data.labeled_text_subset(empty, 2)
        small = tf.data.Dataset.from_tensor_slices(["a b", "c"])
        with self.assertRaisesRegex(ValueError, "fewer than batch_size=4"):
            data.preprocess_text_dataset(small, preprocessor, 4)
        with self.assertRaisesRegex(ValueError, "takes a data set of texts"):
            data.preprocess_text_dataset(tf.data.Dataset.range(8), preprocessor, 4)


class LabeledTextSubsetTest(TestCase):
    def test_subset(self):
        texts = [f"text {i}" for i in range(30)]
        labels = np.arange(30) % 3
        ds = tf.data.Dataset.from_tensor_slices((texts, labels.astype("int32")))
        a = list(data.labeled_text_subset(ds, 4, seed=3, num_classes=3).as_numpy_iterator())
        b = list(data.labeled_text_subset(ds, 4, seed=3, num_classes=3).as_numpy_iterator())
        c = list(data.labeled_text_subset(ds, 4, seed=4, num_classes=3).as_numpy_iterator())
        self.assertEqual(np.bincount([y for _, y in a]).tolist(), [4, 4, 4])
        self.assertEqual(a, b)
        self.assertNotEqual([x for x, _ in a], [x for x, _ in c])
        # Every kept example keeps its own label.
        for x, y in a:
            self.assertEqual(int(x.decode().split()[1]) % 3, y)
        with self.assertRaisesRegex(ValueError, "class 0 has only 10 examples.*at_most=True"):
            data.labeled_text_subset(ds, 11, num_classes=3)

    def test_at_most_takes_all_of_a_small_class(self):
        labels = np.array([0] * 12 + [1] * 3 + [2] * 9, "int32")
        texts = [f"text {i} {y}" for i, y in enumerate(labels)]
        ds = tf.data.Dataset.from_tensor_slices((texts, labels))
        subset = list(data.labeled_text_subset(ds, 5, seed=1, at_most=True).as_numpy_iterator())
        self.assertEqual(np.bincount([y for _, y in subset]).tolist(), [5, 3, 5])
        for x, y in subset:
            self.assertEqual(int(x.decode().split()[2]), y)
