"""Every random draw takes a seed that no other draw of the same or a later
call uses, so masks, noise and latents are independent across calls, across
the two passes of a contrastive step, and within a call.

Two checks:
- the seed tape (`kernels.random.record_seeds`) lists every draw seed of two
  consecutive eager training steps of each model; for every pair of them
  the Bernoulli(p) masks the package's draw primitives make from those seeds
  (counter-hash dropout bits and Philox uniforms) must be dropped together
  in a fraction p² of positions, chance level, and never p (equal seeds);
- where a mask is visible in a layer's output (dropout zeros, masking
  noise), two consecutive calls' masks agree at chance level.
"""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

import keras_pt
from keras_pt.kernels import dropout as dropout_kernel
from keras_pt.kernels import random
from keras_pt.layers.bert_embedding import BertEmbedding
from keras_pt.layers.fast_dropout import FastDropout
from keras_pt.layers.special_tokens import NUM_SPECIAL_TOKENS
from keras_pt.layers.transformer_encoder_block import TransformerEncoderBlock
from tests import strategy_cases
from tests.test_case import TestCase

RATE = 0.1
NUM_POSITIONS = 1 << 16
# Standard deviation of a chance-level agreement is about 0.0004 here; equal
# seeds would agree in a fraction RATE = 0.1 of positions.
TOLERANCE = 0.004

_DROPOUT = ("attention_dropout", "attention_output_dropout", "feedforward_dropout")
_MLM = ("mlm_selection", "mlm_action", "mlm_replacement")


def _masks_from_seeds(seeds):
    """(2·k, NUM_POSITIONS) 0/1 masks: hash-dropout and Philox draws per seed."""
    threshold = tf.constant(dropout_kernel.keep_threshold(RATE), tf.uint32)
    masks = []
    for seed in seeds:
        bits = dropout_kernel.random_bits([NUM_POSITIONS], tf.constant(seed, tf.int32))
        masks.append((bits < threshold).numpy())
        uniform = tf.random.stateless_uniform([NUM_POSITIONS], seed=tf.constant(seed, tf.int32))
        masks.append((uniform < RATE).numpy())
    return np.asarray(masks, np.float64)


def _pairwise_agreement(masks):
    """Fraction of positions dropped in both masks, for every pair of rows."""
    both = masks @ masks.T / masks.shape[1]
    rows, cols = np.triu_indices(len(masks), k=1)
    return both[rows, cols], rows, cols


def _packed(seed=0):
    return strategy_cases._packed_texts() if seed == 0 else _shuffled_packed(seed)


def _shuffled_packed(seed):
    packed = strategy_cases._packed_texts()
    order = np.random.default_rng(seed).permutation(len(packed["token_ids"]))
    return {key: value[order] for key, value in packed.items()}


def _tiny_backbone(seed=5, dropout=RATE):
    return keras_pt.MiniBERT(
        vocabulary_size=strategy_cases._VOCAB,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=strategy_cases._LENGTH,
        dropout=dropout,
        seed=seed,
    )


def _fit_two_steps(model, x, y=None):
    """Two eager training steps (batch 16 of 32 examples), seeds recorded."""
    with random.record_seeds() as tape:
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return tape


def _mini_bert():
    model = _tiny_backbone()
    model.compile(optimizer="sgd", run_eagerly=True)
    return _fit_two_steps(model, strategy_cases._packed_texts())


def _mini_bert_classifier():
    model = keras_pt.MiniBERTClassifier(_tiny_backbone(), num_classes=4, dropout=RATE, seed=6)
    model.compile(optimizer="sgd", run_eagerly=True)
    return _fit_two_steps(model, strategy_cases._packed_texts(), strategy_cases._labels())


def _mini_gpt():
    model = keras_pt.MiniGPT(
        vocabulary_size=strategy_cases._VOCAB,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=strategy_cases._LENGTH,
        dropout=RATE,
    )
    model.compile(optimizer="sgd", run_eagerly=True)
    packed = strategy_cases._packed_texts()
    return _fit_two_steps(model, {k: packed[k] for k in ("token_ids", "padding_mask")})


def _sentence_encoder(supervised, views="dropout"):
    model = keras_pt.SentenceEncoder(_tiny_backbone().encoder, views=views, seed=4)
    model.compile(optimizer="sgd", run_eagerly=True)
    anchors = strategy_cases._packed_texts()
    positives = _shuffled_packed(1) if supervised else None
    return _fit_two_steps(model, anchors, positives)


