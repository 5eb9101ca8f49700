"""What `train` settles before the first step: its arguments, the epoch data
sets, the built model, and the run's metadata."""

import json

import keras
import tensorflow as tf

from keras_pt.schedules import scale_learning_rates
from keras_pt.training.loop import LOOPS, check_static_batches

MIXED_PRECISION_POLICIES = ("mixed_bfloat16", "mixed_float16")


def _check_policy(mixed_precision):
    if mixed_precision in (None, "", "float32", "none"):
        return None
    if mixed_precision not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"unknown mixed_precision {mixed_precision!r}; choose one of "
            f"{', '.join(MIXED_PRECISION_POLICIES)} (mixed_bfloat16 for TPUs and "
            "CPUs, mixed_float16 with loss scaling for GPUs) or None for float32."
        )
    return mixed_precision


def _check_arguments(mixed_precision, loop, batch_size, epochs, steps):
    """Raises a ValueError for a bad argument; returns the dtype policy."""
    policy = _check_policy(mixed_precision)
    if loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}; choose one of {', '.join(LOOPS)}.")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if steps is None and int(epochs) <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}.")
    if steps is not None and int(steps) <= 0:
        raise ValueError(f"steps must be positive, got {steps}.")
    return policy


def _global_batch_size(batch_size, replicas, scale_batch_size):
    global_batch = int(batch_size) * (replicas if scale_batch_size else 1)
    if global_batch % replicas:
        raise ValueError(
            f"the global batch size {global_batch} does not split evenly over "
            f"{replicas} replicas; use a multiple of {replicas} or "
            "scale_batch_size=True."
        )
    return global_batch


def _build(build_model, strategy):
    """The compiled model `build_model` makes inside the strategy's scope."""
    with strategy.scope():
        model = build_model()
    if not isinstance(model, keras.Model):
        raise ValueError(f"build_model must return a keras.Model, got {type(model).__name__}.")
    if not model.compiled:
        raise ValueError("build_model must compile the model (inside the strategy scope).")
    return model


def _epoch_datasets(dataset_fn, global_batch, seed, fully_defined):
    """`epoch -> tf.data.Dataset`: `dataset_fn`'s batches, checked, with the
    options every loop needs."""

    def epoch_dataset(epoch):
        dataset = dataset_fn(epoch, global_batch, seed)
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(f"dataset_fn must return a tf.data.Dataset, got {type(dataset).__name__}.")
        check_static_batches(dataset, global_batch, fully_defined=fully_defined)
        options = tf.data.Options()
        # Every worker reads the same global batch and takes its
        # replicas' slices of it: the same batches as on one device.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        options.deterministic = True
        return dataset.with_options(options)

    return epoch_dataset


def _steps_per_epoch(first, steps_per_epoch):
    spe = steps_per_epoch
    if spe is None:
        spe = int(first.cardinality())
        if spe <= 0:
            raise ValueError("the epoch data set has unknown or infinite length; pass steps_per_epoch.")
    spe = int(spe)
    if spe <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {spe}.")
    return spe


def _prepare(model, strategy, first, scale_learning_rate):
    """Builds every variable, adapts a head to the data, scales learning rates."""
    # Build every variable (weights, optimizer slots) before restoring.
    with strategy.scope():
        model._symbolic_build(data_batch=first.element_spec)
    # Fine-tuning heads set their feature statistics (and the SVM head
    # its solved probe) from the first epoch's data, as their own `fit`
    # would, so every loop starts alike; a restored checkpoint then
    # overwrites them.
    adapt = getattr(model, "adapt", None)
    if callable(adapt) and getattr(model, "adapted", True) is False:
        with strategy.scope():
            adapt(first)
    replicas = strategy.num_replicas_in_sync
    if scale_learning_rate and replicas > 1:
        scale_learning_rates(model, replicas)


def _run_metadata(global_batch, spe, seed, config):
    """What a checkpoint must share with the run that resumes from it."""
    metadata = {"batch_size": global_batch, "steps_per_epoch": spe, "seed": int(seed)}
    if config is not None:
        # As JSON gives it back (tuples as lists).
        metadata["config"] = json.loads(json.dumps(config))
    return metadata
