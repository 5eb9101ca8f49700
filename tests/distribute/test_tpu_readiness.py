"""TPU readiness, as far as a CPU machine can show it.

- Every model's train step compiles and runs with `jit_compile=True` (XLA,
  what TPUs run) through `keras_pt.training.train`; the deterministic ones
  match the graph-mode step. (The DenoisingAutoencoder's noise and the
  GAN's latent vectors differ: XLA's `stateless_normal` turns the same
  seed into other numbers than the CPU kernel.)
- The example pipelines yield fully static batch shapes.
- No model or optimizer holds float64 variables, and the traced train steps
  hold no float64 or string tensors (string constants that only feed the
  heads' `tf.debugging` label asserts are allowed: XLA drops those asserts).
- `steps_per_execution > 1` on one device: tests/training/test_training.py checks it
  gives exactly the weights of single steps, under `fit` and the
  `strategy.run` loop.
- The Colab TPU notebook (examples/minibert_colab_tpu.ipynb) parses and
  calls the library with arguments it takes.
- The `tpu` strategy without a TPU fails at once with a clear error
  (tests/training/test_training.py, tests/examples/test_pretrain_finetune.py).
"""

import ast
import dataclasses
import inspect
import json
import os
import unittest
import pytest

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from keras_pt import checkpointing, data, distribute, recipes, training
from tests import strategy_cases
from tests.test_case import TestCase

FORBIDDEN = {types_pb2.DT_STRING: "string", types_pb2.DT_DOUBLE: "float64"}


def _dataset_fn(case):
    return lambda epoch, batch_size, seed: data.epoch_batches(case.data(), batch_size, seed, epoch)


def forbidden_tensors(graph_def):
    """`(function, op, node)` of every string or float64 tensor in a graph.

    Walks the graph and every function in its library. String constants
    that feed only `Assert` ops, and the `Assert` ops themselves, are left
    out.
    """
    bodies = [("graph", list(graph_def.node))]
    bodies += [(f.signature.name, list(f.node_def)) for f in graph_def.library.function]
    found = []
    for function, nodes in bodies:
        consumers = {}
        for node in nodes:
            for name in node.input:
                consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node.op)
        for node in nodes:
            types = []
            for attr in node.attr.values():
                types += [attr.type] if attr.HasField("type") else list(attr.list.type)
            bad = {FORBIDDEN[t] for t in types if t in FORBIDDEN}
            if not bad:
                continue
            if node.op == "Assert":
                continue
            if (
                bad == {"string"}
                and node.op == "Const"
                and "/Assert/" in f"/{node.name}"
                and all(op == "Assert" for op in consumers.get(node.name, []))
            ):
                continue
            found.append((function, node.op, node.name, sorted(bad)))
    return found


