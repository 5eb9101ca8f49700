"""Generation speed: MiniGPT.generate with and without its key/value cache, and KerasHub.

Three generators of the same shape (by default 4 layers, hidden 256, 4
heads, intermediate 1024, vocabulary 8192, batch 8, prompts of 32 tokens,
256 new tokens, so buffers of 288 positions; float32, no dropout, random
weights) continue the same random prompts greedily:

- `MiniGPT.generate(..., strategy="greedy")`: the XLA-compiled loop with
  per-block key/value caches (the default);
- `MiniGPT.generate(..., use_cache=False)`: the same loop re-running the
  model on the whole buffer at every step;
- KerasHub's `GPT2CausalLM.generate` (its own key/value cache) on a
  `GPT2Backbone` of the same vocabulary, layers, heads, hidden and
  intermediate sizes and maximum length, compiled with the greedy sampler
  (`compile(sampler="greedy")`), once with `jit_compile="auto"` (what a user
  gets; Keras resolves it to False on CPU-only machines) and once with
  `jit_compile=True`.

The models differ where their architectures do (MiniGPT is post-LN with a
BERT-style LM head transform, GPT-2 pre-LN with a final LayerNorm; both use
the tanh GELU and tied output embeddings); the work per token is the same
up to the head's extra hidden x hidden matmul, which MiniGPT does. Every
run generates all new tokens: KerasHub gets `stop_token_ids=None`, and
MiniGPT's `[SEP]` logit is pushed down by its output bias so that no
sequence stops early (checked).

Each generator is called once to trace and compile (not timed), then the
rounds alternate between them (the uncached loop, much slower, runs
`--uncached_rounds` times). Figures are medians of whole `generate` calls
(prompt prefill included): new tokens per second of wall-clock time and per
CPU-second of the process, and their ratios, all measured in the same run.
The script also checks that the cached and uncached loops gave the same
tokens.

    pip install keras-hub   # the `benchmark` extra, not a dependency
    python benchmarks/generation_speed.py
    python benchmarks/generation_speed.py --batch_size=1 --rounds=5
"""

import os
import sys

from absl import app, flags

import keras
import numpy as np

import keras_pt
from keras_pt.layers.special_tokens import CLS_ID, NUM_SPECIAL_TOKENS, PAD_ID, SEP_ID

