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

from absl import flags

from keras_pt import recipes
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.distillation import DistillConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "text")
recipe_flags.define_flag(
    Config, "teacher", "The fine-tuned MiniBERTClassifier (.keras) from examples/finetune_minibert.py."
)
recipe_flags.define_flag(Config, "labels_per_class", "Labelled training examples per class (as fine-tuned).")
recipe_flags.define_flag(Config, "student_layers", "Encoder blocks of the student.")
recipe_flags.define_flag(Config, "student_hidden_dim", "Width of the student.")
recipe_flags.define_flag(Config, "epochs", "The most epochs.")
recipe_flags.define_flag(Config, "steps_per_epoch", "Steps per epoch.")
recipe_flags.define_flag(Config, "patience", "Epochs without a better validation accuracy before stopping.")
recipe_flags.define_flag(Config, "learning_rate", "AdamW learning rate.")
recipe_flags.define_flag(Config, "weight_decay", "AdamW weight decay.")
recipe_flags.define_flag(Config, "temperature", "Softening temperature T.")
recipe_flags.define_flag(Config, "alpha", "Weight of the label cross-entropy (1 - alpha: the T^2 KL term).")
recipe_flags.define_flag(Config, "dropout", "Dropout of the student.")
recipe_flags.define_flag(
    Config,
    "baseline_draws",
    "Label draws the TF-IDF + linear SVM baseline is tested on (the first is the run's own; 0: none).",
)


def main(argv):
    del argv
    result = recipes.distill_minibert(config=recipe_flags.config_from_flags(Config))
    print(f"\n{FLAGS.dataset}: {result.num_labels} labels, {result.num_transfer} transfer examples")
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
    recipe_flags.run(main)
