"""MiniBERT recipes: saving with the vocabulary, the strings-in SavedModel
export, the learning-rate schedule, the unigram baseline, vocabulary
trimming, and the two example binaries run in their own processes."""

import os
import uuid
import pytest

import numpy as np
import tensorflow as tf

from keras_pt import MiniBERT, data, export, recipes, schedules
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens
from keras_pt.models.mini_bert_classifier import MiniBERTClassifier
from tests.binaries import run_in_process
from keras_pt.recipes.context import load_model
from tests.test_case import TestCase


TEXTS = [
    "Return the logger with the given name.",
    "Create a new event loop and set it as the current one.",
    "Parse an email message from a bytes object.",
    "Send an HTTP request and return the response.",
    "Import a module by its dotted name.",
    "Start a worker process and wait for it to finish.",
    "Run the test case and collect the result.",
    "Parse an XML document into an element tree.",
]
PAIRS = (TEXTS[:4], TEXTS[4:])


def tiny_preprocessor(sequence_length=24):
    texts = tf.data.Dataset.from_tensor_slices(TEXTS * 3)
    vocabulary = data.learn_vocabulary(texts, 200, min_frequency=1)
    return MiniBERTPreprocessor(WordPieceTokenizer(vocabulary), sequence_length)


def tiny_minibert(preprocessor, seed=1):
    return MiniBERT(
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=preprocessor.sequence_length,
        preprocessor=preprocessor,
        seed=seed,
    )


class SavingTest(TestCase):
    def test_minibert_keras_roundtrip_keeps_the_vocabulary(self):
        preprocessor = tiny_preprocessor()
        model = tiny_minibert(preprocessor)
        strings = np.array(TEXTS[:3])
        restored = self.run_saving(model, strings)  # no custom_objects
        self.assertEqual(
            restored.preprocessor.tokenizer.get_vocabulary(),
            preprocessor.tokenizer.get_vocabulary(),
        )
        self.assertEqual(restored.preprocessor.sequence_length, preprocessor.sequence_length)
        self.assertAllOutputsClose(
            model.encoder(preprocessor(strings)), restored.encoder(restored.preprocessor(strings))
        )

    @pytest.mark.slow
    def test_classifier_keras_roundtrip_on_raw_strings(self):
        preprocessor = tiny_preprocessor()
        classifier = MiniBERTClassifier(tiny_minibert(preprocessor), num_classes=3, preprocessor=preprocessor)
        classifier.compile(optimizer="adam")
        labels = np.arange(8, dtype=np.int32) % 3
        classifier.fit(preprocessor(np.array(TEXTS)), labels, batch_size=4, epochs=1, verbose=0)
        strings = np.array(TEXTS[:5])
        restored = self.run_saving(classifier, strings)
        self.assertEqual(
            restored.preprocessor.tokenizer.get_vocabulary(),
            preprocessor.tokenizer.get_vocabulary(),
        )

    @pytest.mark.slow
    def test_savedmodel_export_takes_raw_strings(self):
        preprocessor = tiny_preprocessor()
        classifier = MiniBERTClassifier(tiny_minibert(preprocessor), num_classes=4, preprocessor=preprocessor)
        path = export.export_text_classifier(classifier, os.path.join(self.get_temp_dir(), "export"))
        served = tf.saved_model.load(path)
        strings = tf.constant(TEXTS[:5] + ["words never seen: zyzzyva quux"])
        probabilities = served.serve(strings)["probabilities"].numpy()
        self.assertEqual(probabilities.shape, (6, 4))
        self.assertAllClose(probabilities.sum(axis=1), np.ones(6), atol=1e-5)
        expected = tf.nn.softmax(classifier(preprocessor(strings))).numpy()
        self.assertAllClose(probabilities, expected, atol=1e-5)
        signature = served.signatures["serving_default"]
        (spec,) = signature.structured_input_signature[1].values()
        self.assertEqual((spec.dtype, spec.shape.as_list()), (tf.string, [None]))
        self.assertAllClose(signature(text=strings)["probabilities"], probabilities, atol=1e-6)

    @pytest.mark.slow
    def test_savedmodel_export_of_sentence_pairs(self):
        preprocessor = tiny_preprocessor()
        classifier = MiniBERTClassifier(tiny_minibert(preprocessor), num_classes=2, preprocessor=preprocessor)
        path = export.export_text_classifier(
            classifier, os.path.join(self.get_temp_dir(), "pairs"), sentence_pairs=True
        )
        served = tf.saved_model.load(path)
        a, b = (tf.constant(x) for x in PAIRS)
        probabilities = served.serve(a, b)["probabilities"].numpy()
        expected = tf.nn.softmax(classifier(preprocessor((a, b)))).numpy()
        self.assertAllClose(probabilities, expected, atol=1e-5)

    def test_export_needs_a_preprocessor(self):
        classifier = MiniBERTClassifier(
            MiniBERT(vocabulary_size=50, num_layers=1, hidden_dim=16, num_heads=2, max_sequence_length=8),
            num_classes=2,
        )
        with self.assertRaisesRegex(ValueError, "has no preprocessor"):
            export.export_text_classifier(classifier, self.get_temp_dir())


