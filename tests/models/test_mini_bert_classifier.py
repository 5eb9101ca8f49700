import numpy as np
import tensorflow as tf
import keras
import pytest

from keras_pt import Distiller, MiniBERT, MiniBERTClassifier
from keras_pt.layers import MiniBERTPreprocessor, WordPieceTokenizer, special_tokens
from tests.test_case import TestCase

SEQ = 16
WORDS = ["the", "quick", "brown", "fox", "lazy", "dog", "jump", "##s", "over", "cat", "."]
VOCABULARY = list(special_tokens.SPECIAL_TOKENS) + WORDS


def backbone(preprocessor=None, vocabulary_size=None, hidden_dim=32, num_layers=2, dropout=0.0):
    return MiniBERT(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        num_heads=2,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=SEQ,
        dropout=dropout,
        preprocessor=preprocessor,
        seed=3,
    )


def packed_batch(n=16, vocabulary_size=40, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(special_tokens.NUM_SPECIAL_TOKENS, vocabulary_size, size=(n, SEQ))
    lengths = rng.integers(4, SEQ + 1, size=n)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype("int32")
    ids[:, 0] = special_tokens.CLS_ID
    ids[np.arange(n), lengths - 1] = special_tokens.SEP_ID
    ids = np.where(mask == 1, ids, special_tokens.PAD_ID).astype("int32")
    segments = np.zeros_like(ids)
    labels = rng.integers(0, 3, size=n).astype("int32")
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}, labels


def preprocessor():
    return MiniBERTPreprocessor(WordPieceTokenizer(VOCABULARY), sequence_length=SEQ)


