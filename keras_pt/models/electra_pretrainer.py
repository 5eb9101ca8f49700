"""ElectraPretrainer: replaced-token detection pre-training of a MiniBERT."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import mlm_masking
from keras_pt.kernels import random as krandom
from keras_pt.kernels import transformer as kernels
from keras_pt.layers.masked_lm_head import MaskedLMHead
from keras_pt.layers.transformer_encoder_block import TransformerEncoderBlock
from keras_pt.models.mini_bert import MiniBERT, TextInputsMixin, pretraining_optimizer
from keras_pt.models.seed_state import SeedStateMixin
from keras_pt.models.text_model import global_count


def _check_arguments(discriminator, generator_num_layers, rtd_weight, temperature):
    if not isinstance(discriminator, MiniBERT):
        raise ValueError(f"discriminator must be a keras_pt.MiniBERT; got {type(discriminator).__name__}.")
    if int(generator_num_layers) < 1:
        raise ValueError(f"generator_num_layers must be a positive int; got {generator_num_layers}.")
    if float(rtd_weight) < 0 or float(temperature) <= 0:
        raise ValueError(f"rtd_weight must be >= 0 and temperature > 0; got {rtd_weight}, {temperature}.")


def _positive_count(weights):
    """The weights' sum over every replica, at least 1 (no gradient)."""
    return tf.maximum(global_count(weights), 1.0)


def _global_mean(values, weights):
    """The weighted mean of `values` over the global batch (every replica),
    without gradient (the logged objective)."""
    return global_count(tf.cast(values, tf.float32) * weights) / _positive_count(weights)