class PiecesTest(TestCase):
    def test_warmup_linear_decay_against_numpy(self):
        schedule = schedules.WarmupLinearDecay(2e-3, total_steps=100, warmup_steps=10)
        steps = np.array([0, 1, 5, 10, 11, 55, 99, 100, 150])
        expected = 2e-3 * np.clip(np.minimum(steps / 10, (100 - steps) / 90), 0, 1)
        got = [float(schedule(step)) for step in steps]
        self.assertAllClose(got, expected, rtol=1e-5)
        rebuilt = schedules.WarmupLinearDecay.from_config(schedule.get_config())
        self.assertAllClose(float(rebuilt(42)), float(schedule(42)))
        with self.assertRaisesRegex(ValueError, "warmup_steps <= total_steps"):
            schedules.WarmupLinearDecay(1e-3, total_steps=10, warmup_steps=11)

    def test_unigram_baseline_counts_ordinary_tokens(self):
        preprocessor = tiny_preprocessor(sequence_length=16)
        train = tf.data.Dataset.from_tensor_slices(["a a a b", "b c a", "the the the the the"])
        heldout = tf.data.Dataset.from_tensor_slices(["the a", "b b"])
        token, accuracy = recipes.unigram_baseline(preprocessor, train, heldout)
        # Hand count of the same pieces: ids >= 5 on real positions.
        tokenizer = preprocessor.tokenizer
        train_ids = np.concatenate([tokenizer(t).numpy() for t in ["a a a b", "b c a", "the the the the the"]])
        top = np.bincount(train_ids[train_ids >= special_tokens.NUM_SPECIAL_TOKENS]).argmax()
        held = np.concatenate([tokenizer(t).numpy() for t in ["the a", "b b"]])
        held = held[held >= special_tokens.NUM_SPECIAL_TOKENS]
        self.assertEqual(token, tokenizer.id_to_token(int(top)))
        self.assertAllClose(accuracy, np.mean(held == top))

    def test_finetune_splits(self):
        self.assertEqual(recipes.finetune_splits("stdlib_docs"), ("train", "validation", "test"))
        self.assertEqual(recipes.finetune_splits("imdb_reviews"), ("train[:90%]", "train[90%:]", "test"))
        self.assertEqual(recipes.finetune_splits("glue/mrpc"), ("train[:95%]", "train[95%:]", "validation"))
        with self.assertRaisesRegex(ValueError, "unknown text data set"):
            recipes.finetune_splits("nope")


class VocabularyTrimTest(TestCase):
    def test_overshoot_is_trimmed_keeping_every_character(self):
        texts = tf.data.Dataset.from_tensor_slices(TEXTS * 2)
        for method in data.vocabulary.METHODS:
            full = data.learn_vocabulary(texts, 10_000, min_frequency=1, method=method)
            # tensorflow_text: the one-pass vocabulary overshoots by 3 and is
            # trimmed; tokenizers: fewer merges are kept.
            size = len(full) - 3
            trimmed = data.learn_vocabulary(texts, size, min_frequency=1, method=method)
            self.assertLessEqual(len(trimmed), size)
            self.assertGreaterEqual(len(trimmed), int(0.95 * size))
            singles = {t for t in full if len(t.removeprefix("##")) == 1}
            self.assertTrue(singles <= set(trimmed))
            # Every text is still spelled without [UNK].
            ids = WordPieceTokenizer(trimmed)(tf.constant(TEXTS)).flat_values.numpy()
            self.assertNotIn(special_tokens.UNK_ID, ids)

    def test_too_small_for_the_characters(self):
        texts = tf.data.Dataset.from_tensor_slices(TEXTS)
        with self.assertRaisesRegex(ValueError, "too small for this corpus.*Raise vocabulary_size"):
            data.learn_vocabulary(texts, 30, min_frequency=1)