if __package__ in (None, ""):  # run as a script: python benchmarks/...
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks._common import timed  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command-line flags (defined only when run as a script, so that
    other benchmarks can import this module)."""
    flags.DEFINE_integer("vocabulary_size", 8192, "Vocabulary size.")
    flags.DEFINE_integer("num_layers", 4, "Decoder blocks.")
    flags.DEFINE_integer("num_heads", 4, "Attention heads.")
    flags.DEFINE_integer("hidden_dim", 256, "Hidden size.")
    flags.DEFINE_integer("intermediate_dim", 1024, "Feed-forward width.")
    flags.DEFINE_integer("batch_size", 8, "Prompts generated together.")
    flags.DEFINE_integer("prompt_length", 32, "Tokens per prompt ([CLS] included).")
    flags.DEFINE_integer("new_tokens", 256, "Tokens generated after each prompt.")
    flags.DEFINE_integer("rounds", 3, "Timed calls of each cached generator.")
    flags.DEFINE_integer("uncached_rounds", 1, "Timed calls of the uncached loop.")
    flags.DEFINE_bool("keras_hub", True, "Also time KerasHub's GPT2CausalLM.")


CACHED = "MiniGPT cached"
UNCACHED = "MiniGPT uncached"
HUB_AUTO = "KerasHub GPT2CausalLM"
HUB_XLA = "KerasHub GPT2CausalLM XLA"


def make_prompts(rng, batch_size, prompt_length, vocabulary_size):
    """`[CLS]` then random ordinary tokens, `(batch, prompt_length)` int32."""
    ids = rng.integers(NUM_SPECIAL_TOKENS, vocabulary_size, size=(batch_size, prompt_length))
    ids[:, 0] = CLS_ID
    return ids.astype("int32")


def build_minigpt(shape, max_length):
    """A MiniGPT of `shape` (a dict of the model sizes) that never stops early."""
    model = keras_pt.MiniGPT(
        vocabulary_size=shape["vocabulary_size"],
        num_layers=shape["num_layers"],
        hidden_dim=shape["hidden_dim"],
        num_heads=shape["num_heads"],
        intermediate_dim=shape["intermediate_dim"],
        max_sequence_length=max_length,
        dropout=0.0,
        activation="gelu_approximate",
    )
    # Never stop early: every call generates all new tokens.
    bias = model.lm_head.output_bias
    bias.assign(bias.numpy() - 1e4 * (np.arange(shape["vocabulary_size"]) == SEP_ID))
    return model


def build_keras_hub(shape, max_length, jit_compile):
    import keras_hub  # the benchmark extra; never imported by keras_pt

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=shape["vocabulary_size"],
        num_layers=shape["num_layers"],
        num_heads=shape["num_heads"],
        hidden_dim=shape["hidden_dim"],
        intermediate_dim=shape["intermediate_dim"],
        dropout=0.0,
        max_sequence_length=max_length,
    )
    model = keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)
    model.compile(sampler="greedy", jit_compile=jit_compile)
    return model


def measure(shape, batch_size, prompt_length, new_tokens, rounds=3, uncached_rounds=1, keras_hub_jit=("auto", True)):
    """Times the generators; returns `(rows, same, jit)`.

    `rows` maps each generator's name to its medians (`tokens_per_second`,
    `tokens_per_cpu_second`, `seconds_per_call`, `calls`,
    `first_call_seconds`); `same` is the fraction of positions where the
    cached and uncached loops agree; `jit` the resolved `jit_compile` of each
    KerasHub model. `keras_hub_jit` lists the KerasHub compilations to time
    (`"auto"`, `True`); empty skips KerasHub. `uncached_rounds=0` skips
    the uncached loop.
    """
    batch, new = batch_size, new_tokens
    max_length = prompt_length + new
    vocabulary_size = shape["vocabulary_size"]
    prompts = make_prompts(np.random.default_rng(0), batch, prompt_length, vocabulary_size)
    padded = np.full((batch, max_length), PAD_ID, np.int32)
    padded[:, :prompt_length] = prompts
    hub_inputs = {"token_ids": padded, "padding_mask": padded != PAD_ID}

    ours = build_minigpt(shape, max_length)
    generators = {CACHED: lambda: ours.generate(prompts, max_length, strategy="greedy")}
    if uncached_rounds:
        generators[UNCACHED] = lambda: ours.generate(prompts, max_length, strategy="greedy", use_cache=False)
    hub_models = {}
    for jit in keras_hub_jit:
        hub_models[HUB_XLA if jit is True else HUB_AUTO] = build_keras_hub(shape, max_length, jit)
    for name, model in hub_models.items():
        generators[name] = lambda model=model: model.generate(hub_inputs, stop_token_ids=None)["token_ids"]

    outputs, compile_seconds = {}, {}
    for name, fn in generators.items():  # trace and compile outside the timing
        outputs[name], compile_seconds[name], _ = timed(fn)
    same = float(np.mean(outputs[CACHED] == outputs[UNCACHED])) if uncached_rounds else None
    if (outputs[CACHED] == PAD_ID).any():
        raise RuntimeError("a MiniGPT sequence stopped early; the timing would be wrong.")

    wall = {name: [] for name in generators}
    cpu = {name: [] for name in generators}
    order = list(generators)
    for round_index in range(rounds):
        for name in order if round_index % 2 == 0 else order[::-1]:
            if name == UNCACHED and round_index >= uncached_rounds:
                continue
            _, w, c = timed(generators[name])
            wall[name].append(w)
            cpu[name].append(c)

    tokens = batch * new
    rows = {
        name: {
            "tokens_per_second": tokens / float(np.median(wall[name])),
            "tokens_per_cpu_second": tokens / float(np.median(cpu[name])),
            "seconds_per_call": float(np.median(wall[name])),
            "cpu_seconds_per_call": float(np.median(cpu[name])),
            "calls": len(wall[name]),
            "first_call_seconds": compile_seconds[name],
        }
        for name in generators
    }
    return rows, same, {name: model.jit_compile for name, model in hub_models.items()}


def main(argv):
    del argv
    shape = {
        name: getattr(FLAGS, name)
        for name in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim")
    }
    batch, prompt_length, new = FLAGS.batch_size, FLAGS.prompt_length, FLAGS.new_tokens
    max_length = prompt_length + new
    rows, same, jit = measure(
        shape,
        batch,
        prompt_length,
        new,
        FLAGS.rounds,
        FLAGS.uncached_rounds,
        ("auto", True) if FLAGS.keras_hub else (),
    )
    rate = {name: row["tokens_per_second"] for name, row in rows.items()}
    cpu_rate = {name: row["tokens_per_cpu_second"] for name, row in rows.items()}
    print(
        f"shape: {FLAGS.num_layers} layers, hidden {FLAGS.hidden_dim}, {FLAGS.num_heads} "
        f"heads, intermediate {FLAGS.intermediate_dim}, vocabulary {FLAGS.vocabulary_size}, "
        f"batch {batch}, prompt {prompt_length} + {new} new tokens = {max_length}, "
        f"float32, greedy; {keras.__version__=}"
    )
    for name, value in jit.items():
        print(f"{name}: jit_compile resolved to {value}")
    if same is not None:
        print(f"cached and uncached MiniGPT tokens equal: {same:.4f} of positions")
    print()
    print("| generator | new tokens/s | new tokens per CPU-s | s per call | calls | first call (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['tokens_per_second']:.1f} | {row['tokens_per_cpu_second']:.1f} | "
            f"{row['seconds_per_call']:.3f} | {row['calls']} | {row['first_call_seconds']:.1f} |"
        )
    print()
    if UNCACHED in rows:
        print(
            f"cached / uncached: {rate[CACHED] / rate[UNCACHED]:.1f}x wall-clock, "
            f"{cpu_rate[CACHED] / cpu_rate[UNCACHED]:.1f}x CPU time (target >= 5x)"
        )
    for name in jit:
        print(
            f"cached / {name}: {rate[CACHED] / rate[name]:.2f}x wall-clock, "
            f"{cpu_rate[CACHED] / cpu_rate[name]:.2f}x CPU time (target >= 1.3x)"
        )


if __name__ == "__main__":
    define_flags()
    app.run(main)