@keras.saving.register_keras_serializable(package="keras_pt")
class ElectraPretrainer(SeedStateMixin, TextInputsMixin, keras.Model):
    """ELECTRA pre-training: a small generator fills masked positions, the
    MiniBERT discriminator tells every token original or replaced.

    `train_step` masks the batch as masked-LM does (`discriminator`'s
    selection and 80/10/10 rates), runs the generator (the discriminator's
    own embedding layer, shared, then `generator_num_layers` transformer
    blocks of the same width and a tied masked-LM head) on the masked
    positions, samples a token at each from its softmax (Gumbel-max, seeded
    for the global batch), and puts the samples into the original sequence.
    The discriminator encodes that sequence and a per-token head scores
    "replaced" (a sampled token equal to the original counts as original).
    The loss is the generator's masked-LM loss (mean over the selected
    positions of the global batch) plus `rtd_weight` times the
    replaced-token loss (binary cross-entropy, mean over the real tokens of
    the global batch); both are divided by all-reduced global counts, so
    one device and N replicas take the same step. The samples are not
    differentiated through (the generator learns by masked-LM only).

    Every token of the discriminator's input gives it a gradient, not just
    the 15% masked-LM predicts, which is what makes ELECTRA efficient at
    small budgets. After pre-training `discriminator` (its `encoder`) is
    the model to fine-tune; `encoder` is a shortcut. The discriminator's
    masked-LM head and pooler are not trained.

    Args:
        discriminator: `keras_pt.MiniBERT`. The encoder to pre-train (its
            preprocessor, if any, lets the pre-trainer take raw strings).
        generator_num_layers: int. Transformer blocks of the generator.
            Defaults to 1.
        generator_intermediate_dim: int or None. Feed-forward size of the
            generator blocks. Defaults to half the discriminator's.
        rtd_weight: float. Weight of the replaced-token loss. Defaults to
            50.0 (ELECTRA's λ).
        temperature: float. Softmax temperature of the generator's samples.
            Defaults to 1.0.
        seed: int or None. Seed of the masks and samples. Defaults to None.

    Example:

    >>> bert = MiniBERT(vocabulary_size=60, num_layers=1, hidden_dim=16,
    ...                 num_heads=2, intermediate_dim=32, max_sequence_length=12)
    >>> electra = ElectraPretrainer(bert, seed=1)
    >>> electra.compile(optimizer="adam")
    >>> ids = np.random.randint(5, 60, size=(8, 12)).astype("int32")
    >>> ids[:, 0], ids[:, -1] = 2, 3
    >>> batch = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
    ...          "padding_mask": np.ones_like(ids)}
    >>> logs = electra.fit(batch, batch_size=4, verbose=0).history
    >>> sorted(logs)
    ['loss', 'mlm_accuracy', 'mlm_loss', 'rtd_accuracy', 'rtd_loss']

    References:
        Clark et al., "ELECTRA: Pre-training Text Encoders as Discriminators
        Rather Than Generators", ICLR 2020.
    """

    def __init__(
        self,
        discriminator,
        generator_num_layers=1,
        generator_intermediate_dim=None,
        rtd_weight=50.0,
        temperature=1.0,
        seed=None,
        **kwargs,
    ):
        _check_arguments(discriminator, generator_num_layers, rtd_weight, temperature)
        super().__init__(**kwargs)

        # === Config ===
        hidden_dim = discriminator.hidden_dim
        self.discriminator = discriminator
        self.generator_num_layers = int(generator_num_layers)
        self.generator_intermediate_dim = (
            max(1, discriminator.intermediate_dim // 2)
            if generator_intermediate_dim is None
            else int(generator_intermediate_dim)
        )
        self.rtd_weight = float(rtd_weight)
        self.temperature = float(temperature)
        self.seed = seed
        self.vocabulary_size = discriminator.vocabulary_size

        # === Layers ===
        self.generator_layers = []
        for i in range(self.generator_num_layers):
            block = TransformerEncoderBlock(
                num_heads=discriminator.num_heads,
                intermediate_dim=self.generator_intermediate_dim,
                dropout=discriminator.dropout,
                activation=discriminator.activation,
                seed=None if seed is None else int(seed) + 100 + i,
                dtype=self.dtype_policy,
                name=f"generator_layer_{i}",
            )
            block.build((None, None, hidden_dim))
            self.generator_layers.append(block)
        self.generator_head = MaskedLMHead(self.vocabulary_size, dtype=self.dtype_policy, name="generator_head")
        self.generator_head.build((None, None, hidden_dim))
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.rtd_dense = keras.layers.Dense(
            hidden_dim,
            activation="gelu",
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="rtd_dense",
        )
        self.rtd_dense.build((None, None, hidden_dim))
        self.rtd_logits = keras.layers.Dense(
            1, kernel_initializer=initializer, dtype=self.dtype_policy, name="rtd_logits"
        )
        self.rtd_logits.build((None, None, hidden_dim))
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

        # === Trackers ===
        # The objective, mlm_loss + rtd_weight * rtd_loss of the global batch,
        # averaged over the steps (what `fit`, the custom loop and the
        # NaN guard read as "loss").
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mlm_loss_tracker = keras.metrics.Mean(name="mlm_loss")
        self.mlm_accuracy_tracker = keras.metrics.Mean(name="mlm_accuracy")
        self.rtd_loss_tracker = keras.metrics.Mean(name="rtd_loss")
        self.rtd_accuracy_tracker = keras.metrics.Mean(name="rtd_accuracy")
        self.built = True

    @property
    def encoder(self):
        """The discriminator's encoder (what fine-tuning reads)."""
        return self.discriminator.encoder

    @property
    def preprocessor(self):
        return self.discriminator.preprocessor

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.mlm_loss_tracker,
            self.mlm_accuracy_tracker,
            self.rtd_loss_tracker,
            self.rtd_accuracy_tracker,
        ]

    # === Forward ===

    def generator_logits(self, packed, mask_positions, training=False):
        """Generator logits `(batch, num_predictions, vocabulary)` at the positions."""
        x = self.discriminator.embedding(
            packed["token_ids"], packed["segment_ids"], training=training
        )  # (batch, seq, hidden), the shared embeddings
        for i, block in enumerate(self.generator_layers):
            last = i == len(self.generator_layers) - 1
            x = block(
                x,
                padding_mask=packed["padding_mask"],
                query_positions=mask_positions if last else None,
                training=training,
            )  # (batch, seq or P, hidden)
        return self.generator_head(x, self.discriminator.embedding.token_embeddings)

    def rtd_scores(self, packed, training=False):
        """Replaced-token logits `(batch, seq)` of the discriminator."""
        sequence = self.discriminator.encode(packed, training=training)  # (batch, seq, hidden)
        return tf.squeeze(self.rtd_logits(self.rtd_dense(sequence)), axis=-1)

    def call(self, inputs, training=False):
        return self.rtd_scores(self.discriminator.pack(inputs), training=training)

    # === Steps ===

    def _pretraining_variables(self):
        # The discriminator's MLM head and pooler get no gradient.
        unused = {
            id(v)
            for layer in (self.discriminator.mlm_head, self.discriminator.pooled_dense)
            for v in layer.trainable_variables
        }
        return [v for v in self.trainable_variables if id(v) not in unused]

    def _terms(self, packed, training):
        """Per-slot and per-token losses and hits, and their weights."""
        d = self.discriminator
        mask_seed, sample_seed = krandom.split(self.seed_generator.next(), ("electra_mask", "electra_sample"))
        masked = mlm_masking.mask_tokens(
            packed["token_ids"],
            packed["padding_mask"],
            mask_seed,
            d.vocabulary_size,
            mask_selection_rate=d.mask_selection_rate,
            mask_token_rate=d.mask_token_rate,
            random_token_rate=d.random_token_rate,
            max_predictions=d.max_predictions,
        )
        positions, slot_weights = masked["mask_positions"], masked["mask_weights"]  # (batch, P)

        # Generate: masked-LM at the selected positions
        logits = self.generator_logits(
            dict(packed, token_ids=masked["token_ids"]), positions, training=training
        )  # (batch, P, vocabulary)
        batch, slots = tf.shape(logits)[0], logits.shape[1]
        rows = tf.reshape(logits, [-1, self.vocabulary_size])
        labels = tf.reshape(masked["mask_labels"], [-1])
        mlm_losses = tf.reshape(kernels.sparse_cross_entropy(rows, labels), [batch, slots])
        mlm_hits = tf.reshape(kernels.correct_predictions(tf.stop_gradient(rows), labels), [batch, slots])

        # Sample replacements (Gumbel-max) and put them into the original text
        uniform = krandom.uniform(sample_seed, [batch, slots, self.vocabulary_size])
        gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
        scores = tf.stop_gradient(tf.cast(logits, tf.float32)) / self.temperature + gumbel
        sampled = tf.argmax(scores, axis=-1, output_type=tf.int32)  # (batch, P)
        seq_len = packed["token_ids"].shape[1]
        placed = tf.one_hot(positions, seq_len, dtype=tf.float32) * slot_weights[:, :, None]
        is_selected = tf.reduce_sum(placed, axis=1) > 0.5  # (batch, seq)
        values = tf.reduce_sum(placed * tf.cast(sampled, tf.float32)[:, :, None], axis=1)
        original = tf.cast(packed["token_ids"], tf.int32)
        corrupted = tf.where(is_selected, tf.cast(tf.round(values), tf.int32), original)

        # Discriminate: replaced or original, at every real token
        token_weights = tf.cast(packed["padding_mask"], tf.float32)  # (batch, seq)
        replaced = tf.cast(tf.not_equal(corrupted, original), tf.float32)
        rtd_logits = tf.cast(self.rtd_scores(dict(packed, token_ids=corrupted), training=training), tf.float32)
        rtd_losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=replaced, logits=rtd_logits)
        rtd_hits = tf.cast(tf.equal(tf.cast(rtd_logits > 0, tf.float32), replaced), tf.float32)
        return (mlm_losses, mlm_hits, slot_weights), (rtd_losses, rtd_hits, token_weights)

    def _update(self, mlm, rtd):
        self.mlm_loss_tracker.update_state(mlm[0], sample_weight=mlm[2])
        self.mlm_accuracy_tracker.update_state(mlm[1], sample_weight=mlm[2])
        self.rtd_loss_tracker.update_state(rtd[0], sample_weight=rtd[2])
        self.rtd_accuracy_tracker.update_state(rtd[1], sample_weight=rtd[2])
        # This step's objective over the global batch: the same value on
        # every replica, so the replicas' mean is that value.
        step_loss = _global_mean(mlm[0], mlm[2]) + self.rtd_weight * _global_mean(rtd[0], rtd[2])
        self.loss_tracker.update_state(step_loss)
        # Replicas hold different numbers of predictions and tokens.
        results = distribute.global_mean_results(self.metrics[1:])
        results["loss"] = self.loss_tracker.result()
        return results

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        packed = self.discriminator._batch(x)
        variables = self._pretraining_variables()
        with tf.GradientTape() as tape:
            mlm, rtd = self._terms(packed, training=True)
            # Each replica's sums over the global counts: the replica
            # gradients sum to the gradient of the global means.
            mlm_loss = tf.reduce_sum(mlm[0] * mlm[2]) / _positive_count(mlm[2])
            rtd_loss = tf.reduce_sum(rtd[0] * rtd[2]) / _positive_count(rtd[2])
            loss = mlm_loss + self.rtd_weight * rtd_loss
            scaled_loss = self.optimizer.scale_loss(loss)
        grads = distribute.dense_gradients(tape.gradient(scaled_loss, variables))
        self.optimizer.apply(grads, variables)
        return self._update(mlm, rtd)

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        mlm, rtd = self._terms(self.discriminator._batch(x), training=False)
        return self._update(mlm, rtd)

    # === Compile and serialization ===

    def compile(self, optimizer="auto", jit_compile="auto", **kwargs):
        """Sets the optimizer (`"auto"`: AdamW(1e-4, weight_decay=0.01,
        epsilon=1e-6)); the loss is the model's own."""
        if optimizer == "auto":
            optimizer = pretraining_optimizer()
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "discriminator": keras.layers.serialize(self.discriminator),
                "generator_num_layers": self.generator_num_layers,
                "generator_intermediate_dim": self.generator_intermediate_dim,
                "rtd_weight": self.rtd_weight,
                "temperature": self.temperature,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["discriminator"] = keras.layers.deserialize(config["discriminator"])
        return cls(**config)
