"""`is_text`: the one test for raw text, in values and in data set specs."""

import numpy as np
import tensorflow as tf


def is_text(inputs):
    """True for raw text: a string, a string tensor / array / list, a string
    `tf.TensorSpec` (a data set's element), or a pair (tuple) of them."""
    if isinstance(inputs, str):
        return True
    if isinstance(inputs, (tf.Tensor, tf.RaggedTensor, tf.TensorSpec)):
        return inputs.dtype == tf.string
    if isinstance(inputs, np.ndarray):
        return inputs.dtype.kind in ("U", "S", "O")
    if isinstance(inputs, tuple) and len(inputs) == 2:
        return all(is_text(x) for x in inputs)
    if isinstance(inputs, list) and inputs:
        return all(isinstance(x, (str, bytes)) for x in inputs)
    return False
