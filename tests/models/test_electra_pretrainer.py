"""ElectraPretrainer: replaced-token detection on a MiniBERT discriminator."""

import keras
import pytest
import numpy as np
import tensorflow as tf

import keras_pt
from keras_pt import ElectraPretrainer, training
from keras_pt.layers.special_tokens import CLS_ID, NUM_SPECIAL_TOKENS, SEP_ID
from tests.test_case import TestCase
from tests.models.test_mini_bert import LENGTH, VOCAB, packed, tiny_bert


def electra(bert=None, **overrides):
    config = dict(generator_intermediate_dim=32, seed=3)
    config.update(overrides)
    return ElectraPretrainer(tiny_bert(**(bert or {})), **config)


class ElectraPretrainerTest(TestCase):
    def test_outputs_and_trainable_parts(self):
        model = electra()
        batch = packed(4)
        scores = model(batch)
        self.assertEqual(scores.shape, (4, LENGTH))  # one replaced-token logit per token
        self.assertIs(model.encoder, model.discriminator.encoder)
        trained = {id(v) for v in model._pretraining_variables()}
        # The discriminator's MLM head and pooler are not trained; its
        # embeddings are shared with the generator.
        for layer in (model.discriminator.mlm_head, model.discriminator.pooled_dense):
            self.assertFalse(any(id(v) in trained for v in layer.trainable_variables))
        for v in model.discriminator.embedding.trainable_variables:
            self.assertIn(id(v), trained)
        self.assertEqual(len(model.generator_layers[0].trainable_variables) > 0, True)

    def test_replaced_tokens_are_the_generator_samples(self):
        model = electra()
        batch = {k: tf.constant(v) for k, v in packed(8, seed=1).items()}
        state = model.seed_generator.state.numpy()
        mlm, rtd = model._terms(batch, training=False)
        model.seed_generator.state.assign(state)
        # Slots: round(0.15 · candidates) per sequence; tokens: the real ones.
        self.assertAllClose(np.sum(rtd[2], axis=1), np.sum(batch["padding_mask"], axis=1))
        self.assertLessEqual(float(np.sum(mlm[2])), float(np.sum(batch["padding_mask"])))
        self.assertTrue(np.all(np.isfinite(rtd[0])))
        # An untrained generator samples nearly uniformly: almost every
        # selected position is replaced, no other.
        replaced_share = np.mean(1.0 - rtd[1][rtd[2] > 0])  # head not trained: ~chance hits
        self.assertGreater(replaced_share, 0.0)

    @pytest.mark.slow
    def test_fit_learns_to_detect_replacements(self):
        # Each sequence repeats one token: the generator learns to copy it
        # (masked-LM accuracy rises), and replaced tokens stand out.
        def language(n, seed):
            rng = np.random.default_rng(seed)
            ids = np.repeat(rng.integers(NUM_SPECIAL_TOKENS, VOCAB, size=(n, 1)), LENGTH, 1)
            ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
            return {
                "token_ids": ids.astype("int32"),
                "segment_ids": np.zeros_like(ids),
                "padding_mask": np.ones_like(ids),
            }

        model = ElectraPretrainer(tiny_bert(dropout=0.0), generator_intermediate_dim=32, seed=3)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        before = model.evaluate(language(128, 1), batch_size=32, verbose=0, return_dict=True)
        history = self.run_fit(model, tf.data.Dataset.from_tensor_slices(language(1024, 0)).batch(32), epochs=8)
        after = model.evaluate(language(128, 1), batch_size=32, verbose=0, return_dict=True)
        self.assertEqual(sorted(history.history), ["loss", "mlm_accuracy", "mlm_loss", "rtd_accuracy", "rtd_loss"])
        # About 12.5% of the tokens are selected: always answering "original"
        # scores 0.875, with a loss of about 0.377 (the label entropy).
        self.assertLess(before["mlm_accuracy"], 0.05)
        self.assertGreater(after["mlm_accuracy"], 0.3)
        self.assertGreater(after["rtd_accuracy"], 0.89)
        self.assertLess(after["rtd_loss"], 0.33)
        self.assertAllClose(after["loss"], after["mlm_loss"] + 50.0 * after["rtd_loss"], rtol=1e-5)

    @pytest.mark.slow
    def test_config_and_saving(self):
        model = electra(rtd_weight=20.0, temperature=0.5, generator_num_layers=2)
        rebuilt = model.__class__.from_config(model.get_config())
        self.assertEqual(rebuilt.get_config()["rtd_weight"], 20.0)
        self.assertEqual(rebuilt.generator_num_layers, 2)
        model.compile(optimizer="adam")
        batch = packed(8)
        model.fit(batch, batch_size=4, verbose=0)
        restored = self.run_saving(model, batch)
        self.assertAllEqual(restored.seed_generator.state, model.seed_generator.state)
        self.assertEqual(restored.optimizer.iterations.numpy(), model.optimizer.iterations.numpy())
        # The discriminator is a MiniBERT, ready for fine-tuning.
        self.assertIsInstance(restored.discriminator, keras_pt.MiniBERT)
        self.assertAllClose(
            model.discriminator.encoder(batch, training=False)["sequence_output"],
            restored.discriminator.encoder(batch, training=False)["sequence_output"],
            atol=1e-5,
        )
        restored.fit(batch, batch_size=4, verbose=0)

    @pytest.mark.slow
    def test_trains_through_keras_pt_training(self):
        batches = packed(32, seed=5)

        def build():
            model = electra()
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            return model

        def dataset_fn(epoch, batch_size, seed):
            return tf.data.Dataset.from_tensor_slices(batches).batch(batch_size, drop_remainder=True)

        result = training.train(
            build,
            dataset_fn,
            batch_size=8,
            steps=6,
            model_dir=self.get_temp_dir(),
            seed=0,
            verbose=0,
        )
        self.assertEqual(result.step, 6)
        self.assertIsInstance(result.model, ElectraPretrainer)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "MiniBERT"):
            ElectraPretrainer(keras.Sequential([keras.layers.Dense(2)]))
        with self.assertRaisesRegex(ValueError, "generator_num_layers"):
            electra(generator_num_layers=0)
        with self.assertRaisesRegex(ValueError, "temperature"):
            electra(temperature=0.0)
