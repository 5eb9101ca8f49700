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

from absl import app, flags

from keras_pt import recipes

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "dataset", "digits",
    "Image data: a TFDS name (digits is embedded), a folder of class folders, a .npz/.npy file, "
    "or a folder of MNIST-format IDX files.")
flags.DEFINE_list("image_size", None, "height,width: resize folder images (needed when sizes differ).")
flags.DEFINE_float("test_fraction", 0.2, "Held-out test share for data without a test split.")
flags.DEFINE_bool("download", False, "Let TFDS download a named data set (needs the internet).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (a gs:// path on TPUs).")
flags.DEFINE_string("strategy", "auto", "auto, default, one_device, mirrored, multi_worker or tpu.")
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (default: Colab's, TPU_NAME, or a TPU VM's).")
flags.DEFINE_string("model_dir", "runs/pretrain_finetune", "Output and checkpoints; a rerun resumes from them.")
flags.DEFINE_enum("mixed_precision", None, ["mixed_bfloat16", "mixed_float16"], "Mixed precision policy.")
flags.DEFINE_bool("scale_batch_size", False, "Multiply batch size and learning rate by the replica count.")
flags.DEFINE_integer("checkpoint_every", None, "Pre-training steps between checkpoints (default: each epoch).")
flags.DEFINE_enum("pretraining", "simclr", list(recipes.PRETRAINING), "Pre-training model.")
flags.DEFINE_enum("architecture", "auto", ["auto", "dense", "conv"], "Encoder architecture (auto: conv for simclr, dense for autoencoders).")
flags.DEFINE_integer("latent_dim", 32, "Code size of the autoencoders.")
flags.DEFINE_integer("pretrain_epochs", None, "Pre-training epochs (default: 20 simclr, 40 autoencoders).")
flags.DEFINE_integer("finetune_steps", 300, "Optimizer steps of the MLP probe, and of each fine-tuning.")
flags.DEFINE_integer("labels_per_class", 10, "Labelled training examples per class.")
flags.DEFINE_integer("label_draws", 3, "Draws of the labelled examples (mean ± sd over them).")
flags.DEFINE_integer("batch_size", None, "Global pre-training batch size (default: 128 simclr, 64 autoencoders).")
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
        image_size=None if FLAGS.image_size is None else [int(s) for s in FLAGS.image_size],
        test_fraction=FLAGS.test_fraction,
        download=FLAGS.download,
        strategy=FLAGS.strategy,
        tpu=FLAGS.tpu,
        model_dir=FLAGS.model_dir,
        pretraining=FLAGS.pretraining,
        architecture=FLAGS.architecture,
        latent_dim=FLAGS.latent_dim,
        pretrain_epochs=FLAGS.pretrain_epochs,
        finetune_steps=FLAGS.finetune_steps,
        labels_per_class=FLAGS.labels_per_class,
        label_draws=FLAGS.label_draws,
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
    app.run(main)