def _distiller():
    teacher = keras_pt.MiniBERTClassifier(_tiny_backbone(seed=11), num_classes=4)
    student = keras_pt.MiniBERTClassifier(_tiny_backbone(), num_classes=4, dropout=RATE, seed=6)
    model = keras_pt.Distiller(teacher, student)
    model.compile(optimizer="sgd", run_eagerly=True)
    return _fit_two_steps(model, strategy_cases._packed_texts(), strategy_cases._labels())


def _denoising_autoencoder():
    model = keras_pt.DenoisingAutoencoder(image_shape=(8, 8, 1), latent_dim=4, seed=7)
    model.compile(optimizer="sgd", run_eagerly=True)
    return _fit_two_steps(model, strategy_cases._images())


def _sim_clr():
    model = keras_pt.SimCLR(image_shape=(8, 8, 1), filters=(4, 8), feature_dim=8, projection_dim=4, seed=3)
    model.compile(optimizer="sgd", run_eagerly=True)
    return _fit_two_steps(model, strategy_cases._images())


_VIEW = (
    "view_crop_area",
    "view_aspect_ratio",
    "view_crop_top",
    "view_crop_left",
    "view_flip",
    "view_brightness",
    "view_contrast",
    "view_noise",
)


def _gan(loss):
    gan = keras_pt.GAN(
        keras_pt.Generator([8, 8, 1], latent_dim=8, base_filters=4, num_classes=4),
        keras_pt.Discriminator([8, 8, 1], base_filters=4, num_classes=4),
        loss=loss,
        seed=3,
    )
    gan.compile(d_optimizer="sgd", g_optimizer="sgd", run_eagerly=True)
    images = strategy_cases._images(-1.0, 1.0)
    return _fit_two_steps(gan, images, strategy_cases._labels())


def _layer_calls(layer, x, calls=2):
    with random.record_seeds() as tape:
        for _ in range(calls):
            layer(x, training=True)
    return tape


def _transformer_block():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32, dropout=RATE, seed=1)
    return _layer_calls(block, tf.random.normal((4, 12, 16)))


def _bert_embedding():
    layer = BertEmbedding(vocabulary_size=40, hidden_dim=16, max_sequence_length=12, dropout=RATE, seed=1)
    return _layer_calls(layer, tf.constant(strategy_cases._packed_texts()["token_ids"][:4]))


def _fast_dropout():
    return _layer_calls(FastDropout(RATE, seed=1), tf.ones((4, 16)))


# (case, builder returning the tape of two steps or calls, {name: draws}).
CASES = [
    ("fast_dropout", _fast_dropout, {"dropout": 2}),
    ("bert_embedding", _bert_embedding, {"embedding_dropout": 2}),
    ("transformer_block", _transformer_block, {name: 2 for name in _DROPOUT}),
    # Two steps: masking and one embedding + two blocks' dropout per step.
    ("mini_bert", _mini_bert, {**{n: 2 for n in _MLM}, "embedding_dropout": 2, **{n: 4 for n in _DROPOUT}}),
    ("mini_bert_classifier", _mini_bert_classifier, {"dropout": 2, "embedding_dropout": 2, **{n: 4 for n in _DROPOUT}}),
    ("mini_gpt", _mini_gpt, {"embedding_dropout": 2, **{n: 4 for n in _DROPOUT}}),
    # Two passes (anchor and positive view) per step.
    (
        "sentence_encoder_supervised",
        lambda: _sentence_encoder(True),
        {"embedding_dropout": 4, **{n: 8 for n in _DROPOUT}},
    ),
    (
        "sentence_encoder_unsupervised",
        lambda: _sentence_encoder(False),
        {"embedding_dropout": 4, **{n: 8 for n in _DROPOUT}},
    ),
    (
        "sentence_encoder_crops",
        lambda: _sentence_encoder(False, "crop"),
        {"crop_anchor": 2, "crop_positive": 2, "embedding_dropout": 4, **{n: 8 for n in _DROPOUT}},
    ),
    ("distiller", _distiller, {"dropout": 2, "embedding_dropout": 2, **{n: 4 for n in _DROPOUT}}),
    ("denoising_autoencoder", _denoising_autoencoder, {"noise_normal": 2, "noise_mask": 2}),
    # Two views per step.
    ("sim_clr", _sim_clr, {n: 4 for n in _VIEW}),
    ("gan_conditional", lambda: _gan("non_saturating"), {"latent": 2, "fake_labels": 2}),
    ("gan_wasserstein", lambda: _gan("wasserstein"), {"latent": 2, "fake_labels": 2, "interpolation": 2}),
]


