"""TF-IDF baselines of the text tables: against scikit-learn directly, and their rows."""

import numpy as np
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from keras_pt import data, recipes
from keras_pt.evaluation import retrieval_accuracy, text_baselines
from tests.test_case import TestCase

TOPICS = {
    0: ["file", "path", "directory", "read", "write", "open"],
    1: ["thread", "lock", "process", "queue", "worker", "wait"],
    2: ["socket", "request", "response", "header", "server", "client"],
}


def corpus(n_per_class, seed):
    """Short texts of topic words among shared filler words, and their labels."""
    rng = np.random.RandomState(seed)
    filler = ["the", "a", "return", "given", "object", "value", "if", "is"]
    texts, labels = [], []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            tokens = list(rng.choice(words, 2)) + list(rng.choice(filler, 4))
            rng.shuffle(tokens)
            texts.append(" ".join(tokens))
            labels.append(label)
    return texts, np.array(labels)


class TfidfSVMTest(TestCase):
    def test_matches_scikit_learn(self):
        train, train_labels = corpus(8, seed=0)
        test, test_labels = corpus(30, seed=1)
        expected = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC(random_state=0)).fit(
            train, train_labels
        )
        expected_accuracy = float(np.mean(expected.predict(test) == test_labels))
        accuracy = text_baselines.tfidf_svm_accuracy(train, train_labels, test, test_labels)
        self.assertEqual(accuracy, expected_accuracy)
        self.assertGreater(accuracy, 0.8)  # the topic words decide
        # From labelled tf.data data sets, as the recipes hold them.
        as_dataset = text_baselines.tfidf_svm_accuracy(
            tf.data.Dataset.from_tensor_slices((train, train_labels.astype(np.int32))),
            None,
            tf.data.Dataset.from_tensor_slices((test, test_labels.astype(np.int32))),
            None,
        )
        self.assertEqual(as_dataset, expected_accuracy)

    def test_sentence_pairs(self):
        a, _ = corpus(5, seed=2)
        b, _ = corpus(5, seed=3)
        pairs = list(zip(a, b, strict=True))
        features = text_baselines.TfidfFeatures().fit(pairs)
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(a + b)
        va, vb = vectorizer.transform(a), vectorizer.transform(b)
        expected = np.hstack([va.toarray(), vb.toarray(), va.multiply(vb).toarray()])
        self.assertAllClose(features.transform(pairs).toarray(), expected)
        labels = np.arange(len(pairs)) % 2
        dataset = tf.data.Dataset.from_tensor_slices(((a, b), labels.astype(np.int32)))
        texts, got_labels = text_baselines.texts_and_labels(dataset)
        self.assertEqual(texts, pairs)
        self.assertAllEqual(got_labels, labels)
        accuracy = text_baselines.tfidf_svm_accuracy(pairs, labels, pairs, labels)
        self.assertEqual(accuracy, 1.0)  # a linear SVM separates its own training pairs

    def test_bad_labels(self):
        with self.assertRaisesRegex(ValueError, "at least two classes"):
            text_baselines.TfidfSVM().fit(["a b", "c d"], [1, 1])

    def test_mean_and_sd(self):
        self.assertEqual(text_baselines.mean_and_sd([0.5]), (0.5, 0.0))
        mean, sd = text_baselines.mean_and_sd([0.6, 0.7, 0.8])
        self.assertAllClose([mean, sd], [0.7, np.std([0.6, 0.7, 0.8], ddof=1)])

    def test_retrieval_matches_direct_computation(self):
        queries, _ = corpus(6, seed=4)
        candidates = [q + " extra words" for q in queries]
        vectorizer = TfidfVectorizer().fit(queries + candidates)
        expected = retrieval_accuracy(
            vectorizer.transform(queries).toarray(), vectorizer.transform(candidates).toarray(), 6, seed=1
        )
        self.assertEqual(text_baselines.tfidf_retrieval_accuracy(queries, candidates, 6, seed=1), expected)


