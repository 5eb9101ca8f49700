import math
import pytest

import numpy as np
import tensorflow as tf
from scipy.special import erf

from keras_pt.kernels import dropout as dropout_kernel
from keras_pt.kernels import transformer as kernels
from keras_pt.layers import BertEmbedding, FastDropout, MaskedLMHead, TransformerEncoderBlock
from keras_pt.layers.transformer_encoder_block import make_attention_bias, mask_value
from tests.test_case import TestCase, mirrored_strategy


# === NumPy references (float64) ===


def np_layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_activation(x, name):
    if name == "gelu":
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))
    if name == "gelu_approximate":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return np.maximum(x, 0)


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_block(x, mask, w, heads, eps, activation, causal=False):
    """Post-LN BERT block: LN(x + Attn(x)), LN(h + FFN(h))."""
    batch, length, hidden = x.shape
    d = hidden // heads
    qkv = x @ w["qkv_kernel"] + w["qkv_bias"]
    q, k, v = np.split(qkv, 3, axis=-1)
    split = lambda t: t.reshape(batch, length, heads, d).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)  # (b, h, q, k)
    allowed = np.broadcast_to(mask[:, None, None, :] > 0, scores.shape).copy()
    if causal:
        allowed &= np.tril(np.ones((length, length), bool))[None, None]
    scores = np.where(allowed, scores, -1e30)
    context = (np_softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
    attended = context @ w["attention_output_kernel"] + w["attention_output_bias"]
    h = np_layer_norm(x + attended, w["attention_layer_norm/gamma"], w["attention_layer_norm/beta"], eps)
    inner = np_activation(h @ w["intermediate_kernel"] + w["intermediate_bias"], activation)
    out = inner @ w["output_kernel"] + w["output_bias"]
    return np_layer_norm(h + out, w["feedforward_layer_norm/gamma"], w["feedforward_layer_norm/beta"], eps)


def randomize(layer, rng, scale=0.3):
    """Random values (non-zero biases, gammas near 1) for every weight; returns them by name."""
    values = {}
    prefix = layer.name + "/"
    for v in layer.weights:
        name = v.path[len(prefix) :] if v.path.startswith(prefix) else v.path
        if name.endswith("gamma"):
            value = 1.0 + 0.2 * rng.standard_normal(v.shape)
        else:
            value = scale * rng.standard_normal(v.shape)
        v.assign(value.astype("float32"))
        values[name] = value
    return values


def padding(batch, length, lengths):
    return (np.arange(length)[None, :] < np.asarray(lengths)[:, None]).astype("int32")


class TransformerEncoderBlockTest(TestCase):
    def _block(self, rng, causal=False, activation="gelu", dropout=0.0, hidden=32, seed=3):
        block = TransformerEncoderBlock(
            num_heads=4,
            intermediate_dim=48,
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=1e-6,
            causal=causal,
            seed=seed,
        )
        block.build((None, None, hidden))
        return block, randomize(block, rng)

    def test_matches_numpy(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 10, 32)).astype("float32")
        mask = padding(3, 10, [10, 7, 1])
        for activation in ("gelu", "gelu_approximate", "relu"):
            for causal in (False, True):
                block, w = self._block(rng, causal=causal, activation=activation)
                expected = np_block(x.astype("float64"), mask, w, 4, 1e-6, activation, causal)
                self.assertAllClose(block(x, padding_mask=mask), expected, atol=2e-4, rtol=2e-4)
                # A bool mask works alike.
                self.assertAllClose(block(x, padding_mask=mask.astype(bool)), expected, atol=2e-4, rtol=2e-4)

    def test_padded_tokens_do_not_change_real_outputs(self):
        rng = np.random.default_rng(1)
        block, _ = self._block(rng)
        x = rng.standard_normal((2, 12, 32)).astype("float32")
        mask = padding(2, 12, [8, 5])
        other = x.copy()
        other[0, 8:] = rng.standard_normal((4, 32))
        other[1, 5:] = 10 * rng.standard_normal((7, 32))
        a, b = block(x, padding_mask=mask).numpy(), block(other, padding_mask=mask).numpy()
        self.assertAllClose(a[0, :8], b[0, :8], atol=1e-5)
        self.assertAllClose(a[1, :5], b[1, :5], atol=1e-5)
        self.assertNotAllClose(a[0, 8:], b[0, 8:])

    def test_causal_outputs_ignore_later_tokens(self):
        rng = np.random.default_rng(2)
        block, _ = self._block(rng, causal=True)
        x = rng.standard_normal((2, 9, 32)).astype("float32")
        for t in (1, 4, 8):
            other = x.copy()
            other[:, t:] = rng.standard_normal((2, 9 - t, 32))
            a, b = block(x).numpy(), block(other).numpy()
            self.assertAllClose(a[:, :t], b[:, :t], atol=1e-5)
            self.assertNotAllClose(a[:, t:], b[:, t:])
        # The bidirectional block does see later tokens.
        bidirectional, _ = self._block(rng)
        other = x.copy()
        other[:, 5:] += 1.0
        self.assertNotAllClose(bidirectional(x)[:, :5], bidirectional(other)[:, :5])

    def test_query_positions_equal_gathered_rows(self):
        rng = np.random.default_rng(3)
        x = rng.standard_normal((3, 11, 32)).astype("float32")
        mask = padding(3, 11, [11, 9, 4])
        positions = np.array([[1, 5, 10], [0, 8, 2], [3, 3, 0]], np.int32)
        for causal in (False, True):
            block, _ = self._block(rng, causal=causal)
            full = block(x, padding_mask=mask).numpy()
            some = block(x, padding_mask=mask, query_positions=positions)
            self.assertEqual(some.shape, (3, 3, 32))
            self.assertAllClose(some, np.take_along_axis(full, positions[:, :, None], 1), atol=1e-5)

    def test_call_with_cache_equals_causal_call(self):
        rng = np.random.default_rng(11)
        block, _ = self._block(rng, causal=True)
        x = rng.standard_normal((2, 10, 32)).astype("float32")
        full = block(x).numpy()
        empty = tf.zeros((2, 4, 10, 8))
        # Prefill the first 4 positions, then one position per step.
        y, keys, values = block.call_with_cache(x[:, :4], empty, empty, 0)
        self.assertAllClose(y, full[:, :4], atol=1e-5)
        for i in range(4, 10):
            y, keys, values = block.call_with_cache(x[:, i : i + 1], keys, values, tf.constant(i))
            self.assertAllClose(y[:, 0], full[:, i], atol=1e-5)
        # The whole sequence at once fills every cache position.
        y, all_keys, all_values = block.call_with_cache(x, empty, empty, 0)
        self.assertAllClose(y, full, atol=1e-5)
        self.assertAllClose(keys, all_keys, atol=1e-5)
        self.assertAllClose(values, all_values, atol=1e-5)
        bidirectional, _ = self._block(rng)
        with self.assertRaisesRegex(ValueError, "causal"):
            bidirectional.call_with_cache(x, empty, empty, 0)

    def test_query_positions_in_training_share_the_dropout_masks(self):
        rng = np.random.default_rng(8)
        x = rng.standard_normal((3, 10, 32)).astype("float32")
        mask = padding(3, 10, [10, 9, 6])
        positions = np.array([[1, 5, 9], [0, 8, 2], [3, 3, 0]], np.int32)
        block, _ = self._block(rng, dropout=0.3)
        state = block.seed_generator.state.numpy()
        full = block(x, padding_mask=mask, training=True).numpy()
        block.seed_generator.state.assign(state)
        some = block(x, padding_mask=mask, query_positions=positions, training=True)
        self.assertAllClose(some, np.take_along_axis(full, positions[:, :, None], 1), atol=1e-5)
        self.assertNotAllClose(full, block(x, padding_mask=mask).numpy())

    @pytest.mark.slow
    def test_fused_gradients_equal_plain_and_xla_gradients(self):
        rng = np.random.default_rng(4)
        x = tf.constant(rng.standard_normal((4, 8, 32)).astype("float32"))
        mask = tf.constant(padding(4, 8, [8, 6, 3, 8]))
        positions = tf.constant(rng.integers(0, 8, size=(4, 3)).astype("int32"))
        block, _ = self._block(rng, dropout=0.2)
        state = block.seed_generator.state.numpy()

        def loss_and_grads(query_positions):
            block.seed_generator.state.assign(state)  # the same dropout masks
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = block(x, padding_mask=mask, query_positions=query_positions, training=True)
                loss = tf.reduce_sum(y * tf.sin(y))
            return [loss] + tape.gradient(loss, [x] + block.trainable_variables)

        for query_positions in (None, positions):
            fused = tf.function(loss_and_grads)(query_positions)  # XLA kernels + custom gradients
            xla = tf.function(loss_and_grads, jit_compile=True)(query_positions)  # one XLA step
            eager = loss_and_grads(query_positions)
            for a, b, c in zip(fused, xla, eager, strict=True):
                self.assertAllClose(a, b, atol=2e-4, rtol=2e-4)
                self.assertAllClose(a, c, atol=2e-4, rtol=2e-4)
            self.assertGreater(float(tf.reduce_max(tf.abs(fused[2]))), 0.0)

    def test_fused_kernel_gradients_equal_tf_autodiff(self):
        rng = np.random.default_rng(5)
        f = lambda *shape: tf.constant(rng.standard_normal(shape).astype("float32"))
        seed, replica = tf.constant([3, 4]), tf.constant(0)
        bias = make_attention_bias(tf.constant(padding(2, 6, [6, 4])), 6, tf.float32)
        cases = {
            kernels.self_attention: ((f(2, 6, 48), f(48)), (bias, 4, 0.3, seed, replica)),
            kernels.query_attention: (
                (f(2, 3, 16), f(16), f(2, 6, 32), f(32)),
                (bias, 4, 0.3, seed, replica, tf.constant([[0, 5, 2], [1, 1, 3]])),
            ),
            kernels.residual_layer_norm: ((f(12, 16), f(16), f(12, 16), f(16), f(16)), (1e-6, 0.3, seed, replica)),
            kernels.bias_activation: ((f(12, 16), f(16)), ("gelu",)),
            kernels.bias_activation_layer_norm: ((f(12, 16), f(16), f(16), f(16)), ("gelu_approximate", 1e-6)),
            kernels.embedding_layer_norm: (
                (f(2, 6, 16), f(1, 6, 16), f(2, 6, 16), f(16), f(16)),
                (1e-6, 0.3, seed, replica),
            ),
        }
        for kernel, (inputs, rest) in cases.items():

            def grads(fn):
                with tf.GradientTape() as tape:
                    tape.watch(list(inputs))
                    y = fn(*inputs, *rest)
                    loss = tf.reduce_sum(y * tf.cos(y))
                return [y] + tape.gradient(loss, list(inputs))

            fused = tf.function(lambda: grads(kernel))()
            plain = grads(kernel.python_function)
            for a, b in zip(fused, plain, strict=True):
                self.assertAllClose(a, b, atol=1e-4, rtol=1e-4, msg=kernel.__name__)

    def test_dropout_only_in_training(self):
        rng = np.random.default_rng(6)
        block, _ = self._block(rng, dropout=0.3)
        x = rng.standard_normal((2, 8, 32)).astype("float32")
        self.assertAllClose(block(x), block(x))
        self.assertNotAllClose(block(x, training=True), block(x, training=True))

    def test_mask_value_is_safe_in_low_precision(self):
        for dtype in (tf.float16, tf.bfloat16, tf.float32):
            bias = make_attention_bias(tf.zeros((1, 4), tf.int32), 4, dtype, causal=True)
            scores = tf.cast(tf.random.normal((1, 1, 4, 4)), dtype) * 30 + bias
            probs = tf.nn.softmax(tf.cast(scores, tf.float32))
            self.assertTrue(np.all(np.isfinite(probs.numpy())), dtype)
            self.assertAllClose(tf.reduce_sum(probs, -1), tf.ones((1, 1, 4)))
            self.assertTrue(np.isfinite(float(mask_value(dtype) * 2 - 10)))
        rng = np.random.default_rng(7)
        block, _ = self._block(rng)
        out = block(rng.standard_normal((2, 5, 32)).astype("float32"), padding_mask=padding(2, 5, [0, 3]))
        self.assertTrue(np.all(np.isfinite(out.numpy())))

    def test_mixed_precision(self):
        block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32, dtype="mixed_bfloat16")
        x = tf.random.normal((2, 6, 16))
        y = block(x, padding_mask=padding(2, 6, [6, 2]), training=True)
        self.assertEqual(y.dtype, tf.bfloat16)
        self.assertTrue(np.all(np.isfinite(tf.cast(y, tf.float32).numpy())))

    def test_config_and_bad_arguments(self):
        block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, causal=True, activation="relu")
        rebuilt = TransformerEncoderBlock.from_config(block.get_config())
        self.assertEqual(rebuilt.get_config(), block.get_config())
        with self.assertRaisesRegex(ValueError, "num_heads=3 must divide the hidden size 32"):
            TransformerEncoderBlock(num_heads=3, intermediate_dim=16)(tf.zeros((1, 2, 32)))
        with self.assertRaisesRegex(ValueError, "unknown activation 'swish'"):
            TransformerEncoderBlock(num_heads=2, intermediate_dim=16, activation="swish")
        with self.assertRaisesRegex(ValueError, r"dropout must lie in \[0, 1\)"):
            TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dropout=1.0)


