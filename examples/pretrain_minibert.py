"""Learn a WordPiece vocabulary, pre-train a MiniBERT, save it.

Runs offline on the embedded stdlib_docs corpus by default, in under a
minute on 2 CPU cores: the token embeddings start as the corpus's
co-occurrence vectors (PPMI of tokens sharing a text, truncated SVD;
--embedding_init=ppmi) and, by default, no gradient steps follow
(--steps=0), which fine-tuned better with 20 labels per class than
minutes of masked-LM, ELECTRA or contrastive pre-training (BUILD_NOTES.md,
"Token embeddings from co-occurrence counts"). --steps=N with
--objective=mlm|electra|crops trains on top, and prints the held-out
masked-LM accuracy beside the unigram baseline (always predicting the
most frequent token):

    python examples/pretrain_minibert.py --model_dir=runs/minibert
    python examples/pretrain_minibert.py --dataset=imdb_reviews --preset=mini \
        --steps=20000 --strategy=tpu --model_dir=gs://bucket/minibert

It writes <model_dir>/mini_bert.keras (vocabulary and preprocessor inside),
<model_dir>/vocabulary.txt, checkpoints (a rerun resumes) and TensorBoard
logs under <model_dir>/logs; examples/finetune_minibert.py takes the .keras
file.
"""

from absl import flags

from keras_pt import recipes
from keras_pt.models.mini_bert import PRESETS
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.minibert_pretraining import EMBEDDING_INITS, OBJECTIVES
from keras_pt.recipes.minibert_pretraining import PretrainMiniBERTConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "text")
recipe_flags.define_flag(
    Config, "preset", "MiniBERT shape (layers/hidden: tiny 2/128, mini 4/256, small 4/512).", PRESETS
)
recipe_flags.define_flag(
    Config,
    "objective",
    "Pre-training objective: masked-LM, ELECTRA's replaced-token detection "
    "(a small generator fills the masked positions, the MiniBERT tells every token "
    "original or replaced), or contrastive crops (two random spans of a text match "
    "each other against the rest of the batch).",
    OBJECTIVES,
)
recipe_flags.define_flag(
    Config,
    "embedding_init",
    "Token embeddings to start from: random, or the corpus's co-occurrence vectors "
    "(PPMI of tokens sharing a text, truncated SVD; seconds).",
    EMBEDDING_INITS,
)
recipe_flags.define_flag(Config, "sequence_length", "Tokens per packed text, [CLS] and [SEP] included.")
recipe_flags.define_flag(Config, "vocabulary_size", "The most WordPiece tokens to learn (special tokens included).")
recipe_flags.define_flag(
    Config,
    "vocabulary",
    "A vocabulary file (one token per line, special tokens first, e.g. an earlier run's "
    "vocabulary.txt) to use instead of learning one.",
)
recipe_flags.define_flag(Config, "steps", "Pre-training steps (an epoch is one pass over the text).")
recipe_flags.define_flag(Config, "learning_rate", "Peak AdamW learning rate (linear warm-up and decay).")
recipe_flags.define_flag(Config, "warmup_fraction", "Share of the steps spent warming up.")
recipe_flags.define_flag(Config, "weight_decay", "AdamW weight decay.")
recipe_flags.define_flag(Config, "dropout", "Encoder dropout.")


def main(argv):
    del argv
    result = recipes.pretrain_minibert(recipe_flags.config_from_flags(Config))
    print(f"\nVocabulary: {result.vocabulary_size} tokens; {result.steps} pre-training steps")
    which = "of the generator " if result.objective == "electra" else ""
    if not result.steps:
        print("Token embeddings from the corpus's co-occurrence vectors, no gradient steps")
    elif result.objective == "crops":
        print("Pre-trained by contrastive crops (no masked-LM accuracy)")
    else:
        print(
            f"Held-out masked-LM accuracy {which}{result.mlm_accuracy:.3f} "
            f"(unigram baseline {result.unigram_accuracy:.3f}: always {result.unigram_token!r})"
        )
    if result.rtd_accuracy is not None:
        print(f"Held-out replaced-token detection accuracy {result.rtd_accuracy:.3f}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    recipe_flags.run(main)
