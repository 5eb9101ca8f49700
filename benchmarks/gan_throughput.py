"""GAN training throughput: keras_pt.GAN against a plain keras.io-style GAN.

Both train the same DCGAN generator/discriminator (the same classes, so the
same layers and weights shapes) on the same batches, with one discriminator
and one generator update per step and the logistic (non-saturating) losses.
The reference is the straightforward `train_step` of the keras.io
"Customizing what happens in fit()" GAN (concatenated real+fake batch,
`BinaryCrossentropy`, `apply_gradients`), compiled the default way (no XLA,
`steps_per_execution=1`). It passes `training=True` like keras.io's WGAN-GP
example: the generator has batch norm, and without the flag it would
normalise with moving statistics that are never updated.

keras_pt.GAN runs in its recommended configuration, `compile(jit_compile=
"auto", steps_per_execution=N)` (XLA is off on CPU, where it is slower for
these convolutions, and on for a single GPU) with its default
`reuse_fakes=True`: the generator phase scores the fake batch that the
discriminator phase generated (the PyTorch DCGAN example's step), so the
generator runs forward once per step where the reference runs it twice.
The script also times keras_pt with `steps_per_execution=1`, with XLA, and
with `reuse_fakes=False` (the reference's algorithm, fresh latent vectors
for the generator phase), and the reference with the same
`steps_per_execution` as keras_pt: `steps_per_execution` is a plain Keras
option that any model can use.

It also times the floor: the reference step's convolutions and matmuls
alone (two generator passes; no batch norm, activations, losses, optimizers
or metrics), with the same shapes and the same TF kernels. No
implementation of the reference's float32 maths with these kernels can beat
it, so `reference / floor` bounds the speed-up attainable without doing
less work (as `reuse_fakes` does).

Rounds alternate between the models (the machine may be shared); the script
prints each model's median images/s (wall clock) and median process CPU
milliseconds per step (steadier when other processes compete for the cores:
there, wall-clock rounds take one or two times their CPU time depending on
the scheduler), and the ratios. The headline ratio is keras_pt's recommended configuration
against the reference written the straightforward way.

    python benchmarks/gan_throughput.py
    python benchmarks/gan_throughput.py --image_shape=28,28,1 --base_filters=32
    python benchmarks/gan_throughput.py --architecture=dense --image_shape=64
"""

import time

from absl import app, flags

import keras
import numpy as np
import tensorflow as tf

import keras_pt

FLAGS = flags.FLAGS


def define_flags():
    """The command-line flags (defined only when run as a script, so that
    other benchmarks can import this module)."""
    flags.DEFINE_list("image_shape", ["8", "8", "1"], "Image shape (digits by default).")
    flags.DEFINE_integer("batch_size", 64, "Batch size.")
    flags.DEFINE_integer("latent_dim", 64, "Latent size.")
    flags.DEFINE_integer("base_filters", 64, "DCGAN base filters.")
    flags.DEFINE_enum(
        "architecture",
        "dcgan",
        ["dcgan", "dense"],
        "dcgan: the convolutional pair; dense: the classic MLP pair (latent -> 128 -> 256).",
    )
    flags.DEFINE_integer("steps_per_execution", 10, "keras_pt's steps per tf.function call.")
    flags.DEFINE_integer("rounds", 15, "Timed rounds per model (alternating).")
    flags.DEFINE_integer("steps_per_round", 20, "Train steps per timed round.")


OURS = "keras_pt.GAN"
REFERENCE = "reference (keras.io)"