class BertEmbeddingTest(TestCase):
    def test_matches_numpy(self):
        rng = np.random.default_rng(0)
        layer = BertEmbedding(vocabulary_size=50, hidden_dim=16, max_sequence_length=12, layer_norm_epsilon=1e-6)
        layer.build()
        w = randomize(layer, rng)
        ids = rng.integers(0, 50, size=(3, 7)).astype("int32")
        segments = rng.integers(0, 2, size=(3, 7)).astype("int32")
        summed = w["token_embeddings"][ids] + w["position_embeddings"][:7][None] + w["segment_embeddings"][segments]
        expected = np_layer_norm(summed, w["layer_norm/gamma"], w["layer_norm/beta"], 1e-6)
        self.assertAllClose(layer(ids, segments), expected, atol=1e-4)
        no_segments = np_layer_norm(
            summed - w["segment_embeddings"][segments] + w["segment_embeddings"][0],
            w["layer_norm/gamma"],
            w["layer_norm/beta"],
            1e-6,
        )
        self.assertAllClose(layer(ids), no_segments, atol=1e-4)

    def test_start_index(self):
        layer = BertEmbedding(vocabulary_size=50, hidden_dim=16, max_sequence_length=12)
        ids = np.random.default_rng(1).integers(0, 50, size=(2, 9)).astype("int32")
        full = layer(ids).numpy()
        self.assertAllClose(layer(ids[:, 5:8], start_index=5), full[:, 5:8], atol=1e-6)
        self.assertAllClose(layer(ids[:, 3:4], start_index=tf.constant(3)), full[:, 3:4], atol=1e-6)

    def test_dropout_rate(self):
        layer = BertEmbedding(vocabulary_size=50, hidden_dim=64, max_sequence_length=16, dropout=0.25, seed=1)
        ids = np.random.default_rng(1).integers(0, 50, size=(16, 16))
        dropped = layer(ids, training=True).numpy() == 0.0
        self.assertAllClose(dropped.mean(), 0.25, atol=0.02)
        self.assertFalse(np.any(layer(ids).numpy() == 0.0))

    def test_bad_inputs(self):
        layer = BertEmbedding(vocabulary_size=50, hidden_dim=16, max_sequence_length=8)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "token ids must be < vocabulary_size=50"):
            layer(np.array([[2, 50, 3]]))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "token ids must be >= 0"):
            layer(np.array([[2, -1, 3]]))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "segment ids must be < num_segments=2"):
            layer(np.array([[2, 7, 3]]), np.array([[0, 2, 0]]))
        with self.assertRaisesRegex(ValueError, "length 9 exceed max_sequence_length=8"):
            layer(np.zeros((1, 9), np.int32))
        with self.assertRaisesRegex(ValueError, "token_ids must be integers"):
            layer(np.zeros((1, 4), np.float32))

        @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
        def dynamic(ids):
            return layer(ids)

        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "exceeds max_sequence_length=8"):
            dynamic(tf.zeros((1, 9), tf.int32))
        rebuilt = BertEmbedding.from_config(layer.get_config())
        self.assertEqual(rebuilt.get_config(), layer.get_config())


