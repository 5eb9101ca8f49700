"""Pre-train an autoencoder on unlabelled images, fine-tune MLP and SVM heads.

Runs offline on the embedded digits by default, in a few minutes on 2 CPU
cores, and prints test accuracy of each head on an untrained and on the
pre-trained encoder, frozen (linear probe) and fine-tuned:

    python examples/pretrain_finetune.py
    python examples/pretrain_finetune.py --dataset=mnist --architecture=conv \
        --strategy=mirrored --mixed_precision=mixed_float16 --model_dir=/tmp/mnist

Every phase checkpoints under --model_dir and a run started again with the
same --model_dir resumes exactly where the last one stopped (killed,
preempted, or finished: finished phases are restored, not retrained).
Use a new --model_dir to start from scratch.
"""

from absl import app, flags

from keras_pt import recipes

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "digits", "TFDS image data set (digits is embedded).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (a gs:// path on TPUs).")
flags.DEFINE_string("strategy", "auto", "auto, default, one_device, mirrored, multi_worker or tpu.")
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (default: Colab's, TPU_NAME, or a TPU VM's).")
flags.DEFINE_string("model_dir", "runs/pretrain_finetune", "Output and checkpoints; a rerun resumes from them.")
flags.DEFINE_enum("mixed_precision", None, ["mixed_bfloat16", "mixed_float16"], "Mixed precision policy.")
flags.DEFINE_bool("scale_batch_size", False, "Multiply batch size and learning rate by the replica count.")
flags.DEFINE_integer("checkpoint_every", None, "Pre-training steps between checkpoints (default: each epoch).")
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
        tpu=FLAGS.tpu,
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
        mixed_precision=FLAGS.mixed_precision,
        scale_batch_size=FLAGS.scale_batch_size,
        checkpoint_every=FLAGS.checkpoint_every,
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
