"""Fine-tune a pre-trained MiniBERT on a few labels, beside one trained from scratch.

Loads the .keras file of examples/pretrain_minibert.py, fine-tunes a
MiniBERTClassifier on --labels_per_class labelled examples per class with
early stopping on the validation split (best weights restored), does the
same from random initialisation (same vocabulary, preprocessor and
settings) and prints both test accuracies beside TF-IDF + a linear SVM
trained on the same labels (and its spread over --baseline_draws label
draws):

    python examples/pretrain_minibert.py --model_dir=runs/minibert
    python examples/finetune_minibert.py --pretrained=runs/minibert/mini_bert.keras

It writes the fine-tuned classifier (<model_dir>/classifier.keras), a
SavedModel taking raw strings (<model_dir>/export) and TensorBoard logs.
Both classifiers train through keras_pt.training.train with checkpoints
under <model_dir>/train: the same command resumes an interrupted run (and
a finished one just reports again); other settings or another pre-trained
model need a new --model_dir.
"""

from absl import app, flags

from keras_pt import data
from keras_pt import bert_recipes

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "pretrained", "runs/pretrain_minibert/mini_bert.keras",
    "The pre-trained MiniBERT (.keras) from examples/pretrain_minibert.py.",
)
flags.DEFINE_string(
    "dataset", "stdlib_docs",
    "Text data: a TFDS name (stdlib_docs is embedded; imdb_reviews, glue/sst2, glue/mrpc, glue/qqp), "
    "a .txt file (one text per line), a .jsonl/.csv file (--text_column, --label_column) "
    "or a folder with one sub-folder of .txt files per class.")
flags.DEFINE_string("text_column", "text", "Text column of a .jsonl/.csv --dataset (two, comma-separated, for pairs).")
flags.DEFINE_string("label_column", "label", "Label column of a .jsonl/.csv --dataset (class ids or names).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (a gs:// path on TPUs).")
flags.DEFINE_string("strategy", "auto", "auto, default, one_device, mirrored, multi_worker or tpu.")
flags.DEFINE_string(
    "mixed_precision", None,
    "mixed_bfloat16 (TPUs, CPUs) or mixed_float16 (GPUs, with loss scaling); float32 if unset.",
)
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (strategy tpu/auto).")
flags.DEFINE_string("model_dir", "runs/finetune_minibert", "Output: classifier, SavedModel, TensorBoard logs.")
flags.DEFINE_integer("labels_per_class", 20, "Labelled training examples per class.")
flags.DEFINE_integer("batch_size", 16, "Global batch size.")
flags.DEFINE_integer("epochs", 20, "The most fine-tuning epochs.")
flags.DEFINE_integer("steps_per_epoch", 25, "Steps per epoch (batches of the repeated labelled examples).")
flags.DEFINE_integer("patience", 5, "Epochs without a better validation accuracy before stopping.")
flags.DEFINE_float("learning_rate", 1e-3, "AdamW learning rate (1e-4 and 3e-4 fine-tuned worse on stdlib_docs).")
flags.DEFINE_float("dropout", 0.1, "Dropout before the classification layer.")
flags.DEFINE_enum("pooling", "mean", ["mean", "cls"], "What the head reads: mean of the token states or the [CLS] pooler.")
flags.DEFINE_integer("seed", 0, "Seed of the label draw, head and data order.")
flags.DEFINE_bool("export", True, "Write a SavedModel that takes raw strings.")
flags.DEFINE_integer(
    "baseline_draws", 5,
    "Label draws the TF-IDF + linear SVM baseline is tested on (the first is the run's own; 0: none).",
)
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.")


def main(argv):
    del argv
    result = bert_recipes.finetune_minibert(
        FLAGS.pretrained,
        dataset=data.text_source(FLAGS.dataset, FLAGS.text_column, FLAGS.label_column),
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision,
        model_dir=FLAGS.model_dir,
        labels_per_class=FLAGS.labels_per_class,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        patience=FLAGS.patience,
        learning_rate=FLAGS.learning_rate,
        dropout=FLAGS.dropout,
        pooling=FLAGS.pooling,
        seed=FLAGS.seed,
        baseline_draws=FLAGS.baseline_draws,
        export=FLAGS.export,
        verbose=FLAGS.verbose,
    )
    print(f"\nAccuracy with {result.num_labels} labels ({FLAGS.dataset}):")
    print(result.table())
    print(
        f"\nTest accuracy: pre-trained {result.accuracy['pretrained']:.3f}, "
        f"from scratch {result.accuracy['from_scratch']:.3f}"
    )
    if "tfidf_svm" in result.baselines:
        print(f"TF-IDF + linear SVM on the same labels: {result.baselines['tfidf_svm']['test']:.3f}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
