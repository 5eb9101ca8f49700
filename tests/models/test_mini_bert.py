import keras
import numpy as np
import tensorflow as tf
import pytest

import keras_pt
from keras_pt import MiniBERT
from keras_pt.layers.special_tokens import CLS_ID, NUM_SPECIAL_TOKENS, PAD_ID, SEP_ID
from tests.test_case import TestCase

VOCAB, LENGTH = 100, 16


def tiny_bert(**overrides):
    config = dict(
        vocabulary_size=VOCAB,
        num_layers=2,
        hidden_dim=32,
        num_heads=2,
        intermediate_dim=64,
        max_sequence_length=LENGTH,
        seed=1,
    )
    config.update(overrides)
    return MiniBERT(**config)


def packed(n, seed=0, length=LENGTH, pairs=True):
    """Packed `[CLS] a [SEP] (b [SEP]) [PAD]...` batches of random lengths."""
    rng = np.random.default_rng(seed)
    ids = np.full((n, length), PAD_ID, np.int32)
    segments = np.zeros((n, length), np.int32)
    mask = np.zeros((n, length), np.int32)
    for i in range(n):
        total = rng.integers(4, length + 1)
        a = rng.integers(1, total - 2) if pairs and total > 4 else total - 2
        b = total - 3 - a if pairs and total > 4 else 0
        tokens = [CLS_ID] + list(rng.integers(NUM_SPECIAL_TOKENS, VOCAB, a)) + [SEP_ID]
        if b > 0:
            tokens += list(rng.integers(NUM_SPECIAL_TOKENS, VOCAB, b)) + [SEP_ID]
            segments[i, a + 2 : len(tokens)] = 1
        ids[i, : len(tokens)] = tokens
        mask[i, : len(tokens)] = 1
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def seed_states(model):
    return [layer.seed_generator.state.numpy() for layer in _seeded(model)]


def restore_seed_states(model, states):
    for layer, state in zip(_seeded(model), states, strict=True):
        layer.seed_generator.state.assign(state)


def _seeded(model):
    layers = [model] + list(model._flatten_layers())
    return [layer for layer in layers if getattr(layer, "seed_generator", None) is not None]


def reference_mlm_loss(model, batch):
    """Mean cross-entropy over the selected positions, computed apart from the
    train step (same masks and dropout: the seed states are restored)."""
    states = seed_states(model)
    data = {k: tf.constant(v) for k, v in batch.items()}
    masked = model.mask(data)
    inputs = dict(data, token_ids=masked["token_ids"])
    sequence = model.encoder(inputs, training=True)["sequence_output"]  # full sequence
    logits = model.mlm_head(sequence, model.embedding.token_embeddings)  # every position
    losses = keras.losses.sparse_categorical_crossentropy(masked["labels"], logits, from_logits=True)
    weights = masked["weights"]
    restore_seed_states(model, states)
    return float(tf.reduce_sum(losses * weights) / tf.reduce_sum(weights))


