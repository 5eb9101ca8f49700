"""Train contrastive sentence embeddings on a MiniBERT encoder.

Runs offline on the embedded stdlib_docs corpus by default, in a few minutes
on 2 CPU cores: in-batch-negative training on (first sentence, remainder)
pairs of docstrings, or two random crops of each docstring
(`--objective=unsupervised`; `--views=dropout` is SimCSE), then prints
held-out retrieval accuracy — a docstring's first sentence must find its
own remainder among N candidates — beside chance, the untrained encoder
and a TF-IDF baseline, and a few nearest-neighbour searches. On
`--dataset=debian_packages` the pairs are a package's description and its
debtags as words (`text -> its tag_text`):

    python examples/train_sentence_embeddings.py
    python examples/train_sentence_embeddings.py --dataset=debian_packages
    python examples/train_sentence_embeddings.py --objective=unsupervised \
        --mlm_steps=2000 --strategy=mirrored --model_dir=/tmp/embeddings
"""

from absl import flags

from keras_pt import data, recipes
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.sentence_embeddings import SentenceEmbeddingConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "text")
recipe_flags.define_flag(
    Config,
    "objective",
    "supervised: (first sentence, remainder) pairs, or the data set's paired features; "
    "unsupervised: two views of each text.",
    ["supervised", "unsupervised"],
)
recipe_flags.define_flag(
    Config,
    "views",
    "Views of the unsupervised objective: random crops, or dropout (SimCSE).",
    ["crop", "dropout"],
)
recipe_flags.define_flag(Config, "preset", "MiniBERT preset.", ["tiny", "mini", "small"])
flags.DEFINE_integer("hidden_dim", None, "Override the preset's hidden size (heads = hidden / 64).")
flags.DEFINE_integer("num_layers", None, "Override the preset's number of layers.")
recipe_flags.define_flag(
    Config,
    "vocabulary",
    "A vocabulary file (one token per line, special tokens first) to use instead of learning one.",
)
recipe_flags.define_flag(Config, "vocabulary_size", "WordPiece vocabulary size, special tokens included.")
flags.DEFINE_integer("vocabulary_texts", None, "Learn the vocabulary from at most this many texts.")
recipe_flags.define_flag(Config, "sequence_length", "Packed length of each text.")
recipe_flags.define_flag(Config, "steps", "Contrastive training steps.")
recipe_flags.define_flag(
    Config,
    "embedding_init",
    "Token embeddings to start from: random, or the corpus's co-occurrence vectors (PPMI + SVD).",
    ["random", "ppmi"],
)
recipe_flags.define_flag(Config, "mlm_steps", "Masked-LM pre-training steps before (0: none).")
recipe_flags.define_flag(Config, "temperature", "Temperature of the cosine similarities.")
recipe_flags.define_flag(Config, "pooling", "How token states become one vector.", ["mean", "first_token", "pooled"])
recipe_flags.define_flag(Config, "learning_rate", "Adam learning rate.")
recipe_flags.define_flag(Config, "dropout", "Dropout rate (SimCSE's augmentation).")
recipe_flags.define_flag(Config, "num_candidates", "Retrieval candidates per query (chance = 1/N).")


def main(argv):
    del argv
    result = recipes.train_sentence_embeddings(recipe_flags.config_from_flags(Config))
    query_name, candidate_name = data.pair_names(FLAGS.dataset)
    print(
        f"\nHeld-out retrieval ({FLAGS.dataset}, {result.num_pairs} pairs, {query_name} -> "
        f"its {candidate_name} among {result.num_candidates} candidates):"
    )
    print(result.table(f"{FLAGS.objective} embeddings"))
    print(f"\nNearest held-out {candidate_name} of a few {query_name}s:")
    for query, hits in result.examples:
        text, score = hits[0]
        print(f"  {query!r}\n    -> ({score:.3f}) {text[:100]!r}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    recipe_flags.run(main)
