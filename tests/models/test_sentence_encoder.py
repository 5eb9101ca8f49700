"""Contrastive sentence embeddings: kernel, SentenceEncoder, pairs, retrieval, search."""

import json
import pytest

import numpy as np
import tensorflow as tf
import keras

from keras_pt import MiniBERT, MiniGPT, SentenceEncoder, data, evaluation
from keras_pt.kernels import contrastive
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens
from keras_pt.utils import NearestNeighborIndex
from tests import fixtures
from tests.test_case import TestCase

VOCABULARY = fixtures.TINY_VOCABULARY
V = len(VOCABULARY)


def numpy_info_nce(anchors, candidates, positives, temperature):
    a = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    c = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    logits = a @ c.T / temperature
    logits = logits - logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -log_p[np.arange(len(a)), positives], (log_p.argmax(1) == positives).astype(float)


def packed(batch=8, length=10, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(special_tokens.NUM_SPECIAL_TOKENS, V, size=(batch, length)).astype(np.int32)
    lengths = rng.integers(4, length + 1, size=batch)
    for b, n in enumerate(lengths):
        ids[b, 0], ids[b, n - 1], ids[b, n:] = special_tokens.CLS_ID, special_tokens.SEP_ID, 0
    mask = (ids != 0).astype(np.int32)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def tiny_embedder(dropout=0.0, pooling="mean", preprocessor=None, temperature=0.1, **kwargs):
    bert = MiniBERT(
        vocabulary_size=V,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=16,
        dropout=dropout,
    )
    return SentenceEncoder(bert.encoder, pooling=pooling, temperature=temperature, preprocessor=preprocessor, **kwargs)


class ContrastiveKernelTest(TestCase):
    def test_matches_numpy(self):
        rng = np.random.default_rng(0)
        for temperature in (0.05, 0.5, 2.0):
            a = rng.normal(size=(6, 5)).astype("float32")
            c = rng.normal(size=(12, 5)).astype("float32") * 3
            p = rng.integers(0, 12, size=6).astype("int32")
            out = contrastive.in_batch_contrastive_loss(a, c, p, temperature)
            loss, correct = numpy_info_nce(a.astype("float64"), c.astype("float64"), p, temperature)
            self.assertAllClose(out["loss"], loss, atol=1e-4, rtol=1e-4)
            self.assertAllEqual(out["correct"], correct)

    def test_scale_invariant_and_perfect_pairs(self):
        a = np.eye(4, dtype="float32")
        out = contrastive.in_batch_contrastive_loss(a, 5.0 * a, np.arange(4), 0.01)
        self.assertAllClose(out["loss"], np.zeros(4), atol=1e-6)
        self.assertAllEqual(out["correct"], np.ones(4))


class SentenceDataTest(TestCase):
    def test_sentence_pairs(self):
        texts = tf.data.Dataset.from_tensor_slices(
            [
                "Return the sum of two numbers. Both must be integers or floats!",
                "One sentence only, without an end mark",
                "Short. The remainder of this text is long enough.",
                "Open a file and return a stream?  Raise OSError upon failure.\n",
            ]
        )
        got = [(a.decode(), b.decode()) for a, b in data.sentence_pairs(texts).as_numpy_iterator()]
        self.assertEqual(
            got,
            [
                ("Return the sum of two numbers.", "Both must be integers or floats!"),
                ("Open a file and return a stream?", "Raise OSError upon failure."),
            ],
        )
        with self.assertRaisesRegex(ValueError, "min_chars"):
            data.sentence_pairs(texts, min_chars=0)

    def test_stdlib_pairs_and_packing(self):
        pairs = data.load_sentence_pairs("stdlib_docs", "test")
        first, rest = next(iter(pairs))
        text = next(
            t
            for t in data.load_pretraining_texts("stdlib_docs", "test").as_numpy_iterator()
            if t.decode().startswith(first.numpy().decode())
        )
        self.assertEqual(text.decode(), first.numpy().decode() + " " + rest.numpy().decode())
        preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(VOCABULARY), 12)
        batches = data.preprocess_sentence_pairs(pairs, preprocessor, 4)
        a, b = next(iter(batches))
        self.assertEqual(a["token_ids"].shape, (4, 12))
        self.assertEqual(b["token_ids"].shape, (4, 12))
        self.assertAllEqual(a["token_ids"][:, 0], [special_tokens.CLS_ID] * 4)
        with self.assertRaisesRegex(ValueError, "text_a, text_b"):
            data.preprocess_sentence_pairs(pairs.map(lambda a, b: a), preprocessor, 4)