class SeedTapeTest(TestCase, parameterized.TestCase):
    @parameterized.named_parameters(*CASES)
    def test_every_draw_has_its_own_seed(self, build, expected_draws):
        keras.utils.set_random_seed(0)
        tape = build()
        names = [name for name, _ in tape]
        counts = {name: names.count(name) for name in set(names)}
        self.assertEqual(counts, expected_draws)

        seeds = [seed for _, seed in tape]
        distinct = {tuple(int(v) for v in seed) for seed in seeds}
        self.assertLen(distinct, len(seeds), f"repeated seeds among {tape}")
        agreement, rows, cols = _pairwise_agreement(_masks_from_seeds(seeds))
        worst = int(np.argmax(np.abs(agreement - RATE**2)))
        self.assertLess(
            abs(agreement[worst] - RATE**2),
            TOLERANCE,
            f"draws {names[rows[worst] // 2]!r} and {names[cols[worst] // 2]!r} are "
            f"dropped together at {agreement[worst]:.4f}, chance is {RATE**2:.4f}",
        )

    def test_a_repeated_seed_is_detected(self):
        # The check itself: a seed reused by a later draw agrees at RATE.
        seeds = [np.array([7, 1]), np.array([7, 2]), np.array([7, 1])]
        agreement, _, _ = _pairwise_agreement(_masks_from_seeds(seeds))
        self.assertGreater(agreement.max(), RATE - TOLERANCE)

    def test_split_is_replica_free_and_compiles(self):
        seed = tf.constant([7, 3])
        eager = random.split(seed, ("a", "b"))
        compiled = tf.function(lambda s: random.split(s, ("a", "b")), jit_compile=True)(seed)
        self.assertAllEqual(tf.stack(eager), tf.stack(compiled))
        # A later generator state never equals a derived seed.
        later = random.split(tf.constant([7, 4]), ("a", "b"))
        self.assertNotIn(tuple(later[0].numpy()), {tuple(s.numpy()) for s in eager})


def _visible_masks(layer_call, calls=3):
    """0/1 dropped masks of consecutive calls, read from zeros in the output."""
    return np.asarray([(layer_call().numpy() == 0).reshape(-1) for _ in range(calls)], np.float64)


class VisibleMaskTest(TestCase, parameterized.TestCase):
    def _assert_chance(self, masks, rate):
        self.assertAllClose(masks.mean(axis=1), [rate] * len(masks), atol=0.02)
        agreement, _, _ = _pairwise_agreement(masks)
        self.assertAllClose(agreement, [rate**2] * len(agreement), atol=0.01)

    def test_fast_dropout(self):
        layer = FastDropout(0.3, seed=2)
        self._assert_chance(_visible_masks(lambda: layer(tf.ones((64, 128)), training=True)), 0.3)

    def test_bert_embedding(self):
        layer = BertEmbedding(vocabulary_size=40, hidden_dim=64, max_sequence_length=12, dropout=0.3, seed=2)
        ids = tf.constant(np.tile(strategy_cases._packed_texts()["token_ids"], (2, 1)))
        self._assert_chance(_visible_masks(lambda: layer(ids, training=True)), 0.3)

    def test_denoising_masking_noise(self):
        model = keras_pt.DenoisingAutoencoder(
            image_shape=(8, 8, 1), latent_dim=4, noise_stddev=0.0, mask_rate=0.3, seed=2
        )
        images = tf.ones((256, 8, 8, 1))
        self._assert_chance(_visible_masks(lambda: model.corrupt(images)), 0.3)

    def test_mlp_head_dropout(self):
        model = keras_pt.MLPClassifier(strategy_cases._encoder(), num_classes=4, hidden_dims=(8,), dropout=0.3)
        (layer,) = [l for l in model.head_layers if isinstance(l, keras.layers.Dropout)]
        self._assert_chance(_visible_masks(lambda: layer(tf.ones((64, 128)), training=True)), 0.3)

    def test_mlm_selection_across_steps(self):
        # Positions chosen for prediction in consecutive steps overlap at
        # chance: a selected position is selected again with probability
        # about the selection rate.
        model = _tiny_backbone(dropout=0.0)
        packed = {k: tf.constant(np.tile(v, (8, 1))) for k, v in strategy_cases._packed_texts().items()}
        # Only ordinary tokens are candidates for selection.
        candidates = packed["token_ids"].numpy().reshape(-1) >= NUM_SPECIAL_TOKENS
        masks = [(model.mask(packed)["weights"].numpy().reshape(-1) > 0)[candidates] for _ in range(3)]
        masks = np.asarray(masks, np.float64)
        rate = masks.mean()
        agreement, _, _ = _pairwise_agreement(masks)
        self.assertAllClose(agreement, [rate**2] * len(agreement), atol=0.01)