class MaskedLMHeadTest(TestCase):
    def test_matches_numpy_with_tied_embeddings(self):
        rng = np.random.default_rng(0)
        head = MaskedLMHead(vocabulary_size=30, layer_norm_epsilon=1e-6)
        head.build((None, None, 16))
        w = randomize(head, rng)
        embeddings = rng.standard_normal((30, 16)).astype("float32")
        x = rng.standard_normal((2, 5, 16)).astype("float32")
        h = np_activation(x @ w["transform_kernel"] + w["transform_bias"], "gelu")
        h = np_layer_norm(h, w["layer_norm/gamma"], w["layer_norm/beta"], 1e-6)
        expected = h @ embeddings.T + w["output_bias"]
        self.assertAllClose(head(x, embeddings), expected, atol=1e-4)
        positions = np.array([[4, 0], [2, 2]], np.int32)
        self.assertAllClose(
            head(x, embeddings, mask_positions=positions),
            np.take_along_axis(expected, positions[:, :, None], 1),
            atol=1e-4,
        )
        with self.assertRaisesRegex(ValueError, "has 31 rows but the head scores vocabulary_size=30"):
            head(x, np.zeros((31, 16), np.float32))
        self.assertEqual(MaskedLMHead.from_config(head.get_config()).get_config(), head.get_config())