@keras.saving.register_keras_serializable(package="keras_pt_tests")
class StandInTokenizer(keras.layers.Layer):
    """Hashes whitespace-separated words to ordinary ids (a stand-in tokenizer)."""

    def __init__(self, size=VOCAB, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def vocabulary_size(self):
        return self.size

    def call(self, strings):
        words = tf.strings.split(strings)
        return tf.strings.to_hash_bucket_fast(words, self.size - NUM_SPECIAL_TOKENS) + NUM_SPECIAL_TOKENS

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="keras_pt_tests")
class StandInPreprocessor(keras.layers.Layer):
    """Packs one or two string batches to the MiniBERT dict (a stand-in)."""

    def __init__(self, size=VOCAB, sequence_length=LENGTH, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = StandInTokenizer(size)
        self.size = size
        self.sequence_length = sequence_length

    def call(self, x):
        segments = list(x) if isinstance(x, (tuple, list)) else [x]
        pieces, types = [], []
        batch = tf.shape(segments[0])[0]
        for i, strings in enumerate(segments):
            ids = tf.cast(self.tokenizer(strings)[:, : self.sequence_length // 2 - 2], tf.int32)
            start = tf.fill([batch, 1], CLS_ID) if i == 0 else tf.zeros([batch, 0], tf.int32)
            sep = tf.fill([batch, 1], SEP_ID)
            part = tf.concat([tf.RaggedTensor.from_tensor(start), ids, tf.RaggedTensor.from_tensor(sep)], 1)
            pieces.append(part)
            types.append(tf.ones_like(part) * i)
        token_ids = tf.concat(pieces, 1).to_tensor(PAD_ID, shape=[None, self.sequence_length])
        segment_ids = tf.concat(types, 1).to_tensor(0, shape=[None, self.sequence_length])
        return {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": tf.cast(token_ids != PAD_ID, tf.int32),
        }

    def get_config(self):
        return {**super().get_config(), "size": self.size, "sequence_length": self.sequence_length}


class MiniBERTTest(TestCase):
    def test_presets(self):
        shapes = {"tiny": (2, 128, 2, 512), "mini": (4, 256, 4, 1024), "small": (4, 512, 8, 2048)}
        for name, (layers, hidden, heads, intermediate) in shapes.items():
            model = MiniBERT.from_preset(name, vocabulary_size=VOCAB, max_sequence_length=LENGTH)
            config = model.get_config()
            self.assertEqual(
                (config["num_layers"], config["hidden_dim"], config["num_heads"], config["intermediate_dim"]),
                (layers, hidden, heads, intermediate),
            )
            self.assertEqual(model.transformer_layers[-1].qkv_kernel.shape, (hidden, 3 * hidden))
        model = MiniBERT.from_preset("tiny", vocabulary_size=VOCAB, num_layers=1, max_sequence_length=8)
        self.assertEqual(len(model.transformer_layers), 1)
        with self.assertRaisesRegex(ValueError, "unknown MiniBERT preset 'huge'; choose one of tiny, mini, small"):
            MiniBERT.from_preset("huge", vocabulary_size=VOCAB)

    def test_outputs(self):
        model = tiny_bert()
        batch = packed(4)
        outputs = model.encoder(batch)
        sequence, pooled = outputs["sequence_output"], outputs["pooled_output"]
        self.assertEqual(sequence.shape, (4, LENGTH, 32))
        kernel, bias = model.pooled_dense.get_weights()
        self.assertAllClose(pooled, np.tanh(sequence.numpy()[:, 0] @ kernel + bias), atol=1e-5)
        logits = model(batch)
        self.assertEqual(logits.shape, (4, LENGTH, VOCAB))
        # Logits at mask_positions are the rows of the full logits.
        positions = np.array([[1, 2], [3, 0], [5, 5], [2, 1]], np.int32)
        self.assertAllClose(
            model({**batch, "mask_positions": positions}),
            np.take_along_axis(logits.numpy(), positions[:, :, None], 1),
            atol=1e-4,
        )
        # The output projection is the token embedding matrix (tied).
        embeddings = model.embedding.token_embeddings
        embeddings.assign(embeddings * 2.0)
        self.assertNotAllClose(model(batch), logits)
        # Segment ids and the padding mask default sensibly; a bool mask works.
        ids_only = {"token_ids": batch["token_ids"]}
        self.assertAllClose(
            model.encoder(model.pack(ids_only))["sequence_output"],
            model.encoder({**batch, "segment_ids": np.zeros_like(batch["segment_ids"])})["sequence_output"],
            atol=1e-5,
        )
        self.assertAllClose(
            model({**batch, "padding_mask": batch["padding_mask"].astype(bool)}), model(batch), atol=1e-5
        )

    @pytest.mark.slow
    def test_fit_logs_masked_mean(self):
        model = tiny_bert(dropout=0.1)
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        batch = packed(8, seed=1)
        expected = reference_mlm_loss(model, batch)
        history = self.run_fit(model, tf.data.Dataset.from_tensors(batch))
        self.assertAllClose(history.history["loss"][0], expected, atol=2e-5)
        self.assertEqual(sorted(history.history), ["loss", "mlm_accuracy"])
        logs = model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0, return_dict=True)
        self.assertEqual(sorted(logs), ["loss", "mlm_accuracy"])
        self.assertTrue(np.isfinite(logs["loss"]))
        # A partial last batch (dynamic batch size) trains too.
        history = model.fit(packed(10), batch_size=4, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))

    @pytest.mark.slow
    def test_strategy_equivalence_with_dropout(self):
        # Replicas hold different numbers of selected positions (random
        # lengths): the loss is normalised by the global count.
        def build():
            model = tiny_bert(dropout=0.1)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
            return model

        data = tf.data.Dataset.from_tensor_slices(packed(24, seed=2)).batch(8, drop_remainder=True)
        self.run_strategy_equivalence(
            build,
            data,
            steps=3,
            atol=1e-4,
            loss_keys=("loss", "mlm_accuracy"),
            reference_loss=reference_mlm_loss,
        )

    @pytest.mark.slow
    def test_jit_compile_step(self):
        # Selecting and masking every candidate makes the masks independent of
        # the random algorithm (XLA's stateless draws differ from plain TF's),
        # so the XLA step must reproduce the plain step exactly.
        def build(jit):
            model = tiny_bert(mask_selection_rate=1.0, mask_token_rate=1.0, random_token_rate=0.0)
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
            return model

        data = tf.data.Dataset.from_tensor_slices(packed(16, seed=3)).batch(8)
        plain, xla = build(False), build(True)
        xla.set_weights(plain.get_weights())
        self.assertTrue(xla.jit_compile)
        a = plain.fit(data, epochs=2, verbose=0).history
        b = xla.fit(data, epochs=2, verbose=0).history
        self.assertAllClose(a["loss"], b["loss"], atol=1e-4)
        for w1, w2 in zip(plain.get_weights(), xla.get_weights(), strict=True):
            self.assertAllClose(w1, w2, atol=3e-4)
        # With the usual rates: tests/distribute/test_tpu_readiness.py.

    @pytest.mark.slow
    def test_learns_a_synthetic_language(self):
        # Each sequence repeats one random token between [CLS] and [SEP]: a
        # masked token is any unmasked one. Chance level is 1/95.
        def language(n, seed):
            rng = np.random.default_rng(seed)
            ids = np.repeat(rng.integers(NUM_SPECIAL_TOKENS, VOCAB, size=(n, 1)), LENGTH, 1)
            ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
            return {
                "token_ids": ids.astype("int32"),
                "segment_ids": np.zeros_like(ids),
                "padding_mask": np.ones_like(ids),
            }

        model = tiny_bert(dropout=0.0)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        before = model.evaluate(language(128, 1), batch_size=32, verbose=0, return_dict=True)
        model.fit(language(1024, 0), batch_size=32, epochs=4, verbose=0)
        after = model.evaluate(language(128, 1), batch_size=32, verbose=0, return_dict=True)
        self.assertLess(before["mlm_accuracy"], 0.1)
        self.assertGreater(after["mlm_accuracy"], 0.4)
        self.assertLess(after["loss"], before["loss"] / 2)

    @pytest.mark.slow
    def test_config_and_saving(self):
        model = tiny_bert(dropout=0.2, max_predictions=4, activation="gelu_approximate")
        self.run_config_roundtrip(model)
        model.compile(optimizer="adam")
        batch = packed(8)
        model.fit(batch, batch_size=4, verbose=0)
        restored = self.run_saving(model, batch)
        self.assertAllEqual(restored.seed_generator.state, model.seed_generator.state)
        # The restored model continues training with its optimizer state.
        self.assertEqual(restored.optimizer.iterations.numpy(), model.optimizer.iterations.numpy())
        restored.fit(batch, batch_size=4, verbose=0)

    def test_preprocessor(self):
        preprocessor = StandInPreprocessor()
        model = MiniBERT(
            num_layers=1, hidden_dim=32, num_heads=2, max_sequence_length=LENGTH, preprocessor=preprocessor
        )
        self.assertEqual(model.vocabulary_size, VOCAB)
        logits = model(["the quick brown fox", "jumps"])
        self.assertEqual(logits.shape, (2, LENGTH, VOCAB))
        self.assertAllClose(logits, model(preprocessor(tf.constant(["the quick brown fox", "jumps"]))))
        restored = self.run_saving(model, ["hello world", "a b c d"])
        self.assertIsInstance(restored.preprocessor, StandInPreprocessor)
        with self.assertRaisesRegex(ValueError, "vocabulary_size=50 differs from the preprocessor's"):
            MiniBERT(vocabulary_size=50, preprocessor=preprocessor)
        with self.assertRaisesRegex(ValueError, "got raw strings but has no preprocessor"):
            tiny_bert()(["some text"])

    @pytest.mark.slow
    def test_bad_inputs(self):
        model = tiny_bert()
        batch = packed(4)
        too_large = {**batch, "token_ids": np.where(batch["padding_mask"] > 0, VOCAB, 0).astype("int32")}
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "token ids must be < vocabulary_size=100"):
            model(too_large)
        model.compile(optimizer="adam")
        # fit checks arrays on the host before any step.
        with self.assertRaisesRegex(ValueError, r"token_ids must lie in \[0, vocabulary_size=100\)"):
            model.fit(too_large, batch_size=4, verbose=0)
        negative = {**batch, "token_ids": -batch["token_ids"]}
        with self.assertRaisesRegex(ValueError, r"token_ids must lie in .*found \[-"):
            model.fit(negative, batch_size=4, verbose=0)
        # In a plain graph step (a tensor the host check does not read) the
        # layer's own assertions run.
        step = tf.function(lambda ids: model(ids))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "token ids must be >= 0"):
            step({k: tf.constant(v) for k, v in negative.items()})
        long = packed(4, length=LENGTH + 4)
        with self.assertRaisesRegex(ValueError, "length 20 exceed max_sequence_length=16"):
            model(long)
        fresh = tiny_bert()
        fresh.compile(optimizer="adam")
        with self.assertRaisesRegex(ValueError, "length 20 exceed max_sequence_length=16"):
            fresh.fit(long, batch_size=4, verbose=0)
        # After batches of another length, Keras relaxes the traced length.
        model.fit(batch, batch_size=4, verbose=0)
        with self.assertRaisesRegex(ValueError, "fixed sequence length.*max_sequence_length=16"):
            model.fit(long, batch_size=4, verbose=0)
        with self.assertRaisesRegex(ValueError, "takes a dict with 'token_ids'"):
            model({"ids": batch["token_ids"]})
        with self.assertRaisesRegex(ValueError, "token_ids must be integer ids, got strings"):
            model({"token_ids": batch["token_ids"].astype(str)})
        with self.assertRaisesRegex(ValueError, "must exceed the 5 special tokens"):
            tiny_bert(vocabulary_size=5)
        with self.assertRaisesRegex(ValueError, "pass vocabulary_size"):
            MiniBERT()
        with self.assertRaisesRegex(ValueError, "hidden_dim=30 must be a positive multiple of num_heads=4"):
            tiny_bert(hidden_dim=30, num_heads=4)
        with self.assertRaisesRegex(ValueError, r"mask_selection_rate must lie in \(0, 1\]"):
            tiny_bert(mask_selection_rate=1.5)


