"""MiniGPT: causal mask, next-token loss, generation, metrics, saving, strategies."""

import numpy as np
import tensorflow as tf
import keras
import pytest

from keras_pt import MiniGPT, evaluation
from keras_pt.kernels import sampling
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens
from keras_pt.metrics import Perplexity
from keras_pt.models.mini_gpt import BANNED_IDS
from tests import fixtures
from tests.test_case import TestCase

VOCABULARY = fixtures.TINY_VOCABULARY
V = len(VOCABULARY)


def tiny_gpt(dropout=0.0, preprocessor=None, max_sequence_length=12, num_layers=2, **kwargs):
    return MiniGPT(
        vocabulary_size=None if preprocessor else V,
        num_layers=num_layers,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=max_sequence_length,
        dropout=dropout,
        preprocessor=preprocessor,
        **kwargs,
    )


def packed_batch(batch=8, length=12, seed=0):
    """Random texts `[CLS] t... [SEP] [PAD]...` of uneven lengths (some full)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch, length), np.int32)
    lengths = rng.integers(3, length + 1, size=batch)
    lengths[0] = length
    for b, n in enumerate(lengths):
        ids[b, 0] = special_tokens.CLS_ID
        ids[b, 1 : n - 1] = rng.integers(special_tokens.NUM_SPECIAL_TOKENS, V, size=n - 2)
        ids[b, n - 1] = special_tokens.SEP_ID
    return {"token_ids": ids, "padding_mask": (ids != 0).astype(np.int32)}


def numpy_next_token_loss(logits, packed):
    """Mean cross-entropy of token i+1 given logits at i, over real targets."""
    logits = np.asarray(logits, np.float64)[:, :-1]
    targets = packed["token_ids"][:, 1:]
    weights = packed["padding_mask"][:, 1:].astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
    return float((nll * weights).sum() / weights.sum())


class SamplingKernelTest(TestCase):
    def test_greedy_is_argmax_without_banned(self):
        logits = np.random.default_rng(0).normal(size=(6, 9)).astype("float32")
        logits[:, 2] = 50.0  # banned below
        got = sampling.next_token(logits, [0, 0], "greedy", banned_ids=(2,)).numpy()
        masked = logits.copy()
        masked[:, 2] = -np.inf
        self.assertAllEqual(got, masked.argmax(-1))

    def test_sample_frequencies_match_softmax(self):
        logits = np.array([2.0, 1.0, 0.0, -1.0, 0.5, 3.0], "float32")
        rows = np.tile(logits, (20000, 1))
        for strategy, temperature, top_k in (("temperature", 1.0, 6), ("temperature", 2.0, 6), ("top_k", 0.7, 3)):
            tokens = sampling.next_token(
                rows, tf.constant([7, 11]), strategy, temperature=temperature, top_k=top_k, banned_ids=(1,)
            ).numpy()
            scaled = logits / temperature
            keep = np.ones(6, bool)
            keep[1] = False
            if strategy == "top_k":
                keep &= scaled >= np.sort(scaled[keep])[-top_k]
            p = np.where(keep, np.exp(scaled - scaled.max()), 0.0)
            p /= p.sum()
            freq = np.bincount(tokens, minlength=6) / len(tokens)
            self.assertAllClose(freq, p, atol=0.015)
            self.assertEqual(freq[~keep].sum(), 0.0)

    def test_deterministic_and_seed_dependent(self):
        logits = np.zeros((64, 20), "float32")
        a = sampling.next_token(logits, [1, 2], "temperature").numpy()
        self.assertAllEqual(a, sampling.next_token(logits, [1, 2], "temperature").numpy())
        self.assertNotAllEqual(a, sampling.next_token(logits, [1, 3], "temperature").numpy())

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "greedy, top_k, temperature"):
            sampling.check_sampling_args("beam", 1.0, 1)
        with self.assertRaisesRegex(ValueError, "temperature must be positive"):
            sampling.check_sampling_args("temperature", 0.0, 1)
        with self.assertRaisesRegex(ValueError, "top_k=50 exceeds"):
            sampling.check_sampling_args("top_k", 1.0, 50, vocabulary_size=20)


class MetricsTest(TestCase):
    def test_perplexity_is_exp_of_weighted_mean(self):
        rng = np.random.default_rng(0)
        metric = Perplexity()
        losses, weights = [], []
        for _ in range(3):
            l = rng.random((4, 5)).astype("float32") * 3
            w = (rng.random((4, 5)) > 0.3).astype("float32")
            metric.update_state(l, sample_weight=w)
            losses.append(l)
            weights.append(w)
        l, w = np.concatenate(losses), np.concatenate(weights)
        self.assertAllClose(metric.result(), np.exp((l * w).sum() / w.sum()), rtol=1e-5)

    def test_unigram_perplexity(self):
        train = np.zeros(V, np.int64)
        train[[5, 6, 7]] = [6, 3, 1]
        test = np.zeros(V, np.int64)
        test[[5, 7, 8]] = [2, 1, 1]
        allowed = V - len(BANNED_IDS)
        p = (train + 1.0) / (train.sum() + allowed)
        want = np.exp(-(2 * np.log(p[5]) + np.log(p[7]) + np.log(p[8])) / 4)
        self.assertAllClose(evaluation.unigram_perplexity(train, test), want)
        counts = evaluation.next_token_counts([packed_batch()], V)
        batch = packed_batch()
        targets = batch["token_ids"][:, 1:][batch["padding_mask"][:, 1:] == 1]
        self.assertAllEqual(counts, np.bincount(targets, minlength=V))
        with self.assertRaisesRegex(ValueError, "smoothing > 0"):
            evaluation.unigram_perplexity(train, test, smoothing=0.0)


class MiniGPTTest(TestCase):
    def test_causal_mask(self):
        model = tiny_gpt()
        batch = packed_batch(batch=3, seed=1)
        base = model(batch).numpy()
        rng = np.random.default_rng(2)
        for j in range(1, 12):
            changed = {k: v.copy() for k, v in batch.items()}
            changed["token_ids"][:, j] = (batch["token_ids"][:, j] + 1 + rng.integers(0, V - 6)) % (V - 5) + 5
            changed["padding_mask"][:, j] = 1
            out = model(changed).numpy()
            # Earlier positions never see a later token.
            self.assertAllClose(out[:, :j], base[:, :j], atol=1e-5)
            # The changed position itself does.
            self.assertGreater(np.abs(out[:, j] - base[:, j]).max(), 1e-4)
        # The query-only path gives the same rows (at real tokens: it takes
        # no padding mask, which right padding never needs there).
        last = batch["padding_mask"].sum(1) - 1
        positions = np.stack([np.zeros_like(last), last // 2, last], axis=1).astype(np.int32)
        rows = model.next_token_logits(tf.constant(batch["token_ids"]), positions).numpy()
        self.assertAllClose(rows, np.take_along_axis(base, positions[..., None], axis=1), atol=1e-5)

    def test_loss_matches_numpy_and_jit_step(self):
        model = tiny_gpt()
        batch = packed_batch(seed=3)
        want = numpy_next_token_loss(model(batch), batch)
        model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=True)
        self.assertTrue(model.jit_compile)
        result = model.evaluate(batch, batch_size=8, verbose=0, return_dict=True)
        self.assertAllClose(result["loss"], want, atol=1e-5)
        self.assertAllClose(result["perplexity"], np.exp(want), rtol=1e-4)
        history = model.fit(batch, batch_size=8, verbose=0).history  # XLA-compiled step
        self.assertAllClose(history["loss"][0], want, atol=1e-4)

    def test_evaluate_takes_a_short_last_batch(self):
        batch = packed_batch(batch=10, seed=3)
        model = tiny_gpt()
        model.compile(optimizer="sgd")
        want = numpy_next_token_loss(model(batch), batch)
        dataset = tf.data.Dataset.from_tensor_slices(batch).batch(4)  # 4, 4, 2
        result = model.evaluate(dataset, verbose=0, return_dict=True)
        self.assertAllClose(result["loss"], want, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "trains on static shapes.*drop_remainder=True"):
            model.fit(dataset, verbose=0)

    @pytest.mark.slow
    def test_strategy_equivalence_uneven_tokens(self):
        # Replica 0 holds long texts, replica 1 short ones: the loss must be
        # the mean over the global batch's tokens, not a mean of means.
        batch = packed_batch(batch=8, seed=4)
        batch["token_ids"][4:, 4:] = 0
        batch["token_ids"][4:, 3] = special_tokens.SEP_ID
        batch["padding_mask"] = (batch["token_ids"] != 0).astype(np.int32)
        dataset = tf.data.Dataset.from_tensor_slices(batch).batch(8, drop_remainder=True).repeat()

        def build(dropout):
            def build_and_compile():
                # The same dropout seeds in both models (seed states are not weights).
                keras.utils.set_random_seed(0)
                model = tiny_gpt(dropout=dropout)
                model.compile(optimizer=keras.optimizers.SGD(0.5))
                return model

            return build_and_compile

        def reference(model, first):
            first = {k: v.numpy() for k, v in first.items()}
            return numpy_next_token_loss(model(first), first)

        one, mirrored = self.run_strategy_equivalence(build(0.0), dataset, steps=2, atol=1e-4, reference_loss=reference)
        # A model built under the strategy also generates (XLA, outside replicas).
        prompts = [[2, 5], [2, 6, 7]]
        self.assertAllEqual(mirrored.generate(prompts, 8), one.generate(prompts, 8))

    def test_generate_greedy_matches_step_by_step_argmax(self):
        model = tiny_gpt()
        prompts = [[2, 5, 9], [2, 7]]
        out = model.generate(prompts, max_length=10, strategy="greedy")
        for prompt, row in zip(prompts, out):
            ids = list(prompt)
            while len(ids) < 10:
                logits = model({"token_ids": np.array([ids + [0] * (10 - len(ids))], np.int32)})
                step = logits.numpy()[0, len(ids) - 1].copy()
                step[list(BANNED_IDS)] = -np.inf
                ids.append(int(step.argmax()))
                if ids[-1] == special_tokens.SEP_ID:
                    break
            ids += [0] * (10 - len(ids))
            self.assertAllEqual(row, ids)
        self.assertAllEqual(model.generate(prompts, max_length=10, strategy="top_k", top_k=1, seed=5), out)

    @pytest.mark.slow
    def test_cached_generation_equals_uncached(self):
        model = tiny_gpt(max_sequence_length=32, num_layers=3)
        # Prompts of different lengths, padded with [PAD] into one int array.
        prompts = np.zeros((5, 9), np.int32)
        for b, n in enumerate([1, 3, 9, 5, 2]):
            prompts[b, :n] = [2] + list(np.random.default_rng(b).integers(5, V, n - 1))
        kwargs = dict(temperature=1.5, top_k=6, seed=7)
        # Greedy and sampled (top-k at a temperature; plain temperature
        # sampling is the same sampler without the top-k cut).
        for strategy in ("greedy", "top_k"):
            cached = model.generate(prompts, 32, strategy=strategy, **kwargs)
            uncached = model.generate(prompts, 32, strategy=strategy, use_cache=False, **kwargs)
            self.assertAllEqual(cached, uncached)
        # Without [SEP], every sequence runs to max_length.
        bias = model.lm_head.output_bias
        bias.assign(bias.numpy() - 100.0 * (np.arange(V) == special_tokens.SEP_ID))
        for strategy in ("greedy", "top_k"):
            cached = model.generate(prompts, 32, strategy=strategy, **kwargs)
            self.assertTrue((cached != 0).all())
            uncached = model.generate(prompts, 32, strategy=strategy, use_cache=False, **kwargs)
            self.assertAllEqual(cached, uncached)
        self.assertAllEqual(cached[:, :9][prompts != 0], prompts[prompts != 0])
        # Logits of one cached step equal the full model's at that position.
        ids = tf.constant(cached)
        caches = model.prefill_cache(ids)
        for index in (0, 13, 31):
            logits, caches = model.cached_next_token_logits(ids, tf.constant(index), caches)
            self.assertAllClose(logits, model({"token_ids": cached})[:, index], atol=1e-4)
        # The cached loop compiles with XLA and updates its caches in place.
        hlo = model.generate_fn("greedy").experimental_get_compiler_ir(
            ids, tf.constant([2] * 5), tf.constant(1), tf.constant(1.0)
        )(stage="hlo")
        self.assertIn("while", hlo)
        self.assertIn("dynamic-update-slice", hlo)
        # No float64 values: HLO spells their type `f64[...]`. (A bare "f64"
        # also matches source paths in the ops' metadata, such as a
        # temporary directory named `tmp.Rf6423...`.)
        self.assertNotRegex(hlo, r"\bf64\[")

    @pytest.mark.slow
    def test_cached_generation_under_mixed_precision(self):
        model = tiny_gpt(max_sequence_length=16, dtype="mixed_bfloat16")
        prompts = [[2, 5, 9], [2, 7, 8, 9, 10, 11], [2]]
        cached = model.generate(prompts, 16, strategy="greedy")
        ids = tf.constant(cached)
        caches = model.prefill_cache(ids)
        self.assertEqual(caches[0].dtype, tf.bfloat16)
        full = tf.cast(model({"token_ids": cached}), tf.float32)
        for index in (2, 9, 15):
            logits, caches = model.cached_next_token_logits(ids, tf.constant(index), caches)
            self.assertAllClose(tf.cast(logits, tf.float32), full[:, index], atol=2e-3)

    @pytest.mark.slow
    def test_generate_deterministic_given_seed_and_xla(self):
        model = tiny_gpt()
        prompts = [[2, 5], [2, 6, 7, 8]]
        for strategy in ("top_k", "temperature"):
            a = model.generate(prompts, 12, strategy=strategy, temperature=3.0, top_k=8, seed=11)
            b = model.generate(prompts, 12, strategy=strategy, temperature=3.0, top_k=8, seed=11)
            c = model.generate(prompts, 12, strategy=strategy, temperature=3.0, top_k=8, seed=12)
            self.assertAllEqual(a, b)
            self.assertNotAllEqual(a, c)
            self.assertAllEqual(a[1, :4], prompts[1])
            self.assertFalse(np.isin(a[:, 1:], [2, 4]).any())  # [CLS], [MASK] never sampled
        # The loop compiles with XLA: HLO exists for it.
        fn = model.generate_fn("top_k", 8)
        hlo = fn.experimental_get_compiler_ir(
            tf.constant(np.zeros((2, 12), np.int32)), tf.constant([2, 4]), tf.constant(1), tf.constant(1.0)
        )(stage="hlo")
        self.assertIn("while", hlo)

    def test_generate_stops_at_eos(self):
        model = tiny_gpt()
        bias = model.lm_head.output_bias
        bias.assign(bias.numpy() + 100.0 * (np.arange(V) == special_tokens.SEP_ID))
        out = model.generate([[2, 5, 6], [2]], max_length=8, strategy="temperature", seed=0)
        self.assertAllEqual(out, [[2, 5, 6, 3, 0, 0, 0, 0], [2, 3, 0, 0, 0, 0, 0, 0]])

    @pytest.mark.slow
    def test_text_generation_config_and_saving(self):
        preprocessor = MiniBERTPreprocessor(WordPieceTokenizer(VOCABULARY), sequence_length=10)
        model = tiny_gpt(preprocessor=preprocessor)
        self.assertEqual(model.vocabulary_size, V)
        texts = ["return the value .", "raise error if the file is new"]
        packed = preprocessor(tf.constant(texts))
        self.assertAllClose(model(texts), model(packed))
        out = model.generate(["return the"], max_length=10, strategy="top_k", top_k=4, seed=3)
        self.assertIsInstance(out[0], str)
        self.assertTrue(out[0].startswith("return the"))
        self.run_config_roundtrip(model)
        restored = self.run_saving(model, packed)
        self.assertEqual(restored.preprocessor.tokenizer.get_vocabulary(), VOCABULARY)
        self.assertEqual(restored.generate(["return the"], max_length=10, strategy="top_k", top_k=4, seed=3), out)

    def test_presets_and_bad_input(self):
        model = MiniGPT.from_preset("tiny", vocabulary_size=50, max_sequence_length=8)
        self.assertEqual((model.num_layers, model.hidden_dim, model.num_heads), (2, 128, 2))
        self.assertTrue(all(block.causal for block in model.transformer_layers))
        with self.assertRaisesRegex(ValueError, "unknown MiniGPT preset"):
            MiniGPT.from_preset("huge", vocabulary_size=50)
        model = tiny_gpt()
        with self.assertRaisesRegex(ValueError, "no preprocessor"):
            model(["some text"])
        with self.assertRaisesRegex(ValueError, "more than max_length=4"):
            model.generate([[2, 5, 6, 7, 8]], max_length=4)
        with self.assertRaisesRegex(ValueError, "max_length must be"):
            model.generate([[2]], max_length=40)
        with self.assertRaisesRegex(ValueError, "unknown sampling strategy"):
            model.generate([[2]], max_length=4, strategy="beam")
        with self.assertRaisesRegex(ValueError, "no preprocessor with a tokenizer"):
            model.generate(["hello"], max_length=4)
        with self.assertRaisesRegex(ValueError, "packs 20 tokens"):
            tiny_gpt(preprocessor=MiniBERTPreprocessor(WordPieceTokenizer(VOCABULARY), 20))
