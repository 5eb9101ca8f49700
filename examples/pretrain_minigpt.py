"""Pre-train MiniGPT, a small causal language model, on a text corpus.

Runs offline on the embedded stdlib_docs corpus by default, in a few minutes
on 2 CPU cores, and prints held-out perplexity beside the unigram
perplexity (the best a model without context can do), then greedy and
top-k continuations of a few prompts:

    python examples/pretrain_minigpt.py
    python examples/pretrain_minigpt.py --preset=mini --steps=5000 \
        --strategy=mirrored --model_dir=/tmp/minigpt
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
flags.DEFINE_string("model_dir", "runs/pretrain_minigpt", "Output: minigpt.keras and samples.txt.")
flags.DEFINE_string("preset", "tiny", "MiniGPT preset: tiny, mini or small.")
flags.DEFINE_integer("hidden_dim", None, "Override the preset's hidden size (heads = hidden / 64).")
flags.DEFINE_integer("num_layers", None, "Override the preset's number of layers.")
flags.DEFINE_string("vocabulary", None, "A vocabulary file (one token per line, special tokens first) to use instead of learning one.")
flags.DEFINE_integer("vocabulary_size", 2000, "WordPiece vocabulary size, special tokens included.")
flags.DEFINE_integer("vocabulary_texts", None, "Learn the vocabulary from at most this many texts.")
flags.DEFINE_integer("sequence_length", 64, "Packed length: [CLS] text [SEP] [PAD]...")
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_integer("steps", 300, "Training steps.")
flags.DEFINE_float("learning_rate", 1e-3, "AdamW learning rate.")
flags.DEFINE_float("dropout", 0.1, "Dropout rate.")
flags.DEFINE_list("prompts", list(text_recipes.DEFAULT_PROMPTS), "Prompts to continue.")
flags.DEFINE_integer("top_k", 10, "Candidates of top-k sampling.")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and sampling.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")


def main(argv):
    del argv
    result = text_recipes.pretrain_minigpt(
        dataset=data.text_source(FLAGS.dataset, FLAGS.text_column, FLAGS.label_column),
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        model_dir=FLAGS.model_dir,
        preset=FLAGS.preset,
        hidden_dim=FLAGS.hidden_dim,
        num_layers=FLAGS.num_layers,
        vocabulary=FLAGS.vocabulary,
        vocabulary_size=FLAGS.vocabulary_size,
        vocabulary_texts=FLAGS.vocabulary_texts,
        sequence_length=FLAGS.sequence_length,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        learning_rate=FLAGS.learning_rate,
        dropout=FLAGS.dropout,
        prompts=FLAGS.prompts,
        top_k=FLAGS.top_k,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
    )
    print(f"\nHeld-out perplexity ({FLAGS.dataset}, {result.vocabulary_size} tokens):")
    print(f"  MiniGPT after {FLAGS.steps} steps  {result.perplexity:10.1f}")
    print(f"  MiniGPT untrained          {result.initial_perplexity:10.1f}")
    print(f"  unigram (add-one)          {result.unigram_perplexity:10.1f}")
    print(f"  ratio MiniGPT / unigram    {result.perplexity / result.unigram_perplexity:10.3f}")
    print("\nContinuations:")
    for prompt, outputs in result.samples.items():
        print(f"  {prompt!r}")
        print(f"    greedy:  {outputs['greedy']}")
        print(f"    top-{FLAGS.top_k}:  {outputs['top_k']}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
