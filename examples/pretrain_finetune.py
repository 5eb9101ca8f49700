"""Pre-train an image encoder on unlabelled images, fine-tune MLP and SVM heads.

Runs offline on the embedded digits by default, in a few minutes on 2 CPU
cores: SimCLR pre-training (or --pretraining=denoising_autoencoder), then
prints test accuracy (mean ± sd over --label_draws draws of the labelled
examples) of each head on an untrained and on the pre-trained encoder,
frozen (linear probe) and fine-tuned, beside a linear SVM and a logistic
regression on the raw pixels of the same draws:

    python examples/pretrain_finetune.py
    python examples/pretrain_finetune.py --dataset=mnist --architecture=conv \
        --strategy=mirrored --mixed_precision=mixed_float16 --model_dir=/tmp/mnist

Every phase checkpoints under --model_dir and a run started again with the
same --model_dir resumes exactly where the last one stopped (killed,
preempted, or finished: finished phases are restored, not retrained).
Use a new --model_dir to start from scratch.
"""

from absl import flags

from keras_pt import recipes
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.pretrain_finetune import PretrainFinetuneConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "image")
recipe_flags.define_flag(Config, "pretraining", "Pre-training model.", recipes.PRETRAINING)
recipe_flags.define_flag(
    Config,
    "architecture",
    "Encoder (auto: conv for simclr, dense for autoencoders).",
    ["auto", "dense", "conv"],
)
recipe_flags.define_flag(Config, "latent_dim", "Code size of the autoencoders.")
flags.DEFINE_integer("pretrain_epochs", None, "Pre-training epochs (default: 20 simclr, 40 autoencoders).")
recipe_flags.define_flag(Config, "finetune_steps", "Optimizer steps of the MLP probe, and of each fine-tuning.")
recipe_flags.define_flag(Config, "labels_per_class", "Labelled training examples per class.")
recipe_flags.define_flag(Config, "label_draws", "Draws of the labelled examples (mean ± sd over them).")
recipe_flags.define_flag(Config, "learning_rate", "Adam learning rate.")
recipe_flags.define_flag(Config, "svm_c", "C of the SVM head.")
recipe_flags.define_flag(Config, "finetune_lr_scale", "Fine-tuning learning rate relative to --learning_rate.")


def main(argv):
    del argv
    result = recipes.pretrain_finetune(recipe_flags.config_from_flags(Config))
    print(
        f"\nTest accuracy with {FLAGS.labels_per_class} labels per class ({FLAGS.dataset}, "
        f"{FLAGS.pretraining}; mean ± sd over {FLAGS.label_draws} label draws):"
    )
    print(result.table())
    if result.reconstruction_loss is not None:
        print(
            f"\nTest reconstruction loss {result.reconstruction_loss:.4f} "
            f"(mean-image baseline {result.mean_image_loss:.4f})"
        )
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    recipe_flags.run(main)
