"""Pre-train MiniGPT, a small causal language model, on a text corpus.

Runs offline on the embedded stdlib_docs corpus by default, in a few minutes
on 2 CPU cores, and prints held-out perplexity beside the unigram
perplexity (the best a model without context can do), then greedy and
top-k continuations of a few prompts:

    python examples/pretrain_minigpt.py
    python examples/pretrain_minigpt.py --preset=mini --steps=5000 \
        --strategy=mirrored --model_dir=/tmp/minigpt
"""

from absl import flags

from keras_pt import recipes
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.minigpt import MiniGPTConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "text")
recipe_flags.define_flag(Config, "preset", "MiniGPT preset.", ["tiny", "mini", "small"])
flags.DEFINE_integer("hidden_dim", None, "Override the preset's hidden size (heads = hidden / 64).")
flags.DEFINE_integer("num_layers", None, "Override the preset's number of layers.")
recipe_flags.define_flag(
    Config,
    "vocabulary",
    "A vocabulary file (one token per line, special tokens first) to use instead of learning one.",
)
recipe_flags.define_flag(Config, "vocabulary_size", "WordPiece vocabulary size, special tokens included.")
flags.DEFINE_integer("vocabulary_texts", None, "Learn the vocabulary from at most this many texts.")
recipe_flags.define_flag(Config, "sequence_length", "Packed length: [CLS] text [SEP] [PAD]...")
recipe_flags.define_flag(Config, "steps", "Training steps.")
recipe_flags.define_flag(Config, "learning_rate", "AdamW learning rate.")
recipe_flags.define_flag(Config, "dropout", "Dropout rate.")
recipe_flags.define_flag(Config, "prompts", "Prompts to continue.")
recipe_flags.define_flag(Config, "top_k", "Candidates of top-k sampling.")


def main(argv):
    del argv
    result = recipes.pretrain_minigpt(recipe_flags.config_from_flags(Config))
    print(f"\nHeld-out perplexity ({FLAGS.dataset}, {result.vocabulary_size} tokens):")
    print(result.table())
    print("\nContinuations:")
    for prompt, outputs in result.samples.items():
        print(f"  {prompt!r}")
        print(f"    greedy:  {outputs['greedy']}")
        print(f"    top-{FLAGS.top_k}:  {outputs['top_k']}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    recipe_flags.run(main)
