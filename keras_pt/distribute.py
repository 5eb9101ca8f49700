"""Strategy factory: one function maps a name to a `tf.distribute.Strategy`.

Names:
    auto:         a TPU if one is attached, else all GPUs mirrored, else the
                  default strategy.
    default/cpu:  the default (no-op) strategy on the first device.
    one_device:   `OneDeviceStrategy` on the first GPU, else the CPU.
    mirrored:     `MirroredStrategy` over all GPUs (or the `devices` given,
                  e.g. logical CPU devices in tests).
    multi_worker: `MultiWorkerMirroredStrategy` configured from `TF_CONFIG`.
                  Create it at program start, before any other TF op.
    tpu:          `TPUStrategy` from `TPUClusterResolver`; the address comes
                  from the `tpu` argument, else Colab's `COLAB_TPU_ADDR`, else
                  `TPU_NAME`, else `"local"` on a TPU VM.
"""

import json
import os

import tensorflow as tf

STRATEGY_NAMES = (
    "auto",
    "default",
    "cpu",
    "one_device",
    "mirrored",
    "multi_worker",
    "tpu",
)

# Device files present on a Cloud TPU VM (the TPU is attached locally).
_TPU_VM_DEVICE_FILES = ("/dev/accel0", "/dev/vfio/0")


def resolve_tpu_address(tpu=None, environ=None, device_files=None):
    """Returns the TPU address to resolve, or None when no TPU is in sight.

    Looks at the explicit `tpu` argument, then Colab's `COLAB_TPU_ADDR`, then
    `TPU_NAME`, then the device files of a TPU VM. It never touches the
    network, so it is cheap to call where no TPU exists.
    """
    if tpu:
        return tpu
    environ = os.environ if environ is None else environ
    if environ.get("COLAB_TPU_ADDR"):
        return "grpc://" + environ["COLAB_TPU_ADDR"]
    if environ.get("TPU_NAME"):
        return environ["TPU_NAME"]
    device_files = _TPU_VM_DEVICE_FILES if device_files is None else device_files
    if any(os.path.exists(path) for path in device_files):
        return "local"
    return None


def _available():
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    parts = [f"{len(cpus)} CPU device(s)", f"{len(gpus)} GPU(s)"]
    parts.append("a TPU" if resolve_tpu_address() else "no TPU (no COLAB_TPU_ADDR, TPU_NAME or TPU VM device)")
    return ", ".join(parts)


def _tpu_strategy(tpu):
    address = resolve_tpu_address(tpu)
    if address is None:
        raise ValueError(
            "strategy 'tpu' needs a TPU, but none was found on this machine "
            f"(available: {_available()}). On Colab choose Runtime > Change "
            "runtime type > TPU; elsewhere pass --tpu=<name or grpc://address>, "
            "or use --strategy=auto."
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        if address != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, OSError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(
            f"could not connect to the TPU at {address!r}: {error}. Check the "
            "TPU name or address, or use --strategy=auto."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def _mirrored_strategy(devices):
    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        if not gpus:
            raise ValueError(
                "strategy 'mirrored' needs GPUs, but none is visible "
                f"(available: {_available()}). Use --strategy=default on a CPU "
                "machine, or pass devices=[...] explicitly (e.g. logical CPU "
                "devices)."
            )
        devices = [gpu.name for gpu in gpus]
    return tf.distribute.MirroredStrategy(devices)


def _multi_worker_strategy(environ):
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "strategy 'multi_worker' reads the cluster from the TF_CONFIG "
            "environment variable, which is not set. Set it on every worker, "
            'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:port", '
            '"host2:port"]}, "task": {"type": "worker", "index": 0}}\'.'
        )
    try:
        config = json.loads(raw)
        config["cluster"]["worker"]
        config["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG must be JSON with 'cluster.worker' (a list of host:port) and 'task.index'; got {raw!r}."
        ) from error
    return tf.distribute.MultiWorkerMirroredStrategy()


def get_strategy(name="auto", tpu=None, devices=None):
    """Returns the `tf.distribute.Strategy` for a name.

    Args:
        name: str. One of `STRATEGY_NAMES`. Defaults to `"auto"`.
        tpu: str or None. TPU name or `grpc://` address for `"tpu"`/`"auto"`.
            Defaults to None (Colab's address, `TPU_NAME`, or a local TPU VM).
        devices: list of str or None. Devices for `"mirrored"`. Defaults to
            all GPUs.

    Raises:
        ValueError: for an unknown name, or when the hardware the name asks
            for is not there; the message lists what is available.

    Example:

    >>> strategy = get_strategy("default")
    >>> strategy.num_replicas_in_sync
    1
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in STRATEGY_NAMES:
        raise ValueError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)} (available here: {_available()})."
        )
    if key == "auto":
        if resolve_tpu_address(tpu) is not None:
            return _tpu_strategy(tpu)
        if tf.config.list_logical_devices("GPU"):
            return _mirrored_strategy(None)
        return tf.distribute.get_strategy()
    if key in ("default", "cpu"):
        return tf.distribute.get_strategy()
    if key == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if key == "mirrored":
        return _mirrored_strategy(devices)
    if key == "multi_worker":
        return _multi_worker_strategy(os.environ)
    return _tpu_strategy(tpu)


def num_replicas():
    """Replicas in sync for the strategy of the current context (1 outside one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_id():
    """Index of this replica in the sync group (0 outside a replica context).

    A Python int under MirroredStrategy, a scalar tensor on TPUs.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0
    return context.replica_id_in_sync_group


def scale_loss(loss):
    """Divides a per-replica mean loss so that SUM-reduced gradients are exact.

    Under a strategy with N replicas the optimizer sums the N replica
    gradients; the gradient of `loss / N` summed over replicas equals the
    gradient of the global mean loss.
    """
    n = num_replicas()
    return loss if n == 1 else loss / n


def is_chief(strategy):
    """Whether this process writes files (checkpoints, models, logs).

    True except on the non-chief workers of a MultiWorkerMirroredStrategy.
    """
    return getattr(strategy.extended, "should_checkpoint", True)


def global_mean_results(metrics):
    """`{name: result}` of `keras.metrics.Mean` trackers over every replica.

    Keras logs a train step's `{name: metric.result()}` per replica and
    averages the replicas' values, which is the global value only when every
    replica adds the same weight. Where replicas weigh their updates
    differently (tokens, masked positions), this all-reduces each tracker's
    running `total` and `count` (one all-reduce for all of them) so that
    every replica returns the result of the whole global batch stream.
    Outside a multi-replica step it is `{name: metric.result()}`.

    Args:
        metrics: list of `keras.metrics.Mean`. A subclass whose `result` is a
            function of `total / count` (such as `Perplexity`) gives it as
            its `result_from_mean(mean)`.

    Returns:
        dict of scalar tensors.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return {m.name: m.result() for m in metrics}
    local = tf.stack([tf.cast(v.value, tf.float32) for m in metrics for v in (m.total, m.count)])  # (2 · len(metrics),)
    reduced = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    results = {}
    for i, m in enumerate(metrics):
        mean = tf.math.divide_no_nan(reduced[2 * i], reduced[2 * i + 1])
        result_from_mean = getattr(m, "result_from_mean", None)
        results[m.name] = result_from_mean(mean) if result_from_mean else mean
    return results


def dense_gradients(grads):
    """Gradients with `tf.IndexedSlices` (embedding lookups) made dense.

    Dense tensors keep the cross-replica gradient reduction one uniform
    all-reduce, and the optimizer's update one code path.
    """
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