class RetrievalTest(TestCase):
    def test_retrieval_accuracy_against_loop(self):
        rng = np.random.default_rng(1)
        q = rng.normal(size=(50, 8))
        c = q + rng.normal(size=(50, 8)) * 1.5
        for n in (2, 5, 50):
            order = np.random.RandomState(7).permutation(50)
            groups = order[: 50 - 50 % n].reshape(-1, n)
            hits = 0
            for g in groups:
                for i, qi in enumerate(g):
                    sims = [np.dot(q[qi], c[j]) / np.linalg.norm(q[qi]) / np.linalg.norm(c[j]) for j in g]
                    hits += int(np.argmax(sims) == i)
            self.assertAlmostEqual(evaluation.retrieval_accuracy(q, c, n, seed=7), hits / groups.size)
        # Unrelated candidates sit near chance.
        far = evaluation.retrieval_accuracy(rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8)), 10)
        self.assertLess(abs(far - 0.1), 0.04)
        with self.assertRaisesRegex(ValueError, "num_candidates"):
            evaluation.retrieval_accuracy(q, c, 51)

    def test_nearest_neighbor_index(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=(30, 6))
        queries = rng.normal(size=(4, 6))
        index = NearestNeighborIndex(x, items=[f"t{i}" for i in range(30)])
        scores, indices = index.scores(queries, k=5)
        cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
            x / np.linalg.norm(x, axis=1, keepdims=True)
        ).T
        self.assertAllEqual(indices, np.argsort(-cos, axis=1)[:, :5])
        self.assertAllClose(scores, np.sort(cos, axis=1)[:, ::-1][:, :5], atol=1e-5)
        self.assertEqual(index.search(x[3], k=1)[0][0][0], "t3")
        with self.assertRaisesRegex(ValueError, "items has 2 entries"):
            NearestNeighborIndex(x, items=["a", "b"])


