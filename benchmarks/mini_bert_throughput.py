"""Masked-LM training throughput: keras_pt.MiniBERT against KerasHub's BertMaskedLM.

Both models have the same shape (by default 4 layers, hidden 256, 4 heads,
intermediate 1024, vocabulary 8192, sequence 128, batch 32), the same maths
(post-LN BERT blocks, GELU in the tanh form in the encoder as KerasHub's
BertBackbone uses — `--activation=gelu` runs MiniBERT with the exact erf
form instead —, exact GELU in the MLM head, tied output embeddings, dropout
0.1 on embeddings, attention probabilities, attention output and
feed-forward output), float32, the same optimizer (Adam 5e-5), and the
same number of prediction slots per sequence (`ceil(0.15 · 128) = 20`).

Inputs are pre-generated batches of random ids: `[CLS] tokens [SEP]
[PAD]...` with random lengths in `[seq/2, seq]`. MiniBERT gets the packed
batches and masks them itself inside its step (the masking is part of what
is timed). KerasHub's model gets what its `BertMaskedLMPreprocessor` would
produce with the same selection rate and slots: the masked ids,
`mask_positions`, the labels and the slot weights (made once, on the host,
with `keras_pt.kernels.mlm_masking`; not timed).

Both models compile as a user would, `jit_compile="auto"` (`--jit_compile`
sets MiniBERT's); the resolved values are printed: Keras turns XLA off on
CPU-only machines, so there both run as plain TensorFlow graphs (MiniBERT's
optimizer update still runs as one XLA cluster).
Each round runs `fit` for `--steps_per_round` steps on one model then the
other, alternating which goes first; every step is timed (a callback), and
the script prints the median sequences/s over all timed steps after
warm-up, and the ratio. It also prints sequences per CPU-second of the
process (median over steps): on a machine shared with other jobs, wall
time also measures how much of the CPU each model happened to get, while
CPU time measures the work each step needs.

    pip install keras-hub   # the `benchmark` extra, not a dependency
    python benchmarks/mini_bert_throughput.py
    python benchmarks/mini_bert_throughput.py --rounds=10 --activation=gelu
"""

import math
import os
import sys

from absl import app, flags

import keras
import numpy as np
import tensorflow as tf

import keras_pt
from keras_pt.kernels import mlm_masking
from keras_pt.layers.special_tokens import CLS_ID, NUM_SPECIAL_TOKENS, SEP_ID

