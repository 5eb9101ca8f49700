"""`xla_kernel`: compile a kernel with XLA, or inline it inside an XLA step."""

import functools

import tensorflow as tf

try:  # TF internals; without them every call goes through the compiled function.
    from tensorflow.python.ops import control_flow_util
except ImportError:  # pragma: no cover
    control_flow_util = None


def in_xla_context():
    """True while tracing inside a `jit_compile=True` function."""
    if control_flow_util is None or tf.executing_eagerly():
        return False
    graph = tf.compat.v1.get_default_graph()
    return control_flow_util.GraphOrParentsInXlaContext(graph)


def xla_kernel(fn):
    """Decorator: `fn` as a `tf.function(jit_compile=True)` cluster of its own
    when called from eager or plain-graph code, and inlined (plain ops) when
    called while tracing a step that is itself compiled with XLA.

    A nested jit function inside an XLA step is not only redundant: when its
    gradient is taken there, TF can turn its inputs into compile-time
    constants, and XLA then recompiles (and constant-folds) on every call.
    The compiled function is `wrapper.compiled`; the plain one `wrapper.python_function`.
    """
    compiled = tf.function(fn, jit_compile=True, autograph=False)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if in_xla_context():
            return fn(*args, **kwargs)
        return compiled(*args, **kwargs)

    wrapper.compiled = compiled
    wrapper.python_function = fn
    return wrapper


def fused_kernel(fn, num_differentiable, forward_fn=None, backward_fn=None):
    """Decorator: `fn` as two XLA clusters, forward and backward, for use
    between ordinary TF ops.

    The first `num_differentiable` positional arguments of `fn` are the
    float tensors gradients flow to; the others (seeds, masks, static
    Python values) are passed through. Outside XLA the forward runs as one
    compiled cluster, and the backward as another that recomputes the
    (cheap, memory-bound) forward and differentiates it inside XLA, so both
    directions are fused loops — a nested `tf.function(jit_compile=True)`
    would leave its gradient as many separate TF kernels. Inside a step
    compiled with XLA, `fn` is simply inlined and XLA differentiates it
    with the rest of the step.

    Optionally, `forward_fn(*args) -> (output, saved)` and
    `backward_fn(output_gradient, saved, *args) -> gradients` replace the
    recomputation: `saved` (a tensor the forward keeps, e.g. attention
    probabilities) is passed from one cluster to the other.
    """
    if forward_fn is None:

        def forward_fn(*args):
            return fn(*args), None

        def backward_fn(output_gradient, saved, *args):
            differentiable = list(args[:num_differentiable])
            with tf.GradientTape() as tape:
                tape.watch(differentiable)
                output = fn(*differentiable, *args[num_differentiable:])
            return tape.gradient(output, differentiable, output_gradients=output_gradient)

    forward = tf.function(forward_fn, jit_compile=True, autograph=False)
    backward = tf.function(backward_fn, jit_compile=True, autograph=False)

    @functools.wraps(fn)
    def wrapper(*args):
        if in_xla_context():
            return fn(*args)
        differentiable = [tf.convert_to_tensor(a) for a in args[:num_differentiable]]
        rest = args[num_differentiable:]

        @tf.custom_gradient
        def op(*inputs):
            output, saved = forward(*inputs, *rest)

            def grad(output_gradient):
                return backward(output_gradient, saved, *inputs, *rest)

            return output, grad

        return op(*differentiable)

    wrapper.python_function = fn
    return wrapper
