"""Learn a WordPiece vocabulary, pre-train a MiniBERT by masked-LM, save it.

Runs offline on the embedded stdlib_docs corpus by default (6,000 steps,
about 12 minutes on 2 CPU cores; fewer steps pre-train too little for
fine-tuning to gain from it, see README.md), and prints the held-out masked-LM accuracy beside
the unigram baseline (always predicting the most frequent token):

    python examples/pretrain_minibert.py --model_dir=runs/minibert
    python examples/pretrain_minibert.py --dataset=imdb_reviews --preset=mini \
        --steps=20000 --strategy=tpu --model_dir=gs://bucket/minibert

It writes <model_dir>/mini_bert.keras (vocabulary and preprocessor inside),
<model_dir>/vocabulary.txt, checkpoints (a rerun resumes) and TensorBoard
logs under <model_dir>/logs; examples/finetune_minibert.py takes the .keras
file.
"""

from absl import app, flags

from keras_pt import data
from keras_pt import bert_recipes

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
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (strategy tpu/auto).")
flags.DEFINE_string("model_dir", "runs/pretrain_minibert", "Output: model, vocabulary, TensorBoard logs.")
flags.DEFINE_enum("preset", "tiny", ["tiny", "mini", "small"], "MiniBERT shape (layers/hidden: 2/128, 4/256, 4/512).")
flags.DEFINE_integer("sequence_length", 128, "Tokens per packed text, [CLS] and [SEP] included.")
flags.DEFINE_integer(
    "vocabulary_size", 8192,
    "The most WordPiece tokens to learn (special tokens included); stdlib_docs offers ~7.5k.",
)
flags.DEFINE_string(
    "vocabulary", None,
    "A vocabulary file (one token per line, special tokens first) to use instead of learning one.",
)
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_integer("steps", 6000, "Pre-training steps (an epoch is one pass over the text).")
flags.DEFINE_float("learning_rate", 1e-3, "Peak AdamW learning rate (linear warm-up and decay).")
flags.DEFINE_float("dropout", 0.1, "Encoder dropout.")
flags.DEFINE_string("mixed_precision", None, "mixed_bfloat16 (TPUs) or mixed_float16 (GPUs); float32 when unset.")
flags.DEFINE_integer("checkpoint_every", None, "Steps between checkpoints (default: every epoch); reruns resume.")
flags.DEFINE_integer("seed", 0, "Seed of the weights, data order and masks.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.")


def main(argv):
    del argv
    result = bert_recipes.pretrain_minibert(
        dataset=data.text_source(FLAGS.dataset, FLAGS.text_column, FLAGS.label_column),
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        tpu=FLAGS.tpu,
        model_dir=FLAGS.model_dir,
        preset=FLAGS.preset,
        sequence_length=FLAGS.sequence_length,
        vocabulary_size=FLAGS.vocabulary_size,
        vocabulary=FLAGS.vocabulary,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        learning_rate=FLAGS.learning_rate,
        dropout=FLAGS.dropout,
        mixed_precision=FLAGS.mixed_precision,
        checkpoint_every=FLAGS.checkpoint_every,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
    )
    print(f"\nVocabulary: {result.vocabulary_size} tokens; {result.steps} pre-training steps")
    print(
        f"Held-out masked-LM accuracy {result.mlm_accuracy:.3f} "
        f"(unigram baseline {result.unigram_accuracy:.3f}: always {result.unigram_token!r})"
    )
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