if __package__ in (None, ""):  # run as a script: python benchmarks/...
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks._common import StepTimer  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command-line flags (defined only when run as a script, so that
    other benchmarks can import this module)."""
    flags.DEFINE_integer("vocabulary_size", 8192, "Vocabulary size.")
    flags.DEFINE_integer("num_layers", 4, "Encoder blocks.")
    flags.DEFINE_integer("num_heads", 4, "Attention heads.")
    flags.DEFINE_integer("hidden_dim", 256, "Hidden size.")
    flags.DEFINE_integer("intermediate_dim", 1024, "Feed-forward width.")
    flags.DEFINE_integer("sequence_length", 128, "Sequence length.")
    flags.DEFINE_integer("batch_size", 32, "Batch size.")
    flags.DEFINE_float("dropout", 0.1, "Dropout (both models).")
    flags.DEFINE_float("mask_selection_rate", 0.15, "Masked-LM selection rate.")
    flags.DEFINE_enum(
        "activation",
        "gelu_approximate",
        ["gelu_approximate", "gelu"],
        "MiniBERT's feed-forward GELU (KerasHub's BertBackbone uses the tanh form).",
    )
    flags.DEFINE_string("jit_compile", "auto", "MiniBERT's jit_compile: auto (its compile default), true or false.")
    flags.DEFINE_integer("num_batches", 8, "Distinct pre-generated batches.")
    flags.DEFINE_integer("warmup_steps", 3, "Untimed steps per model before the rounds.")
    flags.DEFINE_integer("rounds", 10, "Timed rounds per model (alternating).")
    flags.DEFINE_integer("steps_per_round", 4, "Timed train steps per round.")


OURS, THEIRS = "keras_pt.MiniBERT", "keras_hub.BertMaskedLM"


def make_batches(rng, num_batches, batch_size, length, vocabulary_size):
    """Packed single-segment batches of random ordinary tokens."""
    ids = rng.integers(NUM_SPECIAL_TOKENS, vocabulary_size, size=(num_batches * batch_size, length)).astype("int32")
    lengths = rng.integers(length // 2, length + 1, size=(num_batches * batch_size,))
    positions = np.arange(length)[None, :]
    padding_mask = (positions < lengths[:, None]).astype("int32")
    ids[:, 0] = CLS_ID
    ids[np.arange(len(ids)), lengths - 1] = SEP_ID
    ids = ids * padding_mask
    return {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": padding_mask,
    }


def keras_hub_inputs(packed, vocabulary_size, rate, max_predictions, seed):
    """What BertMaskedLMPreprocessor feeds BertMaskedLM: x, y, sample_weight."""
    masked = mlm_masking.mask_tokens(
        packed["token_ids"],
        packed["padding_mask"],
        tf.constant(seed),
        vocabulary_size,
        mask_selection_rate=rate,
        max_predictions=max_predictions,
    )
    x = {
        "token_ids": masked["token_ids"].numpy(),
        "segment_ids": packed["segment_ids"],
        "padding_mask": packed["padding_mask"],
        "mask_positions": masked["mask_positions"].numpy(),
    }
    return x, masked["mask_labels"].numpy(), masked["mask_weights"].numpy()


def make_dataset(batch_size, *structure):
    """Repeated batches of `structure` (one array dict, or `(x, y, weights)`)."""
    data = structure[0] if len(structure) == 1 else structure
    return (
        tf.data.Dataset.from_tensor_slices(data)
        .batch(batch_size, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )


def _parse_jit(value):
    value = value.strip().lower()
    return {"auto": "auto", "true": True, "false": False}[value]


def main(argv):
    del argv
    import keras_hub  # the benchmark extra; never imported by keras_pt

    length, vocab = FLAGS.sequence_length, FLAGS.vocabulary_size
    max_predictions = math.ceil(round(FLAGS.mask_selection_rate * length, 6))
    rng = np.random.default_rng(0)
    packed = make_batches(rng, FLAGS.num_batches, FLAGS.batch_size, length, vocab)

    ours = keras_pt.MiniBERT(
        vocabulary_size=vocab,
        num_layers=FLAGS.num_layers,
        hidden_dim=FLAGS.hidden_dim,
        num_heads=FLAGS.num_heads,
        intermediate_dim=FLAGS.intermediate_dim,
        max_sequence_length=length,
        dropout=FLAGS.dropout,
        mask_selection_rate=FLAGS.mask_selection_rate,
        max_predictions=max_predictions,
        activation=FLAGS.activation,
        seed=0,
    )
    ours.compile(optimizer=keras.optimizers.Adam(5e-5), jit_compile=_parse_jit(FLAGS.jit_compile))

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab,
        num_layers=FLAGS.num_layers,
        num_heads=FLAGS.num_heads,
        hidden_dim=FLAGS.hidden_dim,
        intermediate_dim=FLAGS.intermediate_dim,
        max_sequence_length=length,
        dropout=FLAGS.dropout,
    )
    theirs = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    theirs.compile(optimizer=keras.optimizers.Adam(5e-5))  # jit_compile="auto"

    x, y, w = keras_hub_inputs(packed, vocab, FLAGS.mask_selection_rate, max_predictions, [0, 1])
    datasets = {
        OURS: make_dataset(FLAGS.batch_size, packed),
        THEIRS: make_dataset(FLAGS.batch_size, x, y, w),
    }
    models = {OURS: ours, THEIRS: theirs}
    params = {name: m.count_params() for name, m in models.items()}

    for name, model in models.items():  # trace and compile outside the timing
        model.fit(datasets[name], steps_per_epoch=FLAGS.warmup_steps, epochs=1, verbose=0)
    timers = {name: StepTimer() for name in models}
    order = list(models)
    for round_index in range(FLAGS.rounds):
        for name in order if round_index % 2 == 0 else order[::-1]:
            models[name].fit(
                datasets[name],
                steps_per_epoch=FLAGS.steps_per_round,
                epochs=1,
                verbose=0,
                callbacks=[timers[name]],
            )
    batch = FLAGS.batch_size
    medians = {name: batch / float(np.median(t.wall)) for name, t in timers.items()}
    cpu_medians = {name: batch / float(np.median(t.cpu)) for name, t in timers.items()}

    print(
        f"shape: {FLAGS.num_layers} layers, hidden {FLAGS.hidden_dim}, "
        f"{FLAGS.num_heads} heads, intermediate {FLAGS.intermediate_dim}, vocabulary "
        f"{vocab}, sequence {length}, batch {FLAGS.batch_size}, {max_predictions} "
        f"predictions/sequence, dropout {FLAGS.dropout}, float32"
    )
    print(f"MiniBERT activation={FLAGS.activation}, jit_compile={ours.jit_compile}")
    print(f"KerasHub jit_compile='auto' resolved to {theirs.jit_compile}")
    print(f"rounds: {FLAGS.rounds} x {FLAGS.steps_per_round} steps per model, alternating")
    for name in models:
        steps = np.array(timers[name].wall)
        quartiles = ", ".join(f"{batch / q:.1f}" for q in np.percentile(steps, [75, 25]))
        print(
            f"{name:>24}: {medians[name]:7.1f} sequences/s (median of {len(steps)} "
            f"steps; interquartile {quartiles}; {params[name]:,} params)"
        )
    for name in models:
        print(
            f"{name:>24}: {cpu_medians[name]:7.1f} sequences per CPU-second "
            "(median; process CPU time, less sensitive to other load)"
        )
    ratio = medians[OURS] / medians[THEIRS]
    cpu_ratio = cpu_medians[OURS] / cpu_medians[THEIRS]
    print(f"speedup: {ratio:.2f}x wall-clock, {cpu_ratio:.2f}x CPU time (target >= 1.3x)")


if __name__ == "__main__":
    define_flags()
    app.run(main)
