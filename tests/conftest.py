"""Test session setup: quiet logs and two logical CPU devices.

MirroredStrategy tests need two devices, and logical devices can only be
configured before TensorFlow initialises its runtime, so this runs first.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase defines a `test_session` helper that is not a test.
    items[:] = [item for item in items if item.name != "test_session"]