class ReferenceGAN(keras.Model):
    """The keras.io GAN train_step, written the straightforward way."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn, steps_per_execution=1):
        super().compile(jit_compile=False, steps_per_execution=steps_per_execution)
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
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(random_latent_vectors, training=True)
        combined_images = tf.concat([generated_images, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images, training=True)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors, training=True), training=True)
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


_KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.Reshape,
    keras.layers.Flatten,
)


class Floor:
    """The GAN step's convolutions and matmuls only, as one tf.function.

    The generator's and discriminator's dense and convolution layers (with
    their biases; the output layer's tanh stays) in the order of the step:
    generator forward, discriminator forward and backward on the real+fake
    batch, then generator and discriminator forward and backward on fresh
    latent vectors. Gradients are computed, not applied.
    """

    def __init__(self, generator, discriminator, latent_dim):
        def linear(layers):
            layers = [layer for layer in layers if isinstance(layer, _KERNEL_LAYERS)]

            def apply(x):
                for layer in layers:
                    x = layer(x)
                return x

            return apply

        g_net = linear(generator.network.layers)
        d_net = linear(discriminator.encoder.layers + [discriminator.logit])
        g_weights = generator.trainable_weights
        d_weights = discriminator.trainable_weights

        @tf.function
        def step(real):
            batch_size = real.shape[0]
            fake = g_net(tf.random.normal((batch_size, latent_dim)))
            with tf.GradientTape() as tape:
                d_loss = tf.reduce_mean(d_net(tf.concat([fake, real], 0)))
            d_grads = tape.gradient(d_loss, d_weights)
            with tf.GradientTape() as tape:
                g_loss = tf.reduce_mean(d_net(g_net(tf.random.normal((batch_size, latent_dim)))))
            g_grads = tape.gradient(g_loss, g_weights)
            return [g for g in d_grads + g_grads if g is not None]

        self.step = step

    def run(self, iterator, steps):
        for _ in range(steps):
            outputs = self.step(next(iterator))
        outputs[0].numpy()


def _pair(shape):
    kwargs = {"architecture": FLAGS.architecture, "base_filters": FLAGS.base_filters}
    return (
        keras_pt.Generator(shape, FLAGS.latent_dim, **kwargs),
        keras_pt.Discriminator(shape, **kwargs),
    )


def _adam():
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


def _ours(shape, gan_args=None, **compile_args):
    gan_args = gan_args or {}
    generator, discriminator = _pair(shape)
    model = keras_pt.GAN(generator, discriminator, seed=0, **gan_args)
    model.compile(d_optimizer=_adam(), g_optimizer=_adam(), **compile_args)
    return model


def _reference(shape, steps_per_execution=1):
    generator, discriminator = _pair(shape)
    model = ReferenceGAN(discriminator, generator, FLAGS.latent_dim)
    model.compile(
        d_optimizer=_adam(),
        g_optimizer=_adam(),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


def main(argv):
    del argv
    shape = [int(d) for d in FLAGS.image_shape]
    batch_size, spe = FLAGS.batch_size, FLAGS.steps_per_execution
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(batch_size * 8, *shape)).astype("float32")
    dataset = (
        tf.data.Dataset.from_tensor_slices(images)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )

    models = {
        OURS: _ours(shape, steps_per_execution=spe),
        f"{OURS} spe=1": _ours(shape),
        f"{OURS} XLA": _ours(shape, jit_compile=True, steps_per_execution=spe),
        f"{OURS} reuse_fakes=False": _ours(shape, {"reuse_fakes": False}, steps_per_execution=spe),
        REFERENCE: _reference(shape),
        f"{REFERENCE} spe={spe}": _reference(shape, steps_per_execution=spe),
    }
    floor = Floor(*_pair(shape), FLAGS.latent_dim)
    iterator = iter(dataset)
    runs = {
        name: (lambda m=model: m.fit(dataset, steps_per_epoch=FLAGS.steps_per_round, epochs=1, verbose=0))
        for name, model in models.items()
    }
    runs["floor (kernels only)"] = lambda: floor.run(iterator, FLAGS.steps_per_round)

    for run in runs.values():  # trace and compile outside the timing
        run()
    rates = {name: [] for name in runs}
    cpu_ms = {name: [] for name in runs}
    for _ in range(FLAGS.rounds):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            cpu_ms[name].append((time.process_time() - cpu) * 1000 / FLAGS.steps_per_round)
            rates[name].append(FLAGS.steps_per_round * batch_size / (time.perf_counter() - wall))
    rate = {name: float(np.median(r)) for name, r in rates.items()}
    cpu = {name: float(np.median(c)) for name, c in cpu_ms.items()}
    print(
        f"{FLAGS.architecture} image_shape={shape} batch_size={batch_size} "
        f"base_filters={FLAGS.base_filters} "
        f"steps_per_execution={spe} rounds={FLAGS.rounds}x{FLAGS.steps_per_round} steps"
    )
    for name in runs:
        print(f"{name:>32}: {rate[name]:7.0f} images/s  {cpu[name]:6.1f} CPU ms/step (medians)")

    def ratios(a, b):
        return f"{rate[a] / rate[b]:.2f}x wall, {cpu[b] / cpu[a]:.2f}x CPU"

    print(f"keras_pt spe=1 vs reference:              {ratios(f'{OURS} spe=1', REFERENCE)}")
    print(f"keras_pt XLA vs reference:                {ratios(f'{OURS} XLA', REFERENCE)}")
    print(f"keras_pt reuse_fakes=False vs reference:  {ratios(f'{OURS} reuse_fakes=False', REFERENCE)}")
    print(f"keras_pt vs reference spe={spe}:{' ' * (15 - len(str(spe)))}{ratios(OURS, f'{REFERENCE} spe={spe}')}")
    print(f"bound: floor vs reference:                {ratios('floor (kernels only)', REFERENCE)}")
    headline = rate[OURS] / rate[REFERENCE]
    print(f"speedup (keras_pt recommended vs reference): {ratios(OURS, REFERENCE)} (target >= 1.3x)")
    return headline


if __name__ == "__main__":
    define_flags()
    app.run(main)
