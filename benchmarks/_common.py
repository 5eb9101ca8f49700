"""Measurement helpers shared by the benchmarks: step timing, FLOP counts, ceilings.

- `StepTimer`: wall-clock and process CPU time of every `fit` step.
- `timed(fn)`: one call's result, wall seconds and process CPU seconds.
- `count_step_flops(model, element_spec)`: the floating-point operations of
  one `train_step` on a batch of that spec, counted from the traced graph:
  every matrix product (`MatMul`, `BatchMatMul*`, `Einsum`) and convolution
  (`Conv2D` and both of its gradients) of the forward *and* backward pass,
  nested functions (XLA kernels) included; 2 FLOPs per multiply-add;
  ops that neither the outputs nor a variable update depend on are left
  out, as TF prunes them.
  Elementwise ops, reductions and optimizer updates are not counted, so this
  is the "model FLOPs" convention of MFU figures.
- `matmul_ceiling(m, k, n)` and `conv_ceiling(...)`: FLOPs per CPU-second
  (and per wall-second) of one large product or one convolution forward +
  backward, measured in the calling process, the hardware figure a step's
  rate is compared with.

Process CPU time counts every thread of the process, so "per CPU-second"
figures do not depend on how much of a shared machine the process got.
"""

import math
import re
import time

import keras
import numpy as np
import tensorflow as tf