class TPUReadinessTest(TestCase):
    @pytest.mark.slow
    def test_every_train_step_runs_under_xla(self):
        for name, case in strategy_cases.CASES.items():
            with self.subTest(case=name):

                def build(case=case):
                    model = case.build()
                    model.jit_compile = True
                    return model

                kwargs = dict(batch_size=strategy_cases.BATCH_SIZE, steps=2, strategy="default")
                xla = training.train(build, _dataset_fn(case), **kwargs)
                self.assertTrue(xla.model.jit_compile)
                self.assertTrue(all(np.isfinite(v) for v in xla.logs.values()), xla.logs)
                # XLA turns the same seeds into other random numbers (noise,
                # latent vectors, dropout, masks and crops).
                if name in (
                    "denoising_autoencoder",
                    "gan",
                    "mini_bert",
                    "mini_bert_classifier",
                    "electra",
                    "mini_gpt",
                    "distiller",
                    "sentence_encoder",
                ):
                    continue
                graph = training.train(case.build, _dataset_fn(case), **kwargs)
                for a, b in zip(graph.model.get_weights(), xla.model.get_weights(), strict=True):
                    self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)
                self.assertAllClose(graph.logs["loss"], xla.logs["loss"], atol=1e-4, rtol=1e-4)

    def test_xla_step_in_the_strategy_run_loop(self):
        case = strategy_cases.CASES["mlp_classifier"]

        def build():
            model = case.build()
            model.jit_compile = True
            return model

        kwargs = dict(batch_size=strategy_cases.BATCH_SIZE, steps=2, strategy="default")
        fit = training.train(build, _dataset_fn(case), loop="fit", **kwargs)
        custom = training.train(build, _dataset_fn(case), loop="custom", **kwargs)
        for a, b in zip(fit.model.get_weights(), custom.model.get_weights(), strict=True):
            self.assertAllClose(a, b, atol=1e-6, rtol=1e-6)

    @pytest.mark.slow
    def test_no_float64_variables_or_string_ops_in_train_steps(self):
        for name, case in strategy_cases.CASES.items():
            with self.subTest(case=name):
                keras.utils.set_random_seed(0)
                model = case.build()
                spec = _dataset_fn(case)(0, strategy_cases.BATCH_SIZE, 0).element_spec
                model._symbolic_build(data_batch=spec)
                for path, variable in checkpointing.training_state(model):
                    self.assertNotEqual(variable.dtype, "float64", path)
                graph = tf.function(model.train_step).get_concrete_function(spec).graph
                self.assertEqual(forbidden_tensors(graph.as_graph_def()), [])

    def test_the_check_finds_strings_and_float64(self):
        @tf.function
        def step(x):
            tf.print(tf.strings.as_string(x))
            return tf.cast(x, tf.float64) * 2.0

        found = forbidden_tensors(step.get_concrete_function(tf.TensorSpec([2])).graph.as_graph_def())
        self.assertIn("string", {kind for *_, kinds in found for kind in kinds})
        self.assertIn("float64", {kind for *_, kinds in found for kind in kinds})

    def test_example_pipelines_have_static_shapes(self):
        images = np.random.default_rng(0).random((40, 8, 8, 1)).astype("float32")
        labels = np.arange(40, dtype="int32") % 4
        unlabelled = tf.data.Dataset.from_tensor_slices(images)
        labelled = tf.data.Dataset.from_tensor_slices((images, labels))
        pipelines = {
            "pretrain": recipes.batches_fn(unlabelled)(epoch=1, batch_size=16, seed=0),
            "heads": recipes.batches_fn(labelled)(epoch=0, batch_size=8, seed=0),
            "data.batch": data.batch(labelled, 16, shuffle_seed=0),
        }
        for name, dataset in pipelines.items():
            with self.subTest(pipeline=name):
                batch = dataset.element_spec
                training.check_static_batches(dataset, tf.nest.flatten(batch)[0].shape[0], fully_defined=True)
                for spec in tf.nest.flatten(batch):
                    self.assertNotIn(spec.dtype, (tf.float64, tf.string))


class ColabNotebookTest(unittest.TestCase):
    """examples/minibert_colab_tpu.ipynb stays runnable as written: valid
    notebook JSON, every code cell parses, and every keras_pt call in it
    names arguments the library takes."""

    PATH = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "minibert_colab_tpu.ipynb")

    def test_notebook_matches_the_library(self):
        with open(self.PATH) as f:
            notebook = json.load(f)
        self.assertEqual(notebook["nbformat"], 4)
        self.assertEqual(notebook["metadata"]["accelerator"], "TPU")
        sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
        functions = {
            "pretrain_minibert": recipes.pretrain_minibert,
            "finetune_minibert": recipes.finetune_minibert,
            "get_strategy": distribute.get_strategy,
        }
        configs = {
            "pretrain_minibert": recipes.PretrainMiniBERTConfig,
            "finetune_minibert": recipes.FinetuneConfig,
        }
        called = set()
        for source in sources:
            tree = ast.parse(source)  # a syntax error fails here
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name in functions:
                    called.add(name)
                    signature = inspect.signature(functions[name])
                    args = [None] * len(node.args)
                    kwargs = {k.arg: None for k in node.keywords}
                    bound = signature.bind(*args, **kwargs)  # TypeError on an unknown argument
                    # Keywords beyond the signature must be fields of the recipe's config.
                    config = configs.get(name)
                    if config is not None:
                        fields = {f.name for f in dataclasses.fields(config)}
                        self.assertLessEqual(set(bound.arguments.get("overrides", {})), fields)
        self.assertEqual(called, set(functions))
        text = "\n".join(sources)
        self.assertIn('get_strategy("tpu")', text)
        self.assertIn("mixed_bfloat16", text)
