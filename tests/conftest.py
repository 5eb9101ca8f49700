"""Test session setup: quiet logs and two logical CPU devices.

MirroredStrategy tests need two devices, and logical devices can only be
configured before TensorFlow initialises its runtime, so this runs first.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


# The longest test modules (learning, examples, multi-process), started
# first so that the parallel workers (pytest-xdist, setup.cfg) finish
# together rather than one of them running a long module at the end.
LONGEST_FIRST = (
    "test_readme_commands.py",
    "test_mini_bert_learning.py",
    "test_strategy_equivalence.py",
    "test_bert_recipes.py",
    "test_mini_bert.py",
    "test_mini_gpt.py",
    "test_pretraining_objectives.py",
    "test_text_learning.py",
    "test_gan.py",
    "test_mini_bert_classifier.py",
    "test_mixed_precision.py",
    "test_tpu_readiness.py",
    "test_debian_packages.py",
    "test_sentence_encoder.py",
    "test_sim_clr.py",
    "test_pretrain_finetune.py",
    "test_reruns.py",
)


def _rank(item):
    name = os.path.basename(str(item.fspath))
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase defines a `test_session` helper that is not a test.
    items[:] = [item for item in items if item.name != "test_session"]
    items.sort(key=_rank)  # stable: the order within a module is kept
