import numpy as np
import tensorflow as tf

from keras_pt.kernels import hinge, noise
from keras_pt.kernels import random as kr
from tests.test_case import TestCase, mirrored_strategy


def numpy_hinge(labels, scores, variant, squared):
    out = []
    for y, s in zip(labels, scores):
        if variant == "crammer_singer":
            others = [s[j] for j in range(len(s)) if j != y]
            xi = max(0.0, 1.0 + max(others) - s[y])
            out.append(xi**2 if squared else xi)
        else:
            total = 0.0
            for j in range(len(s)):
                t = 1.0 if j == y else -1.0
                h = max(0.0, 1.0 - t * s[j])
                total += h**2 if squared else h
            out.append(total)
    return np.array(out)


class HingeTest(TestCase):
    def test_matches_numpy(self):
        rng = np.random.default_rng(0)
        for variant in hinge.HINGE_VARIANTS:
            for squared in (False, True):
                scores = rng.normal(size=(64, 7)).astype("float32") * 2
                labels = rng.integers(0, 7, size=64).astype("int32")
                got = hinge.multiclass_hinge(labels, scores, variant=variant, squared=squared)
                want = numpy_hinge(labels, scores, variant, squared)
                self.assertAllClose(got, want, atol=1e-5)

    def test_zero_when_margin_met(self):
        scores = np.array([[5.0, 0.0, 0.0]], "float32")
        got = hinge.multiclass_hinge(np.array([0], "int32"), scores)
        self.assertAllClose(got, [0.0])

    def test_unknown_variant(self):
        with self.assertRaisesRegex(ValueError, "one_vs_rest"):
            hinge.multiclass_hinge(np.array([0], "int32"), np.zeros((1, 3), "float32"), variant="ovo")


class NoiseTest(TestCase):
    def test_corrupt_matches_numpy(self):
        rng = np.random.default_rng(1)
        x = rng.random((16, 8, 8, 1)).astype("float32")
        n = rng.normal(size=x.shape).astype("float32")
        u = rng.random(x.shape).astype("float32")
        got = noise.corrupt(x, n, u, 0.3, 0.25)
        want = np.where(u < 0.25, 0.0, x + 0.3 * n)
        self.assertAllClose(got, want, atol=1e-6)

    def test_noise_statistics(self):
        x = tf.zeros((256, 16, 16, 1))
        out = noise.add_noise(x, tf.constant([3, 7]), 0.5, 0.3).numpy()
        masked = out == 0.0
        self.assertAllClose(masked.mean(), 0.3, atol=0.01)
        kept = out[~masked]
        self.assertAllClose(kept.std(), 0.5, atol=0.01)
        self.assertAllClose(kept.mean(), 0.0, atol=0.01)

    def test_same_draws_on_one_device_and_two_replicas(self):
        seed = tf.constant([5, 9])
        x = tf.random.uniform((8, 4, 4, 1), seed=1)
        whole = noise.add_noise(x, seed, 0.2, 0.2)
        strategy = mirrored_strategy()
        halves = tf.split(x, 2)

        @tf.function
        def step():
            def replica_fn():
                rid = tf.distribute.get_replica_context().replica_id_in_sync_group
                return noise.add_noise(tf.gather(tf.stack(halves), rid), seed, 0.2, 0.2)

            return strategy.run(replica_fn)

        parts = strategy.experimental_local_results(step())
        self.assertAllClose(whole, tf.concat(parts, 0))

    def test_uniform_int_range(self):
        draws = kr.uniform_int(tf.constant([1, 2]), (1000,), 13).numpy()
        self.assertEqual(draws.min(), 0)
        self.assertEqual(draws.max(), 12)


class KernelImportsTest(TestCase):
    def test_kernels_import_nothing_above_them(self):
        # kernels/ is the bottom layer: it may import keras_pt.kernels,
        # keras_pt.distribute and the keras_pt.special_tokens leaf, never
        # layers/, models/ or the rest.
        import ast
        import pathlib

        allowed = {"keras_pt.kernels", "keras_pt.distribute", "keras_pt.special_tokens", "keras_pt"}
        root = pathlib.Path(__file__).resolve().parents[2] / "keras_pt" / "kernels"
        for path in sorted(root.glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_pt"):
                    names = [
                        f"{node.module}.{a.name}" if node.module == "keras_pt" else node.module for a in node.names
                    ]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names if a.name.startswith("keras_pt")]
                else:
                    continue
                for name in names:
                    self.assertTrue(
                        any(name == a or name.startswith(a + ".") for a in allowed - {"keras_pt"}),
                        f"{path.name} imports {name}",
                    )
