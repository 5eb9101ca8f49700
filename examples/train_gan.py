"""Trains a GAN, scores it with the Fréchet distance, then probes its
discriminator features with a linear SVM.

The probe follows the DCGAN paper's protocol: every discriminator layer's
activations, max-pooled to a 2x2 grid and concatenated, standardised with
statistics of the unlabelled training images, then a linear L2-SVM trained on
`--labels_per_class` labels per class. It is repeated for `--probe_draws`
label draws, for the trained discriminator and for the same discriminator at
its initial weights, and reports mean ± std of the test accuracies and of
their paired difference, beside a linear SVM (scikit-learn `LinearSVC`) and
a logistic regression on the raw pixels of the same label draws. The SVM
head solves its objective on the labelled features (`SVMClassifier.adapt`);
`--svm_steps` adds Adam steps after that.

    python examples/train_gan.py                       # embedded 8x8 digits
    python examples/train_gan.py --loss=wasserstein --d_steps=5
    python examples/train_gan.py --dataset=mnist --data_dir=gs://...  # TFDS

Training runs through `keras_pt.training.train`, so `--strategy` takes
every strategy (multi_worker included), `--mixed_precision` works (float16
with loss scaling for both optimizers), and checkpoints under
--model_dir/checkpoints let a rerun resume where the last run stopped.

Writes under --model_dir: sample grids (samples/samples_epoch_XXX.png), the
feature classifier (feature_classifier.keras), TensorBoard logs (logs/), the
GAN (gan.keras) and the generator as a SavedModel (generator_savedmodel/).
"""

from absl import flags

from keras_pt import recipes
from keras_pt.recipes import flags as recipe_flags
from keras_pt.recipes.gan import LOSSES
from keras_pt.recipes.gan import GANConfig as Config

FLAGS = flags.FLAGS
recipe_flags.define_common_flags(Config, "image")
recipe_flags.define_flag(Config, "loss", "GAN loss.", LOSSES)
recipe_flags.define_flag(Config, "epochs", "Training epochs.")
recipe_flags.define_flag(Config, "latent_dim", "Latent vector size.")
recipe_flags.define_flag(Config, "base_filters", "DCGAN base filters.")
recipe_flags.define_flag(Config, "d_steps", "Discriminator steps per generator step.")
recipe_flags.define_flag(Config, "d_learning_rate", "Adam learning rate of the discriminator (TTUR: faster).")
recipe_flags.define_flag(Config, "g_learning_rate", "Adam learning rate of the generator.")
flags.DEFINE_enum(
    "jit_compile",
    "auto",
    ["auto", "true", "false"],
    "XLA-compile the train step (one device only); auto: on a single GPU, off on CPU "
    "(where it is slower for these convolutions).",
)
recipe_flags.define_flag(Config, "steps_per_execution", "Train steps per tf.function call.")
recipe_flags.define_flag(Config, "labels_per_class", "Labels per class for the SVM probe.")
recipe_flags.define_flag(Config, "probe_draws", "Label draws the SVM probe is averaged over.")
recipe_flags.define_flag(Config, "grid_size", "Max-pooled grid of the probe's features.")
recipe_flags.define_flag(Config, "svm_c", "C of the SVM probe.")
recipe_flags.define_flag(Config, "num_eval_samples", "Generated images per Fréchet distance.")
recipe_flags.define_flag(Config, "classifier_epochs", "Epochs of the feature classifier.")
recipe_flags.define_flag(Config, "svm_steps", "Full-batch Adam steps after the SVM probe's solved optimum.")


def run():
    """Trains, scores and probes with the flags' values; returns the `GANResult`."""
    jit_compile = {"auto": "auto", "true": True, "false": False}[FLAGS.jit_compile]
    result = recipes.train_gan(recipe_flags.config_from_flags(Config, jit_compile=jit_compile))
    print(
        f"\nLinear SVM probe ({FLAGS.labels_per_class} labels per class, {FLAGS.probe_draws} "
        f"draws, mean ± sd) and the Fréchet distance ({FLAGS.dataset}):"
    )
    print(result.table())
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")
    return result


def main(argv):
    del argv
    run()


if __name__ == "__main__":
    recipe_flags.run(main)
