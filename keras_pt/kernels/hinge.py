"""Multi-class hinge losses for SVM heads."""

import tensorflow as tf

HINGE_VARIANTS = ("crammer_singer", "one_vs_rest")


@tf.function(jit_compile=True, autograph=False)
def multiclass_hinge(labels, scores, variant="crammer_singer", squared=False):
    """Per-example multi-class hinge loss (the slack ξ of each example).

    Crammer–Singer: `ξ = max(0, 1 + max_{j != y} s_j - s_y)`.
    One-vs-rest: `ξ = Σ_j max(0, 1 - t_j s_j)` with `t_j = +1` for the true
    class and `-1` otherwise. `squared=True` squares each hinge term.

    Args:
        labels: int tensor `(batch,)`, class indices.
        scores: float tensor `(batch, num_classes)`, the linear scores.
        variant: `"crammer_singer"` or `"one_vs_rest"` (static).
        squared: bool (static). Squared hinge.

    Returns:
        float tensor `(batch,)`.
    """
    num_classes = scores.shape[-1]
    true = tf.one_hot(labels, num_classes, dtype=scores.dtype)  # (batch, classes)
    if variant == "crammer_singer":
        true_score = tf.reduce_sum(true * scores, axis=-1)  # (batch,)
        others = tf.where(true > 0, tf.cast(-1e9, scores.dtype), scores)
        slack = tf.nn.relu(1.0 + tf.reduce_max(others, axis=-1) - true_score)
        return tf.square(slack) if squared else slack
    if variant == "one_vs_rest":
        signs = 2.0 * true - 1.0  # (batch, classes): +1 true class, -1 others
        terms = tf.nn.relu(1.0 - signs * scores)
        terms = tf.square(terms) if squared else terms
        return tf.reduce_sum(terms, axis=-1)
    raise ValueError(f"unknown hinge variant {variant!r}; choose one of {', '.join(HINGE_VARIANTS)}.")
