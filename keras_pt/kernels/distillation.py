"""Knowledge-distillation kernel: the temperature-softened KL term."""

import tensorflow as tf


@tf.function(jit_compile=True, autograph=False)
def softened_kl(teacher_logits, student_logits, temperature):
    """Per-example `KL(softmax(t / T) ‖ softmax(s / T))`.

    `Σ_j p_j (log p_j − log q_j)` with `p = softmax(teacher / T)` and
    `q = softmax(student / T)`, computed from log-softmax so that large
    logits and p_j = 0 stay finite. Computed in float32 whatever the input
    dtype. The distillation loss multiplies it by `T²` so its gradient scale
    does not depend on `T` (Hinton et al., 2015).

    Args:
        teacher_logits: float tensor `(batch, num_classes)`.
        student_logits: float tensor `(batch, num_classes)`.
        temperature: float scalar, `T > 0`.

    Returns:
        float32 tensor `(batch,)`.
    """
    temperature = tf.cast(temperature, tf.float32)
    log_p = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / temperature)
    log_q = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / temperature)
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)
