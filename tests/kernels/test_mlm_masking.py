import numpy as np
import tensorflow as tf

from keras_pt.kernels import mlm_masking
from keras_pt.layers.special_tokens import CLS_ID, MASK_ID, NUM_SPECIAL_TOKENS, SEP_ID, UNK_ID
from tests.test_case import TestCase, mirrored_strategy


def packed_batch(rng, batch, length, vocab, min_len=None):
    """[CLS] ordinary/[UNK] tokens [SEP] [PAD]... with random lengths."""
    min_len = min_len or 3
    ids = rng.integers(NUM_SPECIAL_TOKENS, vocab, size=(batch, length)).astype("int32")
    ids[rng.random((batch, length)) < 0.05] = UNK_ID  # special tokens inside the text
    lengths = rng.integers(min_len, length + 1, size=(batch,))
    padding = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    ids[:, 0] = CLS_ID
    ids[np.arange(batch), lengths - 1] = SEP_ID
    return ids * padding, padding


def numpy_mask(ids, padding, scores, actions, random_tokens, rate, mask_rate, random_rate, slots):
    """NumPy reference of `apply_mlm_mask`, sequence by sequence."""
    batch, length = ids.shape
    masked = ids.copy()
    weights = np.zeros((batch, length), np.float32)
    slot_positions = np.zeros((batch, slots), np.int32)
    slot_weights = np.zeros((batch, slots), np.float32)
    rate32 = np.float32(rate)
    for b in range(batch):
        candidates = np.flatnonzero((ids[b] >= NUM_SPECIAL_TOKENS) & (padding[b] > 0))
        n = len(candidates)
        k = int(np.floor(np.float32(n) * rate32 + np.float32(0.5)))
        k = min(max(k, min(n, 1)), slots)
        # The k candidates with the largest scores, in decreasing order.
        order = candidates[np.argsort(-scores[b, candidates], kind="stable")][:k]
        slot_positions[b, :k] = order
        slot_weights[b, :k] = 1.0
        for p in order:
            weights[b, p] = 1.0
            if actions[b, p] < mask_rate:
                masked[b, p] = MASK_ID
            elif actions[b, p] < np.float32(mask_rate) + np.float32(random_rate):
                masked[b, p] = random_tokens[b, p]
    slot_labels = np.take_along_axis(ids, slot_positions, axis=1)
    return masked, weights, slot_positions, slot_labels, slot_weights


