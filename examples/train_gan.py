"""Trains a GAN, scores it with the Fréchet distance, then probes its
discriminator features with a linear SVM.

    python examples/train_gan.py                       # embedded 8x8 digits
    python examples/train_gan.py --loss=wasserstein --d_steps=5
    python examples/train_gan.py --dataset=mnist --data_dir=gs://...  # TFDS

Writes under --model_dir: sample grids (samples/samples_epoch_XXX.png), the
feature classifier (feature_classifier.keras), TensorBoard logs (logs/), the
GAN (gan.keras) and the generator as a SavedModel (generator_savedmodel/).
"""

import os
import time
from importlib.util import find_spec

from absl import app, flags

import keras
import tensorflow as tf

import keras_pt
from keras_pt import data as data_lib
from keras_pt.callbacks import FrechetDistance, SampleGrid
from keras_pt.evaluation import GeneratorEvaluator, images_array, train_feature_classifier

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "digits", "TFDS image data set (digits is embedded).")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_enum("loss", "non_saturating", ["non_saturating", "hinge", "wasserstein"], "GAN loss.")
flags.DEFINE_integer("epochs", 30, "Training epochs.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("latent_dim", 64, "Latent vector size.")
flags.DEFINE_integer("base_filters", 64, "DCGAN base filters.")
flags.DEFINE_integer("d_steps", 1, "Discriminator steps per generator step.")
flags.DEFINE_float("learning_rate", 2e-4, "Adam learning rate of both optimizers.")
flags.DEFINE_string("strategy", "default", "auto, default, mirrored, multi_worker or tpu.")
flags.DEFINE_string("tpu", None, "TPU name or address.")
flags.DEFINE_bool("jit_compile", True, "XLA-compile the train step (one device only).")
flags.DEFINE_string("model_dir", "/tmp/keras_pt_gan", "Output folder.")
flags.DEFINE_integer("labels_per_class", 10, "Labels per class for the SVM probe.")
flags.DEFINE_integer("num_eval_samples", 1000, "Generated images per Fréchet distance.")
flags.DEFINE_integer("classifier_epochs", 20, "Epochs of the feature classifier.")
flags.DEFINE_integer("svm_epochs", 100, "Epochs of the SVM probe.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("verbose", 2, "Keras verbosity.")


def to_tanh_range(image, *label):
    return (image * 2.0 - 1.0, *label) if label else image * 2.0 - 1.0


def probe(encoder, data, num_classes, strategy):
    """Test accuracy of a linear SVM on frozen `encoder` features."""
    train = data_lib.labeled_subset(data.train, FLAGS.labels_per_class, seed=FLAGS.seed)
    n = FLAGS.labels_per_class * num_classes
    train = data_lib.batch(train.map(to_tanh_range), min(32, n), shuffle_seed=FLAGS.seed)
    test = data.test.map(to_tanh_range).batch(256)
    with strategy.scope():
        svm = keras_pt.SVMClassifier(encoder, num_classes, C=1.0)
        svm.compile(optimizer=keras.optimizers.Adam(1e-3))
    svm.fit(train, epochs=FLAGS.svm_epochs, verbose=0)
    return svm.evaluate(test, verbose=0, return_dict=True)["accuracy"]


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    strategy = keras_pt.get_strategy(FLAGS.strategy, tpu=FLAGS.tpu)
    data = data_lib.load_image_dataset(FLAGS.dataset, data_dir=FLAGS.data_dir)
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

    with strategy.scope():
        gan = keras_pt.GAN(
            keras_pt.Generator(image_shape, FLAGS.latent_dim, base_filters=FLAGS.base_filters),
            keras_pt.Discriminator(image_shape, base_filters=FLAGS.base_filters),
            loss=FLAGS.loss,
            d_steps=FLAGS.d_steps,
            seed=FLAGS.seed,
        )
        gan.compile(
            d_optimizer=keras.optimizers.Adam(FLAGS.learning_rate, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(FLAGS.learning_rate, beta_1=0.5),
            jit_compile=FLAGS.jit_compile and strategy.num_replicas_in_sync == 1,
        )
    untrained = evaluator(gan.generator)["frechet_distance"]
    print(f"epoch 0 (untrained): frechet_distance={untrained:.3f}")

    train = data_lib.batch(
        data_lib.unlabeled(data.train).map(to_tanh_range), FLAGS.batch_size, shuffle_seed=FLAGS.seed
    )
    log_dir = os.path.join(FLAGS.model_dir, "logs")
    fd_callback = FrechetDistance(evaluator)
    gan.fit(
        train,
        epochs=FLAGS.epochs,
        verbose=FLAGS.verbose,
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
    )
    gan.save(os.path.join(FLAGS.model_dir, "gan.keras"))
    gan.generator.export_saved_model(os.path.join(FLAGS.model_dir, "generator_savedmodel"))
    train_seconds = time.time() - start

    # Linear SVM on discriminator features vs. an untrained discriminator.
    fresh = keras_pt.Discriminator(image_shape, base_filters=FLAGS.base_filters)
    trained_accuracy = probe(gan.encoder, data, data.num_classes, strategy)
    untrained_accuracy = probe(fresh.encoder, data, data.num_classes, strategy)
    distances = [untrained] + [s["frechet_distance"] for _, s in fd_callback.history]
    print("frechet_distance per epoch:", " ".join(f"{d:.2f}" for d in distances))
    print(
        f"SVM on discriminator features ({FLAGS.labels_per_class} labels/class): "
        f"trained {trained_accuracy:.4f} vs untrained {untrained_accuracy:.4f}"
    )
    print(f"GAN training and scoring took {train_seconds:.0f} s")
    return {
        "frechet_distances": distances,
        "svm_accuracy": trained_accuracy,
        "untrained_svm_accuracy": untrained_accuracy,
    }


if __name__ == "__main__":
    app.run(main)
