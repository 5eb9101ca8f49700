"""GAN training throughput: keras_pt.GAN against a plain keras.io-style GAN.

Both train the same DCGAN generator/discriminator architecture on the same
batches. The reference is the straightforward `train_step` of the keras.io
"Customizing what happens in fit()" GAN example (concatenated real+fake batch,
binary cross-entropy, `apply_gradients`), compiled without XLA. keras_pt.GAN
runs both phases in one XLA-compiled step. Rounds alternate between the two
models (the machine may be shared); the script prints the median images/s of
each and their ratio.

    python benchmarks/gan_throughput.py
    python benchmarks/gan_throughput.py --image_shape=28,28,1 --base_filters=32
"""

import time

from absl import app, flags

import keras
import numpy as np
import tensorflow as tf

import keras_pt

FLAGS = flags.FLAGS
flags.DEFINE_list("image_shape", ["8", "8", "1"], "Image shape (digits by default).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("latent_dim", 64, "Latent size.")
flags.DEFINE_integer("base_filters", 64, "DCGAN base filters.")
flags.DEFINE_integer("rounds", 15, "Timed rounds per model (alternating).")
flags.DEFINE_integer("steps_per_round", 20, "Train steps per timed round.")


class ReferenceGAN(keras.Model):
    """The keras.io GAN train_step, written the straightforward way."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile(jit_compile=False)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        generated_images = self.generator(random_latent_vectors)
        combined_images = tf.concat([generated_images, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def _pair(shape):
    return (
        keras_pt.Generator(shape, FLAGS.latent_dim, base_filters=FLAGS.base_filters),
        keras_pt.Discriminator(shape, base_filters=FLAGS.base_filters),
    )


def _adam():
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


def main(argv):
    del argv
    shape = [int(d) for d in FLAGS.image_shape]
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(FLAGS.batch_size * 8, *shape)).astype("float32")
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .repeat()
        .batch(FLAGS.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )

    generator, discriminator = _pair(shape)
    ours = keras_pt.GAN(generator, discriminator, seed=0)
    ours.compile(d_optimizer=_adam(), g_optimizer=_adam(), jit_compile=True)

    generator, discriminator = _pair(shape)
    reference = ReferenceGAN(discriminator, generator, FLAGS.latent_dim)
    reference.compile(
        d_optimizer=_adam(),
        g_optimizer=_adam(),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )

    models = {"keras_pt.GAN (XLA)": ours, "reference (keras.io)": reference}
    for model in models.values():  # trace and compile outside the timing
        model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)
    rates = {name: [] for name in models}
    for _ in range(FLAGS.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(dataset, steps_per_epoch=FLAGS.steps_per_round, epochs=1, verbose=0)
            elapsed = time.perf_counter() - start
            rates[name].append(FLAGS.steps_per_round * FLAGS.batch_size / elapsed)
    medians = {name: float(np.median(r)) for name, r in rates.items()}
    print(
        f"image_shape={shape} batch_size={FLAGS.batch_size} base_filters="
        f"{FLAGS.base_filters} rounds={FLAGS.rounds}x{FLAGS.steps_per_round} steps"
    )
    for name, rate in medians.items():
        print(f"{name:>24}: {rate:9.1f} images/s (median)")
    ratio = medians["keras_pt.GAN (XLA)"] / medians["reference (keras.io)"]
    print(f"speedup: {ratio:.2f}x (target >= 1.3x)")
    return ratio


if __name__ == "__main__":
    app.run(main)