class SentenceEncoderTest(TestCase):
    def test_embeddings_and_pooling(self):
        batch = packed(seed=3)
        for pooling in ("mean", "first_token", "pooled"):
            embedder = tiny_embedder(pooling=pooling)
            out = embedder(batch).numpy()
            self.assertEqual(out.shape, (8, 16))
            self.assertAllClose(np.linalg.norm(out, axis=1), np.ones(8), atol=1e-5)
        # The old "cls" (the raw first token here) is a deprecated alias.
        with self.assertWarns(DeprecationWarning):
            old = tiny_embedder(pooling="cls")
        self.assertEqual(old.pooling, "first_token")
        config = old.get_config()
        config["pooling"] = "cls"
        with self.assertWarns(DeprecationWarning):
            self.assertEqual(SentenceEncoder.from_config(config).pooling, "first_token")
        # Mean pooling ignores padding: extra padding changes nothing.
        embedder = tiny_embedder()
        longer = {k: np.pad(v, ((0, 0), (0, 4))) for k, v in batch.items()}
        self.assertAllClose(embedder(batch), embedder(longer), atol=1e-5)

    def test_on_a_minigpt_encoder(self):
        gpt = MiniGPT(
            vocabulary_size=V, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, max_sequence_length=16
        )
        batch = packed(seed=10)
        for pooling in ("mean", "pooled"):
            out = SentenceEncoder(gpt.encoder, pooling=pooling)(batch).numpy()
            self.assertAllClose(np.linalg.norm(out, axis=1), np.ones(8), atol=1e-5)
        # "pooled" is the causal model's state at each text's last real token.
        last = batch["padding_mask"].sum(1) - 1
        states = gpt.encoder({k: batch[k] for k in ("token_ids", "padding_mask")})["sequence_output"].numpy()
        want = states[np.arange(8), last]
        self.assertAllClose(out, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-5)

    @pytest.mark.slow
    def test_train_step_loss_matches_numpy(self):
        embedder = tiny_embedder()
        a, b = packed(seed=4), packed(seed=5)
        loss, correct = numpy_info_nce(
            embedder(a).numpy().astype("float64"), embedder(b).numpy().astype("float64"), np.arange(8), 0.1
        )
        embedder.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=True)
        self.assertTrue(embedder.jit_compile)  # the XLA step
        logs = embedder.fit(a, b, batch_size=8, verbose=0).history
        self.assertAllClose(logs["loss"][0], loss.mean(), atol=1e-4)
        self.assertAllClose(logs["accuracy"][0], correct.mean(), atol=1e-6)

    @pytest.mark.slow
    def test_unsupervised_uses_two_dropout_views(self):
        embedder = tiny_embedder(dropout=0.3)
        embedder.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
        logs = embedder.fit(packed(seed=6), batch_size=8, verbose=0).history
        # Identical views would make each text its own exact match: loss far
        # from the value for identical embeddings.
        same, _ = numpy_info_nce(*(2 * [embedder(packed(seed=6)).numpy().astype("float64")]), np.arange(8), 0.1)
        self.assertGreater(logs["loss"][0], same.mean() + 0.05)

    def test_crops_are_spans_of_the_text(self):
        embedder = tiny_embedder(views="crop", crop_ratio=(0.25, 0.5), seed=1)
        batch = packed(64, length=16, seed=3)
        out = embedder.crop({k: tf.constant(v) for k, v in batch.items()}, tf.constant([4, 5]))
        lengths = []
        for ids, mask, new_ids, new_mask in zip(
            batch["token_ids"],
            batch["padding_mask"],
            out["token_ids"].numpy(),
            out["padding_mask"].numpy(),
            strict=True,
        ):
            tokens = ids[1 : mask.sum() - 1]  # between [CLS] and [SEP]
            k = new_mask.sum() - 2
            self.assertEqual(new_ids[0], special_tokens.CLS_ID)
            self.assertEqual(new_ids[k + 1], special_tokens.SEP_ID)
            self.assertTrue(np.all(new_ids[k + 2 :] == special_tokens.PAD_ID))
            self.assertTrue(np.all(new_mask[: k + 2] == 1) and np.all(new_mask[k + 2 :] == 0))
            span = new_ids[1 : k + 1]
            starts = [i for i in range(len(tokens) - k + 1) if np.array_equal(tokens[i : i + k], span)]
            self.assertNotEmpty(starts, f"{span} is not a span of {tokens}")
            self.assertBetween(k, max(1, int(np.floor(0.25 * len(tokens)))), int(np.ceil(0.5 * len(tokens))))
            lengths.append(k / len(tokens))
        self.assertGreater(np.std(lengths), 0.02)  # the crop ratio is drawn per text
        self.assertAllEqual(out["segment_ids"], np.zeros_like(batch["token_ids"]))

    @pytest.mark.slow
    def test_crop_views_train_and_save(self):
        embedder = tiny_embedder(views="crop", seed=2, dropout=0.1)
        embedder.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = embedder.fit(packed(16, seed=4), batch_size=8, epochs=2, verbose=0).history
        self.assertTrue(np.all(np.isfinite(history["loss"])))
        restored = SentenceEncoder.from_config(embedder.get_config())
        self.assertEqual((restored.views, restored.crop_ratio, restored.seed), ("crop", (0.1, 0.5), 2))
        with self.assertRaisesRegex(ValueError, "unknown views 'mask'"):
            tiny_embedder(views="mask")
        with self.assertRaisesRegex(ValueError, "crop_ratio must be"):
            tiny_embedder(views="crop", crop_ratio=(0.6, 0.2))

    @pytest.mark.slow
    def test_strategy_equivalence(self):
        # Candidates are all-gathered: 2 replicas of 4 contrast against all 8.
        pairs = tf.data.Dataset.from_tensor_slices((packed(16, seed=7), packed(16, seed=8)))
        pairs = pairs.batch(8, drop_remainder=True).repeat()

        def build(dropout):
            def build_and_compile():
                keras.utils.set_random_seed(0)  # the same dropout seeds in both models
                embedder = tiny_embedder(dropout=dropout)
                # XLA is checked elsewhere; a plain graph here is cheaper to build.
                embedder.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
                return embedder

            return build_and_compile

        def reference(embedder, batch):
            a, b = (embedder(x).numpy().astype("float64") for x in batch)
            return numpy_info_nce(a, b, np.arange(8), 0.1)[0].mean()

        self.run_strategy_equivalence(build(0.0), pairs, steps=2, atol=1e-4, reference_loss=reference)
        texts = tf.data.Dataset.from_tensor_slices(packed(16, seed=9)).batch(8, drop_remainder=True).repeat()
        # Dropout views; crop views are a case of tests/strategy_cases.py.
        self.run_strategy_equivalence(build(0.2), texts, steps=2, atol=1e-4)

    @pytest.mark.slow
    def test_text_api_saving_and_search(self):
        preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(VOCABULARY), 12)
        embedder = tiny_embedder(preprocessor=preprocessor)
        texts = ["return the value .", "raise error if the file is new", "a list of names", "the module"]
        vectors = embedder.embed(texts, batch_size=3)
        self.assertEqual(vectors.shape, (4, 16))
        self.assertAllClose(vectors, embedder(texts), atol=1e-5)
        index = embedder.build_index(texts)
        hits = embedder.search(["return the value ."], index, k=2)[0]
        self.assertEqual(hits[0][0], "return the value .")
        self.assertAllClose(hits[0][1], 1.0, atol=1e-4)
        # The functional encoder's config holds slices whose tuples come back
        # as lists: compare the JSON forms.
        config = embedder.get_config()
        rebuilt = SentenceEncoder.from_config(config)
        self.assertEqual(json.dumps(rebuilt.get_config(), sort_keys=True), json.dumps(config, sort_keys=True))
        restored = self.run_saving(embedder, preprocessor(tf.constant(texts)))
        self.assertAllClose(restored.embed(texts), vectors, atol=1e-5)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "unknown pooling"):
            tiny_embedder(pooling="max")
        with self.assertRaisesRegex(ValueError, "temperature must be positive"):
            tiny_embedder(temperature=0.0)
        with self.assertRaisesRegex(ValueError, "encoder must be a keras Model"):
            SentenceEncoder("bert")
        with self.assertRaisesRegex(ValueError, "no preprocessor"):
            tiny_embedder()(["text"])
        with self.assertRaisesRegex(ValueError, "needs a preprocessor"):
            tiny_embedder().embed(["text"])
