"""Pre-train an autoencoder on unlabelled images, fine-tune MLP and SVM heads.

Runs offline on the embedded digits by default, in a few minutes on 2 CPU
cores, and prints test accuracy of each head on an untrained and on the
pre-trained encoder, frozen (linear probe) and fine-tuned:

    python examples/pretrain_finetune.py
    python examples/pretrain_finetune.py --dataset=mnist --architecture=conv \
        --strategy=mirrored --model_dir=/tmp/mnist
"""

from absl import app, flags

from keras_pt import recipes

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "digits", "TFDS image data set (digits is embedded).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (a gs:// path on TPUs).")
flags.DEFINE_string("strategy", "auto", "auto, default, one_device, mirrored, multi_worker or tpu.")
flags.DEFINE_string("model_dir", "runs/pretrain_finetune", "Output: model, PNG grid, TensorBoard logs.")
flags.DEFINE_enum("architecture", "dense", ["dense", "conv"], "Autoencoder architecture.")
flags.DEFINE_integer("latent_dim", 32, "Size of the code the heads see.")
flags.DEFINE_bool("denoising", True, "Pre-train a denoising autoencoder.")
flags.DEFINE_integer("pretrain_epochs", 40, "Pre-training epochs.")
flags.DEFINE_integer("finetune_steps", 300, "Optimizer steps of each probe, and again of fine-tuning.")
flags.DEFINE_integer("labels_per_class", 10, "Labelled training examples per class.")
flags.DEFINE_integer("batch_size", 64, "Global pre-training batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float("svm_c", 1.0, "C of the SVM head.")
flags.DEFINE_float("finetune_lr_scale", 0.1, "Fine-tuning learning rate relative to --learning_rate.")
flags.DEFINE_integer("seed", 0, "Seed of weights, noise and the labelled subset.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.")


def main(argv):
    del argv
    result = recipes.pretrain_finetune(
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        model_dir=FLAGS.model_dir,
        architecture=FLAGS.architecture,
        latent_dim=FLAGS.latent_dim,
        denoising=FLAGS.denoising,
        pretrain_epochs=FLAGS.pretrain_epochs,
        finetune_steps=FLAGS.finetune_steps,
        labels_per_class=FLAGS.labels_per_class,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        svm_c=FLAGS.svm_c,
        finetune_lr_scale=FLAGS.finetune_lr_scale,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
    )
    print(f"\nTest accuracy with {FLAGS.labels_per_class} labels per class ({FLAGS.dataset}):")
    print(result.table())
    print(
        f"\nTest reconstruction loss {result.reconstruction_loss:.4f} "
        f"(mean-image baseline {result.mean_image_loss:.4f})"
    )
    for name, path in result.files.items():
        print(f"{name}: {path}")
    print(f"Finished in {result.seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