class ExamplesTest(TestCase):
    @pytest.mark.slow
    def test_pretrain_then_finetune_binaries_on_a_ram_filesystem(self):
        # In one process, so TensorFlow's in-memory filesystem holds every
        # file from one binary to the next: nothing goes through os.path.
        model_dir = f"ram://bert-binaries-{uuid.uuid4().hex}"
        pretrain_dir = f"{model_dir}/pretrain"
        proc = run_in_process(
            "pretrain_minibert.py",
            f"--model_dir={pretrain_dir}",
            "--steps=2",
            "--sequence_length=32",
            "--batch_size=8",
            "--vocabulary_size=8192",
            "--strategy=default",
            "--verbose=0",
        )
        code, stdout, stderr = proc
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertRegex(stdout, r"Held-out masked-LM accuracy \d\.\d{3} .*unigram baseline \d\.\d{3}")
        model_path = f"{pretrain_dir}/mini_bert.keras"
        self.assertTrue(tf.io.gfile.exists(model_path + ".sha256"))
        self.assertTrue(tf.io.gfile.listdir(f"{pretrain_dir}/logs/pretrain"))
        with tf.io.gfile.GFile(f"{pretrain_dir}/vocabulary.txt") as f:
            self.assertEqual(f.read().split("\n")[:5], list(special_tokens.SPECIAL_TOKENS))

        finetune_dir = f"{model_dir}/finetune"
        proc = run_in_process(
            "finetune_minibert.py",
            f"--pretrained={model_path}",
            f"--model_dir={finetune_dir}",
            "--labels_per_class=2",
            "--batch_size=4",
            "--epochs=1",
            "--steps_per_epoch=2",
            "--strategy=default",
            "--verbose=0",
        )
        code, stdout, stderr = proc
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertRegex(stdout, r"Test accuracy: pre-trained \d\.\d{3}, from scratch \d\.\d{3}")
        # The TF-IDF baseline rows: the run's label draw, then 5 draws.
        self.assertRegex(stdout, r"tfidf_svm +\d\.\d{3} +\d\.\d{3} +-")
        self.assertRegex(stdout, r"tfidf_svm over 5 label draws \(seeds 0-4\): test \d\.\d{3} ± \d\.\d{3}")
        self.assertRegex(stdout, r"TF-IDF \+ linear SVM on the same labels: \d\.\d{3}")
        self.assertTrue(tf.io.gfile.exists(f"{finetune_dir}/classifier.keras"))
        for name in ("pretrained", "from_scratch"):
            self.assertTrue(tf.io.gfile.listdir(f"{finetune_dir}/logs/train/{name}"))
        served = tf.saved_model.load(f"{finetune_dir}/export")
        probabilities = served.serve(tf.constant(TEXTS[:2]))["probabilities"].numpy()
        self.assertEqual(probabilities.shape, (2, 10))

        distill_dir = f"{model_dir}/distill"
        proc = run_in_process(
            "distill.py",
            f"--teacher={finetune_dir}/classifier.keras",
            f"--model_dir={distill_dir}",
            "--labels_per_class=2",
            "--batch_size=4",
            "--epochs=1",
            "--steps_per_epoch=2",
            "--student_hidden_dim=16",
            "--strategy=default",
            "--verbose=0",
        )
        code, stdout, stderr = proc
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertRegex(
            stdout,
            r"Test accuracy: teacher \d\.\d{3}, distilled student \d\.\d{3}, student alone \d\.\d{3}",
        )
        self.assertRegex(stdout, r"tfidf_svm +- +\d\.\d{3} +\d\.\d{3} +-")
        self.assertRegex(stdout, r"tfidf_svm over 5 label draws")
        student = load_model(f"{distill_dir}/student.keras")
        self.assertEqual(student.predict(TEXTS[:2], verbose=0).shape, (2, 10))
        for name in ("distilled", "alone"):
            self.assertTrue(tf.io.gfile.listdir(f"{distill_dir}/logs/train/{name}"))

    def test_bad_preset(self):
        code, _, stderr = run_in_process("pretrain_minibert.py", "--preset=huge", f"--model_dir={self.get_temp_dir()}")
        self.assertEqual(code, 1)
        self.assertIn("preset", stderr)

    def test_missing_vocabulary_file(self):
        with self.assertRaisesRegex(ValueError, "vocabulary file .* does not exist"):
            recipes.pretrain_minibert(
                data_dir=self.get_temp_dir(),
                model_dir=self.get_temp_dir(),
                vocabulary=os.path.join(self.get_temp_dir(), "missing.txt"),
                steps=1,
                strategy="default",
            )
