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

import os
import time
from importlib.util import find_spec

from absl import app, flags

import keras
import numpy as np

import keras_pt
from keras_pt import data as data_lib
from keras_pt import training
from keras_pt.callbacks import FrechetDistance, SampleGrid
from keras_pt.evaluation import GeneratorEvaluator, baselines, images_array, train_feature_classifier

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "dataset", "digits",
    "Image data: a TFDS name (digits is embedded), a folder of class folders, a .npz/.npy file, "
    "or a folder of MNIST-format IDX files.")
flags.DEFINE_list("image_size", None, "height,width: resize folder images (needed when sizes differ).")
flags.DEFINE_bool("download", False, "Let TFDS download a named data set (needs the internet).")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_enum("loss", "non_saturating", ["non_saturating", "hinge", "wasserstein"], "GAN loss.")
flags.DEFINE_integer("epochs", 40, "Training epochs.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("latent_dim", 64, "Latent vector size.")
flags.DEFINE_integer("base_filters", 64, "DCGAN base filters.")
flags.DEFINE_integer("d_steps", 1, "Discriminator steps per generator step.")
# Two time-scale update rule (Heusel et al., 2017): a faster discriminator.
flags.DEFINE_float("d_learning_rate", 4e-4, "Adam learning rate of the discriminator.")
flags.DEFINE_float("g_learning_rate", 1e-4, "Adam learning rate of the generator.")
flags.DEFINE_string("strategy", "default", "auto, default, mirrored, multi_worker or tpu.")
flags.DEFINE_string("tpu", None, "TPU name or address.")
flags.DEFINE_enum("mixed_precision", None, ["mixed_bfloat16", "mixed_float16"], "Mixed precision policy.")
flags.DEFINE_bool("scale_batch_size", False, "Multiply batch size and learning rates by the replica count.")
flags.DEFINE_enum(
    "jit_compile",
    "auto",
    ["auto", "true", "false"],
    "XLA-compile the train step (one device only); auto: on a single GPU, off on CPU "
    "(where it is slower for these convolutions).",
)
flags.DEFINE_integer("steps_per_execution", 1, "Train steps per tf.function call.")
flags.DEFINE_string("model_dir", "runs/train_gan", "Output and checkpoints; a rerun resumes from them.")
flags.DEFINE_integer("labels_per_class", 5, "Labels per class for the SVM probe.")
flags.DEFINE_integer("probe_draws", 5, "Label draws the SVM probe is averaged over.")
flags.DEFINE_integer("grid_size", 2, "Max-pooled grid of the probe's features.")
flags.DEFINE_float("svm_C", 0.1, "C of the SVM probe.")
flags.DEFINE_integer("num_eval_samples", 1000, "Generated images per Fréchet distance.")
flags.DEFINE_integer("classifier_epochs", 20, "Epochs of the feature classifier.")
flags.DEFINE_integer("svm_steps", 0, "Full-batch Adam steps after the SVM probe's solved optimum.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("verbose", 2, "Keras verbosity.")


def to_tanh_range(image, *label):
    return (image * 2.0 - 1.0, *label) if label else image * 2.0 - 1.0


def probe(discriminator, data, strategy):
    """Test accuracies of linear SVMs on pooled features, one per label draw."""
    images = images_array(data.train.map(to_tanh_range))
    with strategy.scope():
        pooled = discriminator.pooled_encoder(FLAGS.grid_size)
    features = pooled.predict(images, batch_size=256, verbose=0)  # unlabelled images
    with strategy.scope():
        encoder = keras.Sequential(
            [
                pooled,
                keras.layers.Normalization(
                    mean=features.mean(0), variance=features.var(0) + 1e-6
                ),
            ]
        )
    n = FLAGS.labels_per_class * data.num_classes
    test = data.test.map(to_tanh_range).batch(256)
    accuracies = []
    for draw in range(FLAGS.probe_draws):
        seed = FLAGS.seed + draw
        labelled = data_lib.labeled_subset(data.train, FLAGS.labels_per_class, seed=seed)
        train = data_lib.batch(
            labelled.map(to_tanh_range), min(n, 256), shuffle_seed=seed, repeat=True
        )
        with strategy.scope():
            # A linear L2-SVM (squared hinge), as in the DCGAN paper's protocol.
            svm = keras_pt.SVMClassifier(
                encoder, data.num_classes, C=FLAGS.svm_C, hinge="one_vs_rest", squared=True
            )
            svm.compile(optimizer=keras.optimizers.Adam(1e-2))
            # The probe's objective, solved on the labelled examples' features.
            svm.adapt(labelled.map(to_tanh_range))
        if FLAGS.svm_steps:
            svm.fit(train, epochs=1, steps_per_epoch=FLAGS.svm_steps, verbose=0)
        accuracies.append(svm.evaluate(test, verbose=0, return_dict=True)["accuracy"])
    return np.asarray(accuracies)


def raw_pixel_baselines(data):
    """LinearSVC and logistic regression on the raw pixels, the probe's label draws."""
    draws = []
    for draw in range(FLAGS.probe_draws):
        labelled = data_lib.labeled_subset(data.train, FLAGS.labels_per_class, seed=FLAGS.seed + draw)
        pairs = list(labelled.as_numpy_iterator())
        draws.append((np.stack([x for x, _ in pairs]), np.asarray([y for _, y in pairs])))
    test = list(data.test.as_numpy_iterator())
    test_x, test_y = np.stack([x for x, _ in test]), np.asarray([y for _, y in test])
    return baselines.raw_input_baselines(draws, test_x, test_y)


def mean_std(values):
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def run():
    """Trains, scores and probes with the flags' values; returns the figures."""
    keras.utils.set_random_seed(FLAGS.seed)
    strategy = keras_pt.get_strategy(FLAGS.strategy, tpu=FLAGS.tpu)
    data = data_lib.load_images(
        FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        image_size=None if FLAGS.image_size is None else [int(s) for s in FLAGS.image_size],
        seed=FLAGS.seed,
        download=FLAGS.download,
    )
    image_shape = list(data.image_shape)
    os.makedirs(FLAGS.model_dir, exist_ok=True)
    start = time.time()

    # Feature classifier for the Fréchet distance (images in [0, 1]).
    classifier, accuracy = train_feature_classifier(
        data,
        epochs=FLAGS.classifier_epochs,
        save_path=os.path.join(FLAGS.model_dir, "feature_classifier.keras"),
        seed=FLAGS.seed,
    )
    print(f"feature classifier test accuracy: {accuracy:.4f}")
    evaluator = GeneratorEvaluator(
        classifier,
        images_array(data.train),
        FLAGS.latent_dim,
        num_samples=FLAGS.num_eval_samples,
        seed=FLAGS.seed,
    )

    jit_compile = {"auto": "auto", "true": True, "false": False}[FLAGS.jit_compile]

    def build():  # in the strategy's scope, after the seed is set
        gan = keras_pt.GAN(
            keras_pt.Generator(image_shape, FLAGS.latent_dim, base_filters=FLAGS.base_filters),
            keras_pt.Discriminator(image_shape, base_filters=FLAGS.base_filters),
            loss=FLAGS.loss,
            d_steps=FLAGS.d_steps,
            seed=FLAGS.seed,
        )
        gan.compile(
            d_optimizer=keras.optimizers.Adam(FLAGS.d_learning_rate, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(FLAGS.g_learning_rate, beta_1=0.5),
            jit_compile=jit_compile if strategy.num_replicas_in_sync == 1 else False,
            steps_per_execution=FLAGS.steps_per_execution,
        )
        return gan

    # The same seed builds the same initial weights that training starts from.
    keras.utils.set_random_seed(FLAGS.seed)
    with strategy.scope():
        initial = build()
    untrained = evaluator(initial.generator)["frechet_distance"]
    print(f"epoch 0 (untrained): frechet_distance={untrained:.3f}")

    images = data.pretraining_images().map(to_tanh_range)

    def dataset_fn(epoch, batch_size, seed):  # the same (epoch, seed), the same batches
        return data_lib.epoch_batches(images, batch_size, seed, epoch)

    log_dir = os.path.join(FLAGS.model_dir, "logs")
    fd_callback = FrechetDistance(evaluator)
    result = training.train(
        build,
        dataset_fn,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        strategy=strategy,
        scale_batch_size=FLAGS.scale_batch_size,
        scale_learning_rate=FLAGS.scale_batch_size,
        mixed_precision=FLAGS.mixed_precision,
        model_dir=FLAGS.model_dir,
        callbacks=[
            fd_callback,
            SampleGrid(
                os.path.join(FLAGS.model_dir, "samples"),
                FLAGS.latent_dim,
                log_dir=log_dir,
                seed=FLAGS.seed,
            ),
        ]
        # Scalars to TensorBoard where the tensorboard package is installed.
        + ([keras.callbacks.TensorBoard(log_dir)] if find_spec("tensorboard") else []),
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
    )
    gan = result.model
    gan.save(os.path.join(FLAGS.model_dir, "gan.keras"))
    gan.generator.export_saved_model(os.path.join(FLAGS.model_dir, "generator_savedmodel"))
    train_seconds = time.time() - start

    # Linear SVM on the discriminator's features vs. the same discriminator
    # at its initial weights.
    trained_accuracies = probe(gan.discriminator, data, strategy)
    untrained_accuracies = probe(initial.discriminator, data, strategy)
    distances = [untrained] + [s["frechet_distance"] for _, s in fd_callback.history]
    print("frechet_distance per epoch:", " ".join(f"{d:.2f}" for d in distances))
    print(
        f"SVM on pooled discriminator features ({FLAGS.labels_per_class} labels/class, "
        f"{FLAGS.probe_draws} draws, mean ± std): trained {mean_std(trained_accuracies)} "
        f"vs untrained {mean_std(untrained_accuracies)}; paired difference "
        f"{mean_std(trained_accuracies - untrained_accuracies)}"
    )
    raw = raw_pixel_baselines(data)
    print(
        f"raw pixels, same draws: linear SVM (LinearSVC) {raw['linear_svm']}, "
        f"logistic regression {raw['logistic_regression']}"
    )
    print("  per draw, trained:  ", " ".join(f"{a:.4f}" for a in trained_accuracies))
    print("  per draw, untrained:", " ".join(f"{a:.4f}" for a in untrained_accuracies))
    print(f"GAN training and scoring took {train_seconds:.0f} s")
    return {
        "frechet_distances": distances,
        "svm_accuracy": float(np.mean(trained_accuracies)),
        "untrained_svm_accuracy": float(np.mean(untrained_accuracies)),
        "svm_accuracies": trained_accuracies.tolist(),
        "untrained_svm_accuracies": untrained_accuracies.tolist(),
        "raw_linear_svm_accuracies": raw["linear_svm"].values,
        "raw_logistic_regression_accuracies": raw["logistic_regression"].values,
    }


def main(argv):
    del argv
    run()  # the exit status stays 0


if __name__ == "__main__":
    app.run(main)
