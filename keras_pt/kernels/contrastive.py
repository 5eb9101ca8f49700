"""Contrastive kernel: in-batch-negative InfoNCE over cosine similarities."""

import tensorflow as tf


@tf.function(jit_compile=True, autograph=False)
def in_batch_contrastive_loss(anchors, candidates, positive_indices, temperature):
    """Per-anchor InfoNCE loss with in-batch negatives.

    Each anchor `a_i` is scored against every candidate `c_j` by the
    temperature-scaled cosine similarity `s_ij = cos(a_i, c_j) / T`; the loss
    of anchor `i` is the cross-entropy of picking its positive
    `c_{p_i}` among all candidates,

        loss_i = −log( exp(s_{i,p_i}) / Σ_j exp(s_ij) ),

    so every other candidate (the other sentences of the batch — of the
    global batch when the candidates are all-gathered across replicas) is a
    negative. Computed in float32 whatever the input dtype; inputs need not
    be normalised (a zero vector gets similarity 0 with everything).

    Args:
        anchors: float tensor `(batch, dim)`.
        candidates: float tensor `(num_candidates, dim)`.
        positive_indices: int tensor `(batch,)`, the row of `candidates`
            that is each anchor's positive.
        temperature: float scalar `T > 0` (SimCSE uses 0.05).

    Returns:
        A dict of float32 tensors: `"loss"` `(batch,)`, the per-anchor
        losses; `"correct"` `(batch,)`, 1.0 where the positive has the
        highest similarity (in-batch retrieval accuracy).

    References:
        van den Oord et al., "Representation Learning with Contrastive
        Predictive Coding", 2018 (InfoNCE).
        Gao, Yao & Chen, "SimCSE: Simple Contrastive Learning of Sentence
        Embeddings", 2021.
    """
    anchors = tf.math.l2_normalize(tf.cast(anchors, tf.float32), axis=-1)
    candidates = tf.math.l2_normalize(tf.cast(candidates, tf.float32), axis=-1)
    temperature = tf.cast(temperature, tf.float32)
    positive_indices = tf.cast(positive_indices, tf.int32)
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature  # (batch, cands)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(positive_indices, logits)
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    correct = tf.cast(tf.equal(predicted, positive_indices), tf.float32)
    return {"loss": loss, "correct": correct}