class MLMMaskingTest(TestCase):
    def test_matches_numpy_reference(self):
        rng = np.random.default_rng(0)
        ids, padding = packed_batch(rng, 16, 40, 300)
        shape = ids.shape
        scores = rng.random(shape).astype("float32")
        actions = rng.random(shape).astype("float32")
        random_tokens = rng.integers(NUM_SPECIAL_TOKENS, 300, size=shape).astype("int32")
        for rate, slots in ((0.15, 6), (0.4, 16), (0.15, 2)):
            out = mlm_masking.apply_mlm_mask(ids, padding, scores, actions, random_tokens, rate, 0.8, 0.1, slots)
            masked, weights, positions, labels, slot_weights = numpy_mask(
                ids, padding, scores, actions, random_tokens, rate, 0.8, 0.1, slots
            )
            self.assertAllEqual(out["token_ids"], masked)
            self.assertAllEqual(out["labels"], ids)
            self.assertAllEqual(out["weights"], weights)
            self.assertAllEqual(out["mask_weights"], slot_weights)
            self.assertAllEqual(out["mask_positions"], positions)
            self.assertAllEqual(out["mask_labels"], labels)

    def test_selection_statistics(self):
        rng = np.random.default_rng(1)
        vocab, length = 1000, 64
        ids, padding = packed_batch(rng, 512, length, vocab, min_len=10)
        totals = {"mask": 0, "random": 0, "kept": 0}
        position_hits = np.zeros(length)
        for step in range(8):
            out = mlm_masking.mask_tokens(ids, padding, tf.constant([7, step]), vocab)
            masked = out["token_ids"].numpy()
            selected = out["weights"].numpy() > 0
            # Exactly round(0.15 · n) of the n candidates, at least one.
            candidates = (ids >= NUM_SPECIAL_TOKENS) & (padding > 0)
            n = candidates.sum(1)
            expected = np.maximum(np.floor(n * np.float32(0.15) + 0.5), np.minimum(n, 1))
            self.assertAllEqual(selected.sum(1), expected)
            # Special tokens and padding are never selected.
            self.assertFalse(np.any(selected & ~candidates))
            # Unselected tokens are unchanged; replacements are never special.
            self.assertAllEqual(masked[~selected], ids[~selected])
            replaced = masked[selected]
            original = ids[selected]
            self.assertTrue(np.all((replaced == MASK_ID) | (replaced >= NUM_SPECIAL_TOKENS)))
            self.assertTrue(np.all(replaced < vocab))
            totals["mask"] += np.sum(replaced == MASK_ID)
            totals["random"] += np.sum((replaced != MASK_ID) & (replaced != original))
            totals["kept"] += np.sum(replaced == original)
            # Slots list exactly the selected positions and their labels.
            positions = out["mask_positions"].numpy()
            used = out["mask_weights"].numpy() > 0
            rows = np.repeat(np.arange(len(ids))[:, None], positions.shape[1], 1)
            self.assertTrue(np.all(selected[rows[used], positions[used]]))
            self.assertAllEqual(out["mask_labels"].numpy()[used], ids[rows[used], positions[used]])
            full = candidates.all(1)  # rows without padding or [UNK] between the ends
            position_hits += selected[full].sum(0)
        total = sum(totals.values())
        self.assertGreater(total, 20000)
        # 80 / 10 / 10 (a random token equals the original with p = 1/995).
        self.assertAllClose(totals["mask"] / total, 0.8, atol=0.015)
        self.assertAllClose(totals["random"] / total, 0.1 * (1 - 1 / 995), atol=0.01)
        self.assertAllClose(totals["kept"] / total, 0.1, atol=0.01)

    def test_positions_uniformly_selected(self):
        rng = np.random.default_rng(2)
        length = 22
        ids = rng.integers(NUM_SPECIAL_TOKENS, 100, size=(4000, length)).astype("int32")
        ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
        out = mlm_masking.mask_tokens(ids, None, tf.constant([3, 4]), 100)
        frequency = out["weights"].numpy().mean(0)
        self.assertAllEqual(frequency[[0, -1]], [0.0, 0.0])
        # 20 candidates, round(3.0) = 3 selected: each with probability 0.15.
        self.assertAllClose(frequency[1:-1], np.full(length - 2, 0.15), atol=0.02)

    def test_default_max_predictions_never_drops(self):
        for rate in (0.05, 0.15, 0.2, 0.5, 1.0):
            for length in (1, 2, 7, 20, 128, 512):
                slots = mlm_masking.default_max_predictions(length, rate)
                counts = [max(int(np.floor(n * np.float32(rate) + 0.5)), min(n, 1)) for n in range(length + 1)]
                self.assertLessEqual(max(counts), slots, (rate, length))
                self.assertLessEqual(slots, length)
        self.assertEqual(mlm_masking.default_max_predictions(128, 0.15), 20)
        self.assertEqual(mlm_masking.default_max_predictions(20, 0.15), 3)

    def test_new_seed_new_masks(self):
        rng = np.random.default_rng(3)
        ids, padding = packed_batch(rng, 8, 32, 100, min_len=20)
        a = mlm_masking.mask_tokens(ids, padding, tf.constant([1, 1]), 100)
        b = mlm_masking.mask_tokens(ids, padding, tf.constant([1, 2]), 100)
        again = mlm_masking.mask_tokens(ids, padding, tf.constant([1, 1]), 100)
        self.assertNotAllEqual(a["weights"], b["weights"])
        self.assertAllEqual(a["token_ids"], again["token_ids"])

    def test_same_masks_on_one_device_and_two_replicas(self):
        rng = np.random.default_rng(4)
        ids, padding = packed_batch(rng, 8, 24, 100)
        seed = tf.constant([5, 9])
        whole = mlm_masking.mask_tokens(ids, padding, seed, 100)
        strategy = mirrored_strategy()
        id_halves = tf.stack(tf.split(ids, 2))
        padding_halves = tf.stack(tf.split(padding, 2))

        @tf.function
        def step():
            def replica_fn():
                rid = tf.distribute.get_replica_context().replica_id_in_sync_group
                out = mlm_masking.mask_tokens(tf.gather(id_halves, rid), tf.gather(padding_halves, rid), seed, 100)
                return out["token_ids"], out["weights"], out["mask_positions"]

            return strategy.run(replica_fn)

        for key, per_replica in zip(("token_ids", "weights", "mask_positions"), step()):
            parts = strategy.experimental_local_results(per_replica)
            self.assertAllEqual(whole[key], tf.concat(parts, 0))

    def test_compiles_with_xla(self):
        rng = np.random.default_rng(5)
        ids, padding = packed_batch(rng, 4, 16, 50)

        @tf.function(jit_compile=True)
        def masked(ids, padding, seed):
            return mlm_masking.mask_tokens(ids, padding, seed, 50)

        # XLA may pick another stateless RNG algorithm than plain TF, so the
        # draws differ; the pure kernel on given draws agrees exactly.
        seed = tf.constant([2, 3])
        out = masked(ids, padding, seed)
        candidates = (ids >= NUM_SPECIAL_TOKENS) & (padding > 0)
        n = candidates.sum(1)
        expected = np.maximum(np.floor(n * np.float32(0.15) + 0.5), np.minimum(n, 1))
        self.assertAllEqual(out["weights"].numpy().sum(1), expected)
        self.assertFalse(np.any((out["weights"].numpy() > 0) & ~candidates))
        draws = [rng.random(ids.shape).astype("float32") for _ in range(2)]
        tokens = rng.integers(NUM_SPECIAL_TOKENS, 50, size=ids.shape).astype("int32")
        pure = tf.function(mlm_masking.apply_mlm_mask.python_function, jit_compile=True)
        for key, value in pure(ids, padding, *draws, tokens, 0.15, 0.8, 0.1, 3).items():
            self.assertAllEqual(
                value,
                mlm_masking.apply_mlm_mask(ids, padding, *draws, tokens, 0.15, 0.8, 0.1, 3)[key],
            )

    def test_bad_arguments(self):
        ids = np.full((2, 8), 10, np.int32)
        seed = tf.constant([1, 2])
        with self.assertRaisesRegex(ValueError, r"mask_selection_rate must lie in \(0, 1\]"):
            mlm_masking.mask_tokens(ids, None, seed, 100, mask_selection_rate=0.0)
        with self.assertRaisesRegex(ValueError, "must be <= 1"):
            mlm_masking.mask_tokens(ids, None, seed, 100, mask_token_rate=0.9, random_token_rate=0.2)
        with self.assertRaisesRegex(ValueError, "must exceed the 5 special tokens"):
            mlm_masking.mask_tokens(ids, None, seed, 5)
        with self.assertRaisesRegex(ValueError, r"max_predictions must lie in \[1, 8\]"):
            mlm_masking.mask_tokens(ids, None, seed, 100, max_predictions=9)

        @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
        def dynamic(ids):
            return mlm_masking.mask_tokens(ids, None, seed, 100)["token_ids"]

        with self.assertRaisesRegex(ValueError, "static seq_len"):
            dynamic(ids)

    def test_dynamic_batch_size(self):
        rng = np.random.default_rng(6)
        ids, padding = packed_batch(rng, 6, 16, 100)
        seed = tf.constant([4, 2])

        @tf.function(input_signature=[tf.TensorSpec((None, 16), tf.int32)] * 2)
        def dynamic(ids, padding):
            return mlm_masking.mask_tokens(ids, padding, seed, 100)["token_ids"]

        self.assertAllEqual(dynamic(ids, padding), mlm_masking.mask_tokens(ids, padding, seed, 100)["token_ids"])