class RecipeBaselineTest(TestCase):
    def test_stdlib_docs_draws_and_rows(self):
        data_dir = self.get_temp_dir()
        result = recipes.tfidf_svm_baseline("stdlib_docs", data_dir, 3, seed=5, draws=3)
        self.assertEqual(result["seeds"], [5, 6, 7])
        self.assertLen(result["draws"], 3)
        self.assertEqual(result["test"], result["draws"][0])
        # The first draw is the recipe's: labeled_text_subset with its seed.
        train = data.load_text_dataset("stdlib_docs", "train", data_dir)
        labelled = data.labeled_text_subset(train, 3, seed=5, num_classes=10)
        texts, labels = text_baselines.texts_and_labels(labelled)
        self.assertLen(texts, 30)
        test_texts, test_labels = text_baselines.texts_and_labels(
            data.load_text_dataset("stdlib_docs", "test", data_dir)
        )
        expected = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC(random_state=0)).fit(
            texts, labels
        )
        self.assertEqual(result["test"], float(np.mean(expected.predict(test_texts) == test_labels)))
        self.assertGreater(result["test"], 0.2)  # above chance (0.1) with 3 labels per class
        reused = recipes.tfidf_svm_baseline("stdlib_docs", data_dir, 3, seed=5, draws=1, labelled=labelled)
        self.assertEqual(reused["test"], result["test"])

        # The rows of the fine-tuning and distillation tables.
        finetune = recipes.FinetuneResult(
            accuracy={"pretrained": 0.5, "from_scratch": 0.4},
            validation_accuracy={"pretrained": 0.5, "from_scratch": 0.4},
            epochs={"pretrained": 2, "from_scratch": 3},
            num_labels=30,
            seconds=1.0,
            files={},
            baselines={"tfidf_svm": result},
        )
        mean, sd = text_baselines.mean_and_sd(result["draws"])
        table = finetune.table()
        self.assertRegex(table, rf"tfidf_svm +{result['validation']:.3f} +{result['test']:.3f} +-")
        self.assertIn(f"tfidf_svm over 3 label draws (seeds 5-7): test {mean:.3f} ± {sd:.3f}", table)
        distill = recipes.DistillResult(
            accuracy={"teacher": 0.5, "distilled": 0.4, "alone": 0.3},
            validation_accuracy={"teacher": 0.5, "distilled": 0.4, "alone": 0.3},
            epochs={"distilled": 2, "alone": 3},
            parameters={"teacher": 100, "student": 10},
            num_labels=30,
            num_transfer=100,
            seconds=1.0,
            files={},
            baselines={"tfidf_svm": result},
        )
        self.assertRegex(distill.table(), rf"tfidf_svm +- +{result['validation']:.3f} +{result['test']:.3f}")
        # One draw: no spread row.
        one = dict(result, draws=result["draws"][:1], seeds=result["seeds"][:1])
        single = recipes.FinetuneResult(**dict(vars(finetune), baselines={"tfidf_svm": one}))
        self.assertIn("tfidf_svm ", single.table())
        self.assertNotIn("label draws", single.table())
        # Without baselines, the tables are as before.
        self.assertNotIn("tfidf", recipes.FinetuneResult(**dict(vars(finetune), baselines={})).table())

    def test_sentence_embedding_rows(self):
        result = recipes.SentenceEmbeddingResult(
            accuracy=0.6,
            untrained_accuracy=0.2,
            tfidf_accuracy=0.55,
            chance=0.125,
            num_candidates=8,
            num_pairs=40,
            examples=[],
            seconds=1.0,
            files={},
        )
        table = result.table("supervised embeddings")
        self.assertRegex(table, r"supervised embeddings +0\.600")
        self.assertRegex(table, r"TF-IDF cosine +0\.550")
        self.assertRegex(table, r"chance \(1/8\) +0\.125")