class StepTimer(keras.callbacks.Callback):
    """Wall-clock and process CPU time of every train step."""

    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_train_batch_end(self, batch, logs=None):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def timed(fn):
    """`(fn(), wall seconds, process CPU seconds)`."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


# === FLOP counting ===

_MATMULS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
_CONVS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def _dims(tensor):
    shape = tensor.shape
    if shape.rank is None or any(d is None for d in shape):
        raise ValueError(f"FLOP count needs static shapes; {tensor.name} has {shape}.")
    return [int(d) for d in shape]


def _op_flops(op):
    if op.type == "MatMul":
        a = _dims(op.inputs[0])
        k = a[0] if op.get_attr("transpose_a") else a[1]
        return 2 * math.prod(_dims(op.outputs[0])) * k
    if op.type in _MATMULS:
        a = _dims(op.inputs[0])
        k = a[-2] if op.get_attr("adj_x") else a[-1]
        return 2 * math.prod(_dims(op.outputs[0])) * k
    if op.type in _CONVS:
        # 2 * (output positions x output channels) * (kh * kw * in channels),
        # the same for the forward pass and both gradients.
        if op.type == "Conv2D":
            filter_shape, dy = _dims(op.inputs[1]), _dims(op.outputs[0])
        elif op.type == "Conv2DBackpropInput":
            filter_shape, dy = _dims(op.inputs[1]), _dims(op.inputs[2])
        else:
            filter_shape, dy = _dims(op.outputs[0]), _dims(op.inputs[2])
        return 2 * math.prod(dy) * math.prod(filter_shape[:-1])
    if op.type == "Einsum":
        equation = op.get_attr("equation").decode()
        inputs = equation.split("->")[0].split(",")
        if len(inputs) != 2:
            return 0
        sizes = {}
        for letters, tensor in zip(inputs, op.inputs):
            letters = letters.replace("...", "")
            dims = _dims(tensor)[-len(letters) :] if letters else []
            sizes.update(zip(letters, dims))
        batch = _dims(op.outputs[0])
        out_letters = equation.split("->")[1].replace("...", "")
        ellipsis = math.prod(batch[: len(batch) - len(out_letters)])
        return 2 * ellipsis * math.prod(sizes.values())
    return 0


def _live_ops(graph, outputs):
    """Ops that the outputs or a variable update depend on (TF prunes the rest)."""
    roots = [t.op for t in outputs]
    roots += [op for op in graph.get_operations() if "Assign" in op.type or "Apply" in op.type]
    live, stack = set(), list(roots)
    while stack:
        op = stack.pop()
        if op in live:
            continue
        live.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op in live]


def _graph_flops(graph, functions, seen_loops, ops=None):
    total = 0
    for op in graph.get_operations() if ops is None else ops:
        total += _op_flops(op)
        if op.type in _CALLS:
            name = op.get_attr("f").name
            if name in functions:
                total += _graph_flops(functions[name].graph, functions, seen_loops)
        elif op.type in ("While", "StatelessWhile"):
            seen_loops.append(op.name)  # trip count unknown: not counted
    return total


def _all_functions(graph, found=None):
    found = {} if found is None else found
    for name, function in getattr(graph, "_functions", {}).items():
        if name not in found:
            found[name] = function
            _all_functions(function.graph, found)
    return found


def count_step_flops(model, element_spec):
    """FLOPs of one `model.train_step` on a batch of `element_spec` (see module doc).

    Traces `train_step` once more (the model and its optimizer must be
    built, e.g. by a first `fit` step); nothing runs. Loops are not counted
    (a warning lists them).
    """
    concrete = tf.function(model.train_step).get_concrete_function(element_spec)
    loops = []
    graph = concrete.graph
    live = _live_ops(graph, concrete.outputs)
    flops = _graph_flops(graph, _all_functions(graph), loops, live)
    if loops:
        print(f"warning: {type(model).__name__} step has loops not counted: {loops}")
    return float(flops)


# === Ceilings ===


def _rate(fn, flops, repeats, min_seconds=0.2):
    """Median FLOPs per CPU-second and per wall-second over `repeats` timed calls."""
    fn()  # trace
    calls = 1
    _, wall, cpu = timed(fn)
    while wall * calls < min_seconds and calls < 1024:
        calls *= 2
    cpu_rates, wall_rates = [], []
    for _ in range(repeats):
        _, wall, cpu = timed(lambda: [fn() for _ in range(calls)])
        cpu_rates.append(flops * calls / max(cpu, 1e-9))
        wall_rates.append(flops * calls / max(wall, 1e-9))
    return {
        "flops_per_cpu_second": float(np.median(cpu_rates)),
        "flops_per_second": float(np.median(wall_rates)),
    }


def matmul_ceiling(m, k, n, dtype="float32", repeats=5):
    """`(m, k) x (k, n)` products: FLOPs per CPU-second and per second.

    Eight independent products per call, so the per-call overhead is
    negligible and the product runs as the library's kernel.
    """
    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((8, m, k)), dtype)
    b = tf.constant(rng.standard_normal((k, n)), dtype)

    # Every product feeds the output (TF prunes unused ones); operands are
    # arguments, not constants that could be folded.
    @tf.function
    def products(a, b):
        return tf.add_n([tf.matmul(a[i], b)[0, 0] for i in range(8)])

    result = _rate(lambda: products(a, b).numpy(), 8 * 2 * m * k * n, repeats)
    result.update(kind="matmul", shape=f"({m}, {k}) x ({k}, {n}) {dtype}")
    return result


def conv_ceiling(batch, height, width, in_channels, out_channels, kernel=3, strides=1, dtype="float32", repeats=5):
    """One `Conv2D` forward + both gradients: FLOPs per CPU-second and per second."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, height, width, in_channels)), dtype)
    w = tf.Variable(rng.standard_normal((kernel, kernel, in_channels, out_channels)) * 0.1, dtype=dtype)

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, w, strides, "SAME")
            loss = tf.reduce_sum(y)
        dx, dw = tape.gradient(loss, [x, w])
        return dx[0, 0, 0, 0] + dw[0, 0, 0, 0]

    out_h, out_w = -(-height // strides), -(-width // strides)
    flops = 3 * 2 * batch * out_h * out_w * out_channels * kernel * kernel * in_channels
    result = _rate(lambda: forward_backward(x).numpy(), flops, repeats)
    result.update(
        kind="conv",
        shape=(
            f"{kernel}x{kernel}/{strides} conv ({batch}, {height}, {width}, {in_channels}) "
            f"-> {out_channels}, forward + backward {dtype}"
        ),
    )
    return result


def summarize_steps(timer, examples_per_step):
    """Medians of a `StepTimer`: examples/s, CPU s/step, wall s/step."""
    wall, cpu = float(np.median(timer.wall)), float(np.median(timer.cpu))
    return {
        "examples_per_second": examples_per_step / wall,
        "examples_per_cpu_second": examples_per_step / cpu,
        "wall_seconds_per_step": wall,
        "cpu_seconds_per_step": cpu,
        "timed_steps": len(timer.wall),
    }


def snake(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# === Profiles ===

_KERNEL_OP = re.compile(r"MatMul|Conv2D|Einsum|Conv3D|DepthwiseConv")


def profile_fit(model, dataset, steps):
    """Where a step's time goes: TF op self-time by op type over `steps` fit steps.

    Runs `fit` under `tf.profiler` and reads the profile's framework op
    statistics. Returns `{"self_ms_per_step", "input_pipeline_ms_per_step",
    "kernel_share", "top"}`: the summed op self-time per step (tf.data's
    ops apart), the share of it in matmuls and
    convolutions (and their fused and oneDNN forms), and the ten op types
    with the largest share. An XLA cluster shows as one op (`_XlaRun`,
    `XlaLaunch`): its matmuls are inside it.
    """
    import glob
    import json
    import shutil
    import tempfile

    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    directory = tempfile.mkdtemp()
    try:
        tf.profiler.experimental.start(directory)
        try:
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        finally:
            tf.profiler.experimental.stop()
        files = glob.glob(f"{directory}/**/*.xplane.pb", recursive=True)
        data, ok = plugin.xspace_to_tools_data(files, "framework_op_stats", {})
        if not ok:
            return None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    by_type = {}
    for row in table["rows"]:
        values = dict(zip(columns, (cell.get("v") for cell in row["c"])))
        if values.get("host_or_device") == "Host" and values.get("eager") == "Eager":
            continue  # Python-side eager ops (callbacks, metrics readout)
        op_type = values["type"]
        by_type[op_type] = by_type.get(op_type, 0.0) + float(values["total_self_time"])
    by_type.pop("IDLE", None)
    # tf.data's iterator ops run on their own threads, mostly waiting on the
    # prefetch buffer; reported apart.
    pipeline = by_type.pop("Dataset", 0.0)
    total = sum(by_type.values())
    if not total:
        return None
    kernel = sum(t for name, t in by_type.items() if _KERNEL_OP.search(name))
    top = sorted(by_type.items(), key=lambda item: -item[1])[:10]
    return {
        "self_ms_per_step": total / 1000 / steps,
        "input_pipeline_ms_per_step": pipeline / 1000 / steps,
        "kernel_share": kernel / total,
        "top": [[name, t / total] for name, t in top],
    }