class HostTokenIdCheckTest(TestCase):
    """Under XLA the step cannot assert: ids are checked on the host."""

    def _model(self, cls=None):
        from tests import strategy_cases

        model = keras_pt.MiniBERT(
            vocabulary_size=strategy_cases._VOCAB,
            num_layers=1,
            hidden_dim=16,
            num_heads=2,
            intermediate_dim=32,
            max_sequence_length=strategy_cases._LENGTH,
        )
        model.compile(optimizer="sgd", jit_compile=True)
        packed = strategy_cases._packed_texts()
        packed["token_ids"][3, 2] = strategy_cases._VOCAB + 5
        return model, packed

    def test_arrays_are_refused_before_the_step(self):
        model, packed = self._model()
        for run in (model.fit, model.evaluate, model.predict):
            with self.assertRaisesRegex(ValueError, r"token_ids must lie in \[0, vocabulary_size=40\); found \[45\]"):
                run(packed, batch_size=16, verbose=0)

    def test_data_sets_are_checked_in_the_pipeline(self):
        model, packed = self._model()
        dataset = tf.data.Dataset.from_tensor_slices(packed).batch(16, drop_remainder=True)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "token_ids must lie in .0, vocabulary_size=40"):
            model.fit(dataset, verbose=0)

    def test_no_assert_ops_under_xla(self):
        # XLA ignores assertions (with a log line per compile): none are built.
        from keras_pt.layers.bert_embedding import BertEmbedding

        layer = BertEmbedding(vocabulary_size=40, hidden_dim=16, max_sequence_length=12)
        spec = tf.TensorSpec((4, 12), tf.int32)

        def op_types(jit_compile):
            fn = tf.function(lambda ids: layer(ids), jit_compile=jit_compile)
            return {op.type for op in fn.get_concrete_function(spec).graph.get_operations()}

        self.assertIn("Assert", op_types(False))
        self.assertNotIn("Assert", op_types(True))
