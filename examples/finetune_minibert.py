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

from absl import flags

from keras_pt import recipes
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.minibert_finetuning import FinetuneConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "text")
recipe_flags.define_flag(Config, "pretrained", "The pre-trained MiniBERT (.keras) from examples/pretrain_minibert.py.")
recipe_flags.define_flag(Config, "labels_per_class", "Labelled training examples per class.")
recipe_flags.define_flag(Config, "epochs", "The most fine-tuning epochs.")
recipe_flags.define_flag(Config, "steps_per_epoch", "Steps per epoch (batches of the repeated labelled examples).")
recipe_flags.define_flag(Config, "patience", "Epochs without a better validation accuracy before stopping.")
recipe_flags.define_flag(
    Config, "learning_rate", "AdamW learning rate (1e-4 and 3e-4 fine-tuned worse on stdlib_docs)."
)
recipe_flags.define_flag(Config, "weight_decay", "AdamW weight decay.")
recipe_flags.define_flag(Config, "dropout", "Dropout before the classification layer.")
recipe_flags.define_flag(
    Config,
    "pooling",
    "What the head reads: the mean of the token states, the [CLS] pooler, the first token.",
    ["mean", "pooled", "first_token"],
)
recipe_flags.define_flag(Config, "export", "Write a SavedModel that takes raw strings.")
recipe_flags.define_flag(
    Config,
    "baseline_draws",
    "Label draws the TF-IDF + linear SVM baseline is tested on (the first is the run's own; 0: none).",
)


def main(argv):
    del argv
    result = recipes.finetune_minibert(config=recipe_flags.config_from_flags(Config))
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
    recipe_flags.run(main)