class MiniBERTClassifierTest(TestCase):
    def test_fit_config_saving_on_packed_inputs(self):
        x, y = packed_batch()
        model = MiniBERTClassifier(backbone(vocabulary_size=40, dropout=0.1), num_classes=3)
        # The logits are the head on the backbone's tanh-pooled [CLS] vector.
        pooled = model.backbone.encoder(x)["pooled_output"].numpy()
        kernel, bias = model.logits_dense.get_weights()
        self.assertAllClose(model(x), pooled @ kernel + bias, atol=1e-5)
        model.compile(optimizer="adam")
        history = self.run_fit(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True))
        self.assertEqual(sorted(history.history), ["accuracy", "loss"])
        self.assertEqual(model.predict(x, verbose=0).shape, (16, 3))
        self.run_config_roundtrip(model)
        self.run_saving(model, x)

    def test_only_the_encoder_and_head_train(self):
        model = MiniBERTClassifier(backbone(vocabulary_size=40), num_classes=3)
        x, _ = packed_batch(2)
        model(x)
        names = {v.path for v in model.trainable_variables}
        self.assertFalse(any("mlm_head" in n for n in names), names)
        self.assertTrue(any(n.startswith("logits") or "/logits/" in n for n in names), names)
        frozen = MiniBERTClassifier(backbone(vocabulary_size=40), num_classes=3, trainable_encoder=False)
        frozen(x)
        self.assertEqual(len(frozen.trainable_variables), 2)  # the head's kernel and bias

    @pytest.mark.slow
    def test_mean_pooling(self):
        bert = backbone(vocabulary_size=40)
        model = MiniBERTClassifier(bert, num_classes=3, pooling="mean", dropout=0.0)
        x, y = packed_batch(4)
        sequence = bert.encoder(x)["sequence_output"].numpy()  # (4, SEQ, hidden)
        mask = x["padding_mask"][..., None].astype("float32")
        pooled = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
        kernel, bias = model.logits_dense.get_weights()
        self.assertAllClose(model(x), pooled @ kernel + bias, atol=1e-5)
        # The [CLS] pooler takes no part, so it is not trained.
        names = {v.path for v in model.trainable_variables}
        self.assertFalse(any("pooled_dense" in n for n in names), names)
        model.compile(optimizer="adam")
        model.fit(x, y, batch_size=4, verbose=0)
        self.assertEqual(MiniBERTClassifier.from_config(model.get_config()).pooling, "mean")
        with self.assertRaisesRegex(ValueError, "unknown pooling 'max'; choose one of first_token, pooled, mean"):
            MiniBERTClassifier(bert, num_classes=3, pooling="max")

    def test_deprecated_spellings(self):
        bert = backbone(vocabulary_size=40)
        x, _ = packed_batch(2)
        model = MiniBERTClassifier(bert, num_classes=3, dropout=0.0)
        self.assertEqual(model.pooling, "pooled")
        # pooling="cls" was the tanh pooler here; trainable_backbone is trainable_encoder.
        with self.assertWarns(DeprecationWarning):
            old = MiniBERTClassifier(bert, num_classes=3, dropout=0.0, pooling="cls", trainable_backbone=False)
        self.assertEqual((old.pooling, old.trainable_encoder), ("pooled", False))
        with self.assertWarns(DeprecationWarning):
            self.assertFalse(old.trainable_backbone)
        old.logits_dense.set_weights(model.logits_dense.get_weights())
        self.assertAllClose(old(x), model(x))
        # A config saved with the old names still loads.
        config = old.get_config()
        config.pop("trainable_encoder")
        config.update(pooling="cls", trainable_backbone=False)
        with self.assertWarns(DeprecationWarning):
            restored = MiniBERTClassifier.from_config(config)
        self.assertEqual((restored.pooling, restored.trainable_encoder), ("pooled", False))
        first = MiniBERTClassifier(bert, num_classes=3, dropout=0.0, pooling="first_token")
        sequence = bert.encoder(x)["sequence_output"].numpy()
        kernel, bias = first.logits_dense.get_weights()
        self.assertAllClose(first(x), sequence[:, 0] @ kernel + bias, atol=1e-5)

    def test_raw_strings_pairs_and_saved_vocabulary(self):
        model = MiniBERTClassifier(backbone(preprocessor=preprocessor()), num_classes=2)
        self.assertEqual(model.backbone.vocabulary_size, len(VOCABULARY))
        texts = ["the quick fox jumps", "a lazy dog", "the cat jumps over the dog"]
        logits = model.predict(texts, verbose=0)
        self.assertEqual(logits.shape, (3, 2))
        # Strings give the same logits as their packed form.
        packed = preprocessor()(tf.constant(texts))
        self.assertAllClose(logits, model(packed), atol=1e-5)
        pair_logits = model((tf.constant(texts), tf.constant(texts[::-1])))
        self.assertEqual(pair_logits.shape, (3, 2))
        restored = self.run_saving(model, tf.constant(texts))
        self.assertEqual(restored._preprocessor().tokenizer.get_vocabulary(), VOCABULARY)

    def test_strings_without_preprocessor_raise(self):
        model = MiniBERTClassifier(backbone(vocabulary_size=40), num_classes=2)
        with self.assertRaisesRegex(ValueError, "no preprocessor"):
            model(["some text"])

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "backbone must be a MiniBERT"):
            MiniBERTClassifier(keras.layers.Dense(3), num_classes=3)
        with self.assertRaisesRegex(ValueError, "at least 2"):
            MiniBERTClassifier(backbone(vocabulary_size=40), num_classes=1)

    @pytest.mark.slow
    def test_strategy_equivalence(self):
        x, y = packed_batch(48, seed=1)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)

        def build_and_compile():
            keras.utils.set_random_seed(11)
            model = MiniBERTClassifier(backbone(vocabulary_size=40), num_classes=3, dropout=0.0)
            model(packed_batch(2)[0])
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            return model

        def reference_loss(model, batch):
            bx, by = batch
            logits = model(bx).numpy().astype("float64")
            z = logits - logits.max(-1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
            return -log_p[np.arange(len(by)), by.numpy()].mean()

        self.run_strategy_equivalence(build_and_compile, ds, reference_loss=reference_loss)

    @pytest.mark.slow
    def test_jit_compile_step_equals_plain_step(self):
        x, y = packed_batch()
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        plain = MiniBERTClassifier(backbone(vocabulary_size=40, dropout=0.1), num_classes=3, dropout=0.1, seed=2)
        xla = MiniBERTClassifier(backbone(vocabulary_size=40, dropout=0.1), num_classes=3, dropout=0.1, seed=2)
        xla.set_weights(plain.get_weights())
        plain.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
        xla.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=True)
        # Counter-based dropout draws the same masks with and without XLA.
        a = plain.fit(data, epochs=2, verbose=0).history
        b = xla.fit(data, epochs=2, verbose=0).history
        self.assertTrue(xla.jit_compile)
        self.assertAllClose(a["loss"], b["loss"], atol=1e-4)
        for w1, w2 in zip(plain.get_weights(), xla.get_weights(), strict=True):
            self.assertAllClose(w1, w2, atol=1e-4)

    @pytest.mark.slow
    def test_distill_a_larger_minibert_into_a_smaller_one(self):
        x, y = packed_batch(32)
        teacher = MiniBERTClassifier(backbone(vocabulary_size=40, hidden_dim=32), num_classes=3)
        student = MiniBERTClassifier(backbone(vocabulary_size=40, hidden_dim=16, num_layers=1), num_classes=3)
        teacher(x), student(x)
        teacher_weights = [w.copy() for w in teacher.get_weights()]
        distiller = Distiller(teacher, student, temperature=2.0, alpha=0.5)
        distiller.compile(optimizer="adam")
        self.run_fit(distiller, tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True))
        for a, b in zip(teacher_weights, teacher.get_weights()):
            self.assertAllEqual(a, b)
        self.run_saving(distiller, x)
