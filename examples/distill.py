"""Distil a fine-tuned MiniBERT classifier into a smaller student.

Loads the classifier of examples/finetune_minibert.py (the teacher), trains
a small MiniBERTClassifier (1 encoder block of width 64 by default) on the
teacher's softened predictions over the labelled examples plus the task's
training split with its labels hidden, trains the same student on the
labels alone, and prints the test accuracy of the teacher and of both
students beside TF-IDF + a linear SVM on the same labels (and its spread
over --baseline_draws label draws):

    python examples/pretrain_minibert.py --model_dir=runs/minibert
    python examples/finetune_minibert.py --pretrained=runs/minibert/mini_bert.keras \
        --model_dir=runs/minibert_classifier
    python examples/distill.py --teacher=runs/minibert_classifier/classifier.keras

Pass the --labels_per_class and --seed given to finetune_minibert.py so
that the students see the teacher's labels. It writes the distilled student
(<model_dir>/student.keras, raw strings in) and TensorBoard logs. Both
students train through keras_pt.training.train with checkpoints under
<model_dir>/train: the same command resumes an interrupted run; other
settings or another teacher need a new --model_dir.
"""

from absl import app, flags

from keras_pt import data
from keras_pt import bert_recipes

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "teacher", "runs/finetune_minibert/classifier.keras",
    "The fine-tuned MiniBERTClassifier (.keras) from examples/finetune_minibert.py.",
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
flags.DEFINE_string("model_dir", "runs/distill", "Output: the distilled student, TensorBoard logs.")
flags.DEFINE_integer("labels_per_class", 20, "Labelled training examples per class (as fine-tuned).")
flags.DEFINE_integer("student_layers", 1, "Encoder blocks of the student.")
flags.DEFINE_integer("student_hidden_dim", 64, "Width of the student.")
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_integer("epochs", 20, "The most epochs.")
flags.DEFINE_integer("steps_per_epoch", 25, "Steps per epoch.")
flags.DEFINE_integer("patience", 5, "Epochs without a better validation accuracy before stopping.")
flags.DEFINE_float("learning_rate", 1e-3, "AdamW learning rate.")
flags.DEFINE_float("temperature", 4.0, "Softening temperature T.")
flags.DEFINE_float("alpha", 0.5, "Weight of the label cross-entropy (1 - alpha: the T^2 KL term).")
flags.DEFINE_float("dropout", 0.1, "Dropout of the student.")
flags.DEFINE_integer("seed", 0, "Seed of the label draw (as fine-tuned), the student and data order.")
flags.DEFINE_integer(
    "baseline_draws", 5,
    "Label draws the TF-IDF + linear SVM baseline is tested on (the first is the run's own; 0: none).",
)
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.")


def main(argv):
    del argv
    result = bert_recipes.distill_minibert(
        FLAGS.teacher,
        dataset=data.text_source(FLAGS.dataset, FLAGS.text_column, FLAGS.label_column),
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision,
        model_dir=FLAGS.model_dir,
        labels_per_class=FLAGS.labels_per_class,
        student_layers=FLAGS.student_layers,
        student_hidden_dim=FLAGS.student_hidden_dim,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        patience=FLAGS.patience,
        learning_rate=FLAGS.learning_rate,
        temperature=FLAGS.temperature,
        alpha=FLAGS.alpha,
        dropout=FLAGS.dropout,
        seed=FLAGS.seed,
        baseline_draws=FLAGS.baseline_draws,
        verbose=FLAGS.verbose,
    )
    print(
        f"\n{FLAGS.dataset}: {result.num_labels} labels, "
        f"{result.num_transfer} transfer examples"
    )
    print(result.table())
    print(
        f"\nTest accuracy: teacher {result.accuracy['teacher']:.3f}, "
        f"distilled student {result.accuracy['distilled']:.3f}, "
        f"student alone {result.accuracy['alone']:.3f}"
    )
    if "tfidf_svm" in result.baselines:
        print(f"TF-IDF + linear SVM on the same labels: {result.baselines['tfidf_svm']['test']:.3f}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
