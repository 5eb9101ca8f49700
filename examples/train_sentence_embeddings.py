"""Train contrastive sentence embeddings on a MiniBERT encoder.

Runs offline on the embedded stdlib_docs corpus by default, in a few minutes
on 2 CPU cores: in-batch-negative training on (first sentence, remainder)
pairs of docstrings, or two random crops of each docstring
(`--objective=unsupervised`; `--views=dropout` is SimCSE), then prints
held-out retrieval accuracy — a docstring's first sentence must find its
own remainder among N candidates — beside chance, the untrained encoder
and a TF-IDF baseline, and a few nearest-neighbour searches:

    python examples/train_sentence_embeddings.py
    python examples/train_sentence_embeddings.py --objective=unsupervised \
        --mlm_steps=2000 --strategy=mirrored --model_dir=/tmp/embeddings
"""

from absl import app, flags

from keras_pt import data

from keras_pt import text_recipes

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "dataset", "stdlib_docs",
    "Text data: a TFDS name (stdlib_docs is embedded; imdb_reviews, glue/sst2, glue/mrpc, glue/qqp), "
    "a .txt file (one text per line), a .jsonl/.csv file (--text_column, --label_column) "
    "or a folder with one sub-folder of .txt files per class.")
flags.DEFINE_string("text_column", "text", "Text column of a .jsonl/.csv --dataset (two, comma-separated, for pairs).")
flags.DEFINE_string("label_column", "label", "Label column of a .jsonl/.csv --dataset (class ids or names).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (a gs:// path on TPUs).")
flags.DEFINE_string("strategy", "auto", "auto, default, one_device, mirrored, multi_worker or tpu.")
flags.DEFINE_string("model_dir", "runs/sentence_embeddings", "Output: sentence_encoder.keras.")
flags.DEFINE_enum("objective", "supervised", ["supervised", "unsupervised"],
                  "supervised: sentence pairs; unsupervised: two views of each text (--views).")
flags.DEFINE_enum("views", "crop", ["crop", "dropout"],
                  "Unsupervised views: two random crops of a text, or the text under two dropouts (SimCSE).")
flags.DEFINE_string("preset", "tiny", "MiniBERT preset: tiny, mini or small.")
flags.DEFINE_integer("hidden_dim", None, "Override the preset's hidden size (heads = hidden / 64).")
flags.DEFINE_integer("num_layers", None, "Override the preset's number of layers.")
flags.DEFINE_string("vocabulary", None, "A vocabulary file (one token per line, special tokens first) to use instead of learning one.")
flags.DEFINE_integer("vocabulary_size", 2000, "WordPiece vocabulary size, special tokens included.")
flags.DEFINE_integer("vocabulary_texts", None, "Learn the vocabulary from at most this many texts.")
flags.DEFINE_integer("sequence_length", 64, "Packed length of each text.")
flags.DEFINE_integer("batch_size", 32, "Global batch size: each text has batch_size - 1 negatives.")
flags.DEFINE_integer("steps", 300, "Contrastive training steps.")
flags.DEFINE_integer("mlm_steps", 0, "Masked-LM pre-training steps before (0: none).")
flags.DEFINE_float("temperature", 0.05, "Temperature of the cosine similarities.")
flags.DEFINE_enum("pooling", "mean", ["mean", "cls", "pooled"], "How token states become one vector.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float("dropout", 0.1, "Dropout rate (SimCSE's augmentation).")
flags.DEFINE_integer("num_candidates", 32, "Retrieval candidates per query (chance = 1/N).")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and the retrieval groups.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")


def main(argv):
    del argv
    result = text_recipes.train_sentence_embeddings(
        dataset=data.text_source(FLAGS.dataset, FLAGS.text_column, FLAGS.label_column),
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        model_dir=FLAGS.model_dir,
        objective=FLAGS.objective,
        preset=FLAGS.preset,
        hidden_dim=FLAGS.hidden_dim,
        num_layers=FLAGS.num_layers,
        vocabulary=FLAGS.vocabulary,
        vocabulary_size=FLAGS.vocabulary_size,
        vocabulary_texts=FLAGS.vocabulary_texts,
        sequence_length=FLAGS.sequence_length,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        mlm_steps=FLAGS.mlm_steps,
        temperature=FLAGS.temperature,
        pooling=FLAGS.pooling,
        learning_rate=FLAGS.learning_rate,
        dropout=FLAGS.dropout,
        num_candidates=FLAGS.num_candidates,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
        views=FLAGS.views,
    )
    n = result.num_candidates
    print(f"\nHeld-out retrieval ({FLAGS.dataset}, {result.num_pairs} pairs, "
          f"first sentence -> its remainder among {n} candidates):")
    print(result.table(f"{FLAGS.objective} embeddings"))
    print("\nNearest held-out remainder of a few first sentences:")
    for query, hits in result.examples:
        text, score = hits[0]
        print(f"  {query!r}\n    -> ({score:.3f}) {text[:100]!r}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
