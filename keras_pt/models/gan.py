"""GAN: a generator and a discriminator trained adversarially under `fit`."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import gan_losses
from keras_pt.kernels import random
from keras_pt.kernels.gradient_penalty import gradient_penalty
from keras_pt.models.seed_state import SeedStateMixin
from keras_pt.models.input_checks import InputCheckMixin


def _per_example(model):
    """Whether `model` scores each example on its own (no batch statistics)."""
    return not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in model._flatten_layers(include_self=True, recursive=True)
    )


def _default_optimizer():
    # The DCGAN setting: Adam(2e-4, beta_1=0.5).
    return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


@keras.saving.register_keras_serializable(package="keras_pt")
class GAN(SeedStateMixin, InputCheckMixin, keras.Model):
    """Generative adversarial network with its own two-phase `train_step`.

    `call(z)` (or `call((z, labels))` when conditional) returns generated
    images. `train_step` reads a batch of real images (or `(images, labels)`)
    and runs `d_steps` discriminator phases, each with fresh latent vectors,
    then one generator phase, each phase with its own optimizer. Latent
    vectors, fake labels and the WGAN-GP interpolation weights come from the
    model's `SeedGenerator` through `keras_pt.kernels.random`, so one device
    and N mirrored replicas train identically; gradients are taken of the
    per-replica mean loss scaled by `distribute.scale_loss`. The whole step
    compiles with `jit_compile=True`.

    With `reuse_fakes=True` (the default) the generator phase scores the
    fake batch of the last discriminator phase, as the PyTorch DCGAN
    example does: the generator's weights have not changed in between, so
    that batch is exactly what the generator would make again from the
    same latent vectors, and its forward pass, recorded on a gradient tape,
    runs once per step instead of twice. `reuse_fakes=False` draws fresh
    latent vectors for the generator phase and runs the generator again
    (the keras.io "Customizing fit" GAN). A discriminator without batch
    normalization (every `keras_pt.Discriminator`) scores the real and the
    fake batch in one pass over their concatenation, which gives the same
    logits as two passes; one with batch normalization gets two passes, so
    that each batch is normalised on its own statistics.

    Logs `d_loss` (the discriminator's objective, including the weighted
    gradient penalty), `g_loss`, `loss` (`d_loss + g_loss`, for callbacks
    that watch `loss`) and, for `"wasserstein"`, `gradient_penalty`.
    `encoder` is the discriminator's feature extractor: after `fit`, put an
    `SVMClassifier` or `MLPClassifier` on it.

    Args:
        generator: `keras_pt.Generator` (or any `keras.Model` from latent
            vectors to images).
        discriminator: `keras_pt.Discriminator` (or any `keras.Model` from
            images to logits `(batch, 1)`).
        latent_dim: int or None. Size of the latent vectors. Defaults to
            `generator.latent_dim`.
        loss: str. `"non_saturating"`, `"hinge"` or `"wasserstein"` (WGAN-GP).
            Defaults to `"non_saturating"`.
        gradient_penalty_weight: float. Weight of the WGAN-GP penalty; used
            with `loss="wasserstein"` only. Defaults to 10.0.
        d_steps: int. Discriminator phases per generator phase (5 is usual
            for WGAN-GP). Defaults to 1.
        seed: int or None. Seed of the model's `SeedGenerator`. Defaults to
            None (a random seed).
        reuse_fakes: bool. The generator phase reuses the last
            discriminator phase's fake batch (one generator forward pass
            per step). Defaults to True.

    Example:

    >>> gan = GAN(Generator([8, 8, 1], latent_dim=8, base_filters=8),
    ...           Discriminator([8, 8, 1], base_filters=8), seed=1)
    >>> gan.compile()
    >>> images = tf.random.uniform((32, 8, 8, 1)) * 2 - 1
    >>> history = gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8),
    ...                   verbose=0)
    >>> sorted(history.history)
    ['d_loss', 'g_loss', 'loss']
    >>> gan(tf.zeros((2, 8))).shape
    TensorShape([2, 8, 8, 1])

    References:
        Goodfellow et al., "Generative Adversarial Nets", 2014.
        Gulrajani et al., "Improved Training of Wasserstein GANs", 2017.
    """

    TAKES = "images as a float array or tensor of shape (batch, height, width, channels)"

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim=None,
        loss="non_saturating",
        gradient_penalty_weight=10.0,
        d_steps=1,
        seed=None,
        reuse_fakes=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        gan_losses.check_loss_name(loss)
        if latent_dim is None:
            latent_dim = getattr(generator, "latent_dim", None)
            if latent_dim is None:
                raise ValueError("pass latent_dim: the generator has no latent_dim attribute.")
        if int(latent_dim) <= 0:
            raise ValueError(f"latent_dim must be a positive int; got {latent_dim}.")
        if getattr(generator, "latent_dim", latent_dim) != int(latent_dim):
            raise ValueError(
                f"latent_dim={latent_dim} differs from the generator's latent_dim "
                f"{generator.latent_dim}; leave latent_dim=None to take the "
                "generator's."
            )
        if int(d_steps) < 1:
            raise ValueError(f"d_steps must be an int >= 1; got {d_steps}.")
        if float(gradient_penalty_weight) < 0:
            raise ValueError(f"gradient_penalty_weight must be >= 0; got {gradient_penalty_weight}.")
        g_shape = getattr(generator, "image_shape", None)
        d_shape = getattr(discriminator, "image_shape", None)
        if g_shape is not None and d_shape is not None and list(g_shape) != list(d_shape):
            raise ValueError(
                f"the generator makes images of shape {g_shape} but the "
                f"discriminator reads {d_shape}; build both for the same image_shape."
            )
        g_classes = getattr(generator, "num_classes", None)
        d_classes = getattr(discriminator, "num_classes", None)
        if g_classes != d_classes:
            raise ValueError(
                f"generator num_classes={g_classes} and discriminator "
                f"num_classes={d_classes} must match (both None for an "
                "unconditional GAN)."
            )

        # === Layers ===
        self.generator = generator
        self.discriminator = discriminator
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

        # === Config ===
        self.latent_dim = int(latent_dim)
        self.loss_name = loss
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.d_steps = int(d_steps)
        self.seed = seed
        self.reuse_fakes = bool(reuse_fakes)
        self.num_classes = g_classes
        self.image_shape = list(d_shape) if d_shape is not None else None

        # === Trackers ===
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.gp_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.d_optimizer = None
        self.g_optimizer = None
        self._per_example_discriminator = _per_example(discriminator)
        self.build(None)

    @property
    def conditional(self):
        return self.num_classes is not None

    @property
    def encoder(self):
        """The discriminator's feature extractor, images -> (batch, features)."""
        return self.discriminator.encoder

    @property
    def metrics(self):
        trackers = [self.total_loss_tracker, self.d_loss_tracker, self.g_loss_tracker]
        if self.loss_name == "wasserstein":
            trackers.append(self.gp_tracker)
        return trackers

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        jit_compile="auto",
        steps_per_execution=1,
        run_eagerly=False,
    ):
        """Sets the two optimizers.

        Args:
            d_optimizer: `keras.optimizers.Optimizer`, name or config. The
                discriminator's optimizer. Defaults to `Adam(2e-4,
                beta_1=0.5)`.
            g_optimizer: the generator's optimizer. Defaults likewise.
            jit_compile: bool or `"auto"`. Compile the whole step (both
                phases) with XLA. `"auto"` is Keras's choice (off on CPU and
                under `tf.distribute`). Defaults to `"auto"`.
            steps_per_execution: int. Steps per `tf.function` call; 8 to 32
                cut the per-step dispatch cost of small models. One device
                only: under MirroredStrategy Keras 3.15 fails with more than
                1 for any model ("You must feed a value for placeholder",
                keras-team/keras#19246). Defaults to 1.
            run_eagerly: bool. Defaults to False.
        """
        super().compile(
            optimizer=None,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            run_eagerly=run_eagerly,
        )
        self.d_optimizer = keras.optimizers.get(d_optimizer or _default_optimizer())
        self.g_optimizer = keras.optimizers.get(g_optimizer or _default_optimizer())
        if self.d_optimizer is self.g_optimizer:
            raise ValueError("d_optimizer and g_optimizer must be two optimizer objects; pass a fresh one for each.")
        if self.dtype_policy.name == "mixed_float16":
            # Loss scaling for float16, as Keras's own compile does for one
            # optimizer: each phase scales its loss and skips the update of a
            # non-finite gradient, with a dynamic scale per optimizer.
            self.d_optimizer, self.g_optimizer = (
                optimizer
                if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(optimizer)
                for optimizer in (self.d_optimizer, self.g_optimizer)
            )
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self._gan_compile_config = {
            "jit_compile": self.jit_compile,
            "steps_per_execution": steps_per_execution,
            "run_eagerly": run_eagerly,
        }

    def get_compile_config(self):
        if not self.compiled or self.d_optimizer is None:
            return {}
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            **self._gan_compile_config,
        }

    def compile_from_config(self, config):
        config = dict(config)
        config["d_optimizer"] = keras.optimizers.deserialize(config["d_optimizer"])
        config["g_optimizer"] = keras.optimizers.deserialize(config["g_optimizer"])
        self.compile(**config)

    # === Phases ===

    def _unpack(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(images, (list, tuple)):
            images, labels = images[0], images[1] if len(images) > 1 else labels
        if self.image_shape is not None and list(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"GAN expects real data of shape (batch, "
                f"{', '.join(map(str, self.image_shape))}); got {tuple(images.shape)}. "
                "Resize or reshape the data set, or build the generator and "
                "discriminator for this shape."
            )
        if self.conditional and labels is None:
            raise ValueError("a conditional GAN (num_classes set) trains on (images, labels) batches.")
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32) if self.conditional else None
        return tf.cast(images, self.compute_dtype), labels

    def _batch_size(self, images):
        size = images.shape[0]
        return size if size is not None else tf.shape(images)[0]

    def _sample_inputs(self, batch_size):
        """Latent vectors (and random labels) for this replica's batch."""
        if not self.conditional:
            (latent_seed,) = random.draw_seeds(self.seed_generator, ("latent",))
            return random.normal(latent_seed, (batch_size, self.latent_dim)), None
        latent_seed, label_seed = random.draw_seeds(self.seed_generator, ("latent", "fake_labels"))
        z = random.normal(latent_seed, (batch_size, self.latent_dim))
        labels = random.uniform_int(label_seed, (batch_size,), self.num_classes)
        return z, labels

    def _generator_inputs(self, z, labels):
        return z if labels is None else (z, labels)

    def _discriminator_inputs(self, images, labels):
        return images if labels is None else (images, labels)

    def _generate(self, batch_size):
        """A fake batch from fresh latent vectors, its pass on a gradient tape.

        Returns `(tape, fake, fake_labels)`; `tape` can be re-entered to
        score `fake` and then differentiate with respect to the generator.
        """
        z, fake_labels = self._sample_inputs(batch_size)
        tape = tf.GradientTape()
        with tape:
            fake = self.generator(self._generator_inputs(z, fake_labels), training=True)
        return tape, fake, fake_labels

    def train_discriminator(self, images, labels=None, generated=None):
        """One discriminator phase on a real batch; returns (d_loss, penalty).

        `generated`: `(tape, fake, fake_labels)` from `_generate`, or None to
        generate a fake batch here.
        """
        batch_size = self._batch_size(images)
        _, fake, fake_labels = generated or self._generate(batch_size)
        fake = tf.stop_gradient(fake)  # (b, *image_shape)
        weights = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            real_logits, fake_logits = self._score_real_and_fake(images, labels, fake, fake_labels)  # (b, 1) each
            d_loss = gan_losses.discriminator_loss(real_logits, fake_logits, self.loss_name)
            penalty = tf.zeros([], tf.float32)
            if self.loss_name == "wasserstein" and self.gradient_penalty_weight > 0:
                (alpha_seed,) = random.draw_seeds(self.seed_generator, ("interpolation",))
                alpha = random.uniform(alpha_seed, (batch_size,))
                penalty = gradient_penalty(
                    self._critic(labels, fake_labels, alpha),
                    images,
                    fake,
                    alpha,
                )
                d_loss = d_loss + self.gradient_penalty_weight * penalty
            # Scale inside the tape, so that the division is differentiated;
            # the float16 loss scale (identity otherwise) likewise.
            scaled_loss = self.d_optimizer.scale_loss(distribute.scale_loss(d_loss))
        grads = distribute.dense_gradients(tape.gradient(scaled_loss, weights))
        self.d_optimizer.apply(grads, weights)
        return d_loss, penalty

    def _score_real_and_fake(self, images, labels, fake, fake_labels):
        """Discriminator logits of the real and the fake batch, `(b, 1)` each."""
        if not self._per_example_discriminator:
            # Batch statistics: each batch is normalised on its own.
            real_logits = self.discriminator(self._discriminator_inputs(images, labels), training=True)
            fake_logits = self.discriminator(self._discriminator_inputs(fake, fake_labels), training=True)
            return real_logits, fake_logits
        # Every score depends on its own example only, so one pass over the
        # concatenated batch gives the same logits as two passes, with half
        # the kernel launches and larger, more efficient convolutions.
        both = tf.concat([images, fake], axis=0)  # (2b, *image_shape)
        both_labels = None if labels is None else tf.concat([labels, fake_labels], axis=0)
        logits = self.discriminator(self._discriminator_inputs(both, both_labels), training=True)  # (2b, 1)
        real_logits, fake_logits = tf.split(logits, 2, axis=0)
        return real_logits, fake_logits

    def _critic(self, labels, fake_labels, alpha):
        if labels is None:
            return lambda x: self.discriminator(x, training=True)
        # Interpolated images carry the real label where alpha >= 0.5.
        mixed = tf.where(alpha >= 0.5, tf.reshape(labels, [-1]), fake_labels)
        return lambda x: self.discriminator((x, mixed), training=True)

    def train_generator(self, batch_size, generated=None):
        """One generator phase; returns g_loss.

        `generated`: `(tape, fake, fake_labels)` from `_generate` (the
        discriminator phase's fake batch, whose generator pass the tape
        recorded), or None for `batch_size` fresh latent vectors.
        """
        tape, fake, fake_labels = generated or self._generate(batch_size)
        weights = self.generator.trainable_variables
        with tape:
            fake_logits = self.discriminator(self._discriminator_inputs(fake, fake_labels), training=True)  # (b, 1)
            g_loss = gan_losses.generator_loss(fake_logits, self.loss_name)
            scaled_loss = self.g_optimizer.scale_loss(distribute.scale_loss(g_loss))
        grads = distribute.dense_gradients(tape.gradient(scaled_loss, weights))
        self.g_optimizer.apply(grads, weights)
        return g_loss

    def train_step(self, data):
        if self.d_optimizer is None:
            raise ValueError("call GAN.compile() before fit.")
        images, labels = self._unpack(data)
        # With several replicas each phase starts after the previous update,
        # so that every replica issues its cross-replica reductions in the
        # same order. One device has none: there the work of a phase that
        # does not read the previous update (the next latent vectors and
        # generator pass) may overlap it.
        ordered = distribute.num_replicas() > 1
        batch_size = self._batch_size(images)
        barrier, generated = [], None
        for step in range(self.d_steps):
            # Train the discriminator
            with tf.control_dependencies(barrier):
                if self.reuse_fakes and step == self.d_steps - 1:
                    generated = self._generate(batch_size)
                d_loss, penalty = self.train_discriminator(images, labels, generated)
            if ordered:
                barrier = [tf.convert_to_tensor(self.d_optimizer.iterations), d_loss]
            self.d_loss_tracker.update_state(d_loss)
            self.gp_tracker.update_state(penalty)
        # Train the generator (on the last fake batch with reuse_fakes)
        with tf.control_dependencies(barrier):
            g_loss = self.train_generator(batch_size, generated)
        self.g_loss_tracker.update_state(g_loss)
        self.total_loss_tracker.update_state(d_loss + g_loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels = self._unpack(data)
        z, fake_labels = self._sample_inputs(self._batch_size(images))
        fake = self.generator(self._generator_inputs(z, fake_labels), training=False)
        real_logits = self.discriminator(self._discriminator_inputs(images, labels))
        fake_logits = self.discriminator(self._discriminator_inputs(fake, fake_labels))
        d_loss = gan_losses.discriminator_loss(real_logits, fake_logits, self.loss_name)
        g_loss = gan_losses.generator_loss(fake_logits, self.loss_name)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.total_loss_tracker.update_state(d_loss + g_loss)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "generator": keras.layers.serialize(self.generator),
                "discriminator": keras.layers.serialize(self.discriminator),
                "latent_dim": self.latent_dim,
                "loss": self.loss_name,
                "gradient_penalty_weight": self.gradient_penalty_weight,
                "d_steps": self.d_steps,
                "seed": self.seed,
                "reuse_fakes": self.reuse_fakes,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.layers.deserialize(config["generator"])
        config["discriminator"] = keras.layers.deserialize(config["discriminator"])
        return cls(**config)