class FastDropoutTest(TestCase):
    def test_statistics(self):
        layer = FastDropout(0.1, seed=3)
        x = tf.ones((64, 128, 32))
        first = layer(x, training=True).numpy()
        self.assertAllClose(np.unique(first), [0.0, 1 / 0.9])
        self.assertAllClose((first == 0).mean(), 0.1, atol=0.003)
        self.assertAllClose(first.mean(), 1.0, atol=0.005)
        second = layer(x, training=True).numpy()
        # A fresh mask per call, uncorrelated with the previous one.
        self.assertAllClose(np.corrcoef(first.ravel(), second.ravel())[0, 1], 0.0, atol=0.01)
        # Neighbouring elements are uncorrelated too.
        self.assertAllClose(np.corrcoef(first[..., :-1].ravel(), first[..., 1:].ravel())[0, 1], 0.0, atol=0.01)
        self.assertAllClose(layer(x), x)
        self.assertAllEqual(
            dropout_kernel.dropout(x, 0.1, tf.constant([1, 2])),
            dropout_kernel.dropout(x, 0.1, tf.constant([1, 2])),
        )

    def test_same_masks_on_one_device_and_two_replicas(self):
        x = tf.random.normal((8, 6, 5))
        seed = tf.constant([5, 9])
        whole = dropout_kernel.dropout(x, 0.5, seed)
        strategy = mirrored_strategy()
        halves = tf.stack(tf.split(x, 2))

        @tf.function
        def step():
            def replica_fn():
                rid = tf.distribute.get_replica_context().replica_id_in_sync_group
                return dropout_kernel.dropout(tf.gather(halves, rid), 0.5, seed)

            return strategy.run(replica_fn)

        self.assertAllEqual(whole, tf.concat(strategy.experimental_local_results(step()), 0))

    def test_xla_and_plain_masks_agree(self):
        x = tf.random.normal((4, 33))
        seed = tf.constant([7, 8])
        plain = dropout_kernel.dropout(x, 0.3, seed)
        xla = tf.function(lambda: dropout_kernel.dropout(x, 0.3, seed), jit_compile=True)()
        self.assertAllEqual(plain, xla)

    def test_config_and_bad_rate(self):
        layer = FastDropout(0.2, seed=1)
        self.assertEqual(FastDropout.from_config(layer.get_config()).get_config(), layer.get_config())
        with self.assertRaisesRegex(ValueError, r"rate must lie in \[0, 1\)"):
            FastDropout(1.0)
