import json
import os
from unittest import mock

import tensorflow as tf

from keras_pt import distribute
from tests.test_case import TestCase


class GetStrategyTest(TestCase):
    def test_default_names(self):
        for name in ("default", "cpu", "auto", "AUTO"):
            strategy = distribute.get_strategy(name)
            self.assertEqual(strategy.num_replicas_in_sync, 1)

    def test_one_device(self):
        strategy = distribute.get_strategy("one_device")
        self.assertIsInstance(strategy, tf.distribute.OneDeviceStrategy)

    def test_mirrored_over_logical_cpus(self):
        strategy = distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
        self.assertIsInstance(strategy, tf.distribute.MirroredStrategy)
        self.assertEqual(strategy.num_replicas_in_sync, 2)

    def test_mirrored_without_gpus_says_what_is_there(self):
        with self.assertRaisesRegex(ValueError, r"needs GPUs.*available: 2 CPU device\(s\), 0 GPU"):
            distribute.get_strategy("mirrored")

    def test_unknown_name(self):
        with self.assertRaisesRegex(ValueError, "unknown strategy 'gpu'.*mirrored"):
            distribute.get_strategy("gpu")

    def test_tpu_absent(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaisesRegex(ValueError, "needs a TPU.*--tpu"):
                distribute.get_strategy("tpu")

    def test_tpu_unreachable_address(self):
        # The resolver is stubbed: resolving a real name would ask a cloud API.
        with mock.patch.object(tf.distribute.cluster_resolver, "TPUClusterResolver", side_effect=OSError("no route")):
            with self.assertRaisesRegex(ValueError, "could not connect to the TPU at 'my-tpu'"):
                distribute.get_strategy("tpu", tpu="my-tpu")

    def test_resolve_tpu_address(self):
        self.assertEqual(distribute.resolve_tpu_address("grpc://1.2.3.4:8470"), "grpc://1.2.3.4:8470")
        self.assertEqual(
            distribute.resolve_tpu_address(environ={"COLAB_TPU_ADDR": "10.0.0.2:8470"}, device_files=()),
            "grpc://10.0.0.2:8470",
        )
        self.assertEqual(distribute.resolve_tpu_address(environ={"TPU_NAME": "my-tpu"}, device_files=()), "my-tpu")
        self.assertEqual(distribute.resolve_tpu_address(environ={}, device_files=[os.__file__]), "local")
        self.assertIsNone(distribute.resolve_tpu_address(environ={}, device_files=()))

    def test_multi_worker_needs_tf_config(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaisesRegex(ValueError, "TF_CONFIG.*not set"):
                distribute.get_strategy("multi_worker")
        with mock.patch.dict(os.environ, {"TF_CONFIG": json.dumps({"task": {}})}):
            with self.assertRaisesRegex(ValueError, "cluster.worker"):
                distribute.get_strategy("multi_worker")

    def test_scale_loss(self):
        self.assertEqual(float(distribute.scale_loss(tf.constant(3.0))), 3.0)
        strategy = distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
        with strategy.scope():
            self.assertEqual(distribute.num_replicas(), 2)
            self.assertEqual(float(distribute.scale_loss(tf.constant(3.0))), 1.5)


def test_import_keras_pt_exposes_every_documented_module():
    import keras_pt

    for name in (
        "callbacks",
        "checkpointing",
        "data",
        "distribute",
        "evaluation",
        "kernels",
        "layers",
        "metrics",
        "models",
        "recipes",
        "special_tokens",
        "training",
        "utils",
    ):
        assert hasattr(keras_pt, name), name
    assert callable(keras_pt.evaluation.frechet_distance)
    assert keras_pt.callbacks.SampleGrid is not None
