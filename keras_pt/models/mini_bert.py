"""MiniBERT: a small BERT pre-trained by masked-LM with dynamic masking."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import mlm_masking
from keras_pt.kernels import transformer as kernels
from keras_pt.kernels.xla import in_xla_context
from keras_pt.layers.bert_embedding import BertEmbedding
from keras_pt.layers.masked_lm_head import MaskedLMHead
from keras_pt.layers.transformer_encoder_block import TransformerEncoderBlock
from keras_pt.models.seed_state import SeedStateMixin

# The text-input plumbing, once importable from here.
from keras_pt.models.text_model import (  # noqa: F401
    INPUT_KEYS,
    PRESETS,
    TextInputsMixin,
    TextModel,
    _resolve_vocabulary_size,
    as_text_tensors,
    check_transformer_shape,
    compile_from_config,
    is_text,
    preprocess_text,
    standardize_inputs,
    text_dataset,
)


def _build_encoder(model):
    """The functional encoder of `model`'s config: embeddings, transformer
    blocks and the tanh pooler over [CLS]."""

    # Dropout seeds derived from the model's `seed`, so two models built
    # with the same seed train identically.
    def sub_seed(offset):
        return None if model.seed is None else int(model.seed) + offset

    embedding = BertEmbedding(
        vocabulary_size=model.vocabulary_size,
        hidden_dim=model.hidden_dim,
        max_sequence_length=model.max_sequence_length,
        num_segments=model.num_segments,
        dropout=model.dropout,
        seed=sub_seed(1),
        dtype=model.dtype_policy,
        name="embedding",
    )
    blocks = [
        TransformerEncoderBlock(
            num_heads=model.num_heads,
            intermediate_dim=model.intermediate_dim,
            dropout=model.dropout,
            activation=model.activation,
            seed=sub_seed(2 + i),
            dtype=model.dtype_policy,
            name=f"transformer_layer_{i}",
        )
        for i in range(model.num_layers)
    ]
    pooled_dense = keras.layers.Dense(
        model.hidden_dim,
        activation="tanh",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype=model.dtype_policy,
        name="pooled_dense",
    )
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_KEYS}
    x = embedding(inputs["token_ids"], inputs["segment_ids"])  # (batch, seq, hidden)
    for block in blocks:
        x = block(x, padding_mask=inputs["padding_mask"])  # (batch, seq, hidden)
    pooled = pooled_dense(x[:, 0, :])  # (batch, hidden): tanh(W·h_[CLS] + b)
    return keras.Model(inputs, {"sequence_output": x, "pooled_output": pooled}, name="encoder")


def pretraining_optimizer():
    """BERT's pre-training optimizer without its schedule: AdamW(1e-4,
    weight_decay=0.01, epsilon=1e-6) (`compile(optimizer="auto")`)."""
    return keras.optimizers.AdamW(learning_rate=1e-4, weight_decay=0.01, epsilon=1e-6)


@keras.saving.register_keras_serializable(package="keras_pt")
class MiniBERT(SeedStateMixin, TextModel, keras.Model):
    """A small BERT encoder with masked-LM pre-training in its `train_step`.

    Token, position and segment embeddings (LayerNorm, dropout), then
    `num_layers` post-LN transformer encoder blocks (fused QKV attention,
    GELU feed-forward, dropout, padding mask), a pooled `[CLS]` vector
    (`tanh(W·h_[CLS] + b)`, as in BERT) and a masked-LM head whose output
    projection is tied to the token embeddings.

    `encoder` is a functional `keras.Model` from the packed dict
    `{"token_ids", "segment_ids", "padding_mask"}` (int `(batch, seq_len)`)
    to `{"sequence_output": (batch, seq_len, hidden_dim), "pooled_output":
    (batch, hidden_dim)}`; it shares the weights and is what fine-tuning
    heads (`MiniBERTClassifier`) put a head on.

    `call(inputs)` returns masked-LM logits: `(batch, seq_len,
    vocabulary_size)` for every position, or `(batch, num_predictions,
    vocabulary_size)` at `inputs["mask_positions"]` when that key is given.
    With a `preprocessor`, `inputs` may also be raw strings (or a pair of
    string batches), which are packed first.

    `train_step` is masked-LM pre-training with dynamic masking: each batch
    (a packed dict; labels, if any, are ignored) is masked afresh by
    `keras_pt.kernels.mlm_masking.mask_tokens` — per sequence exactly
    `round(mask_selection_rate · n)` of its `n` real non-special tokens are
    selected (at least one; see the kernel's doc), 80% of them become
    `[MASK]`, 10% a random ordinary token, 10% stay — seeded from the
    model's `SeedGenerator`, so 1 device and N replicas mask alike. Logits
    are computed only at the selected positions (a static `(batch,
    max_predictions)` gather, as in BERT). Loss (cross-entropy) and
    `mlm_accuracy` are means over the selected positions of the global
    batch: each replica divides its summed loss by the global count of
    selected positions (an all-reduce of the counts), so the summed replica
    gradients are exactly the one-device gradient even though replicas hold
    different numbers of selected positions. `test_step` reports the same
    two figures.

    The whole step compiles with XLA; `compile(jit_compile="auto")` leaves
    the choice to Keras (XLA on one GPU or TPU; off on CPU-only machines and
    under a multi-replica strategy). Under XLA the token-id range checks
    (which raise `InvalidArgumentError` in graph mode) are dropped — use
    `jit_compile=False` to debug data.

    Args:
        vocabulary_size: int or None. Token ids lie in `[0,
            vocabulary_size)`; the first `NUM_SPECIAL_TOKENS` are
            `[PAD] [UNK] [CLS] [SEP] [MASK]`. Defaults to the
            preprocessor's `tokenizer.vocabulary_size()`.
        num_layers: int. Encoder blocks. Defaults to 2.
        hidden_dim: int. Hidden size. Defaults to 128.
        num_heads: int or None. Attention heads. Defaults to
            `max(1, hidden_dim // 64)`.
        intermediate_dim: int or None. Feed-forward width. Defaults to
            `4 * hidden_dim`.
        max_sequence_length: int. Learned positions. Defaults to 512.
        dropout: float. Dropout in embeddings and blocks. Defaults to 0.1.
        mask_selection_rate: float. Fraction of tokens selected for
            prediction. Defaults to 0.15.
        mask_token_rate: float. Fraction of selected tokens set to
            `[MASK]`. Defaults to 0.8.
        random_token_rate: float. Fraction set to a random token.
            Defaults to 0.1.
        max_predictions: int or None. Prediction slots per sequence.
            Defaults to `ceil(mask_selection_rate · seq_len)`, which never
            drops a selection.
        num_segments: int. Segment ids. Defaults to 2.
        activation: str. Feed-forward activation: `"gelu"` (exact erf
            form), `"gelu_approximate"` (tanh form) or `"relu"`. Defaults
            to `"gelu"`.
        preprocessor: Keras layer or None. Maps raw strings to the packed
            dict (e.g. `MiniBERTPreprocessor`); saved with the model.
            Defaults to None.
        seed: int or None. Seed of the masking `SeedGenerator` (the dropout
            seeds of the sublayers are derived from it). Defaults to None.

    Example:

    >>> model = MiniBERT.from_preset("tiny", vocabulary_size=100,
    ...                              max_sequence_length=16, seed=1)
    >>> model.compile(optimizer="adam")
    >>> ids = np.random.randint(5, 100, size=(8, 16)).astype("int32")
    >>> ids[:, 0], ids[:, -1] = 2, 3
    >>> batch = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
    ...          "padding_mask": np.ones_like(ids)}
    >>> history = model.fit(batch, batch_size=4, verbose=0)
    >>> sorted(history.history)
    ['loss', 'mlm_accuracy']
    >>> model.encoder(batch)["pooled_output"].shape
    TensorShape([8, 128])

    References:
        Devlin et al., "BERT: Pre-training of Deep Bidirectional
        Transformers for Language Understanding", 2019.
        Turc et al., "Well-Read Students Learn Better", 2019 (the miniature
        shapes).
    """

    def __init__(
        self,
        vocabulary_size=None,
        num_layers=2,
        hidden_dim=128,
        num_heads=None,
        intermediate_dim=None,
        max_sequence_length=512,
        dropout=0.1,
        mask_selection_rate=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        max_predictions=None,
        num_segments=2,
        activation="gelu",
        preprocessor=None,
        seed=None,
        **kwargs,
    ):
        vocabulary_size, hidden_dim, num_heads, intermediate_dim = check_transformer_shape(
            vocabulary_size,
            num_layers,
            hidden_dim,
            num_heads,
            intermediate_dim,
            activation,
            preprocessor,
        )
        mlm_masking.check_rates(mask_selection_rate, mask_token_rate, random_token_rate)
        if max_predictions is not None and int(max_predictions) < 1:
            raise ValueError(f"max_predictions must be a positive int or None; got {max_predictions}.")
        super().__init__(**kwargs)

        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.num_layers = int(num_layers)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = int(max_sequence_length)
        self.dropout = float(dropout)
        self.mask_selection_rate = float(mask_selection_rate)
        self.mask_token_rate = float(mask_token_rate)
        self.random_token_rate = float(random_token_rate)
        self.max_predictions = None if max_predictions is None else int(max_predictions)
        self.num_segments = int(num_segments)
        self.activation = activation
        self.seed = seed

        # === Layers ===
        self.encoder = _build_encoder(self)
        self.mlm_head = MaskedLMHead(self.vocabulary_size, dtype=self.dtype_policy, name="mlm_head")
        self.mlm_head.build((None, None, hidden_dim))
        self.preprocessor = preprocessor
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

        # === Trackers ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="mlm_accuracy")
        self.built = True

    # === Parts ===

    @property
    def pooled_dense(self):
        return self.encoder.get_layer("pooled_dense")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    # === Forward ===

    def encode(self, packed, training=False, query_positions=None):
        """Sequence output of the encoder blocks for a packed dict.

        With `query_positions` (int `(batch, num_queries)`) the last block
        computes only those rows, `(batch, num_queries, hidden_dim)`: the
        same values as gathering them from the full output, at a fraction
        of the last block's cost (its keys and values still see every
        position). The masked-LM steps use this.
        """
        x = self.embedding(packed["token_ids"], packed["segment_ids"], training=training)  # (batch, seq, hidden)
        blocks = self.transformer_layers
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            x = block(
                x,
                padding_mask=packed["padding_mask"],
                query_positions=query_positions if last else None,
                training=training,
            )
        return x

    def mlm_logits(self, packed, mask_positions=None, training=False):
        """MLM logits for a packed dict, at `mask_positions` if given."""
        sequence = self.encode(packed, training=training, query_positions=mask_positions)
        return self.mlm_head(sequence, self.embedding.token_embeddings)

    def call(self, inputs, training=False):
        mask_positions = inputs.get("mask_positions") if isinstance(inputs, dict) else None
        return self.mlm_logits(self.pack(inputs), mask_positions, training=training)

    # === Masked-LM steps ===

    def _batch(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        packed = self.pack(x)
        shape = packed["token_ids"].shape
        if shape[1] is None:
            raise ValueError(
                f"MiniBERT trains on a fixed sequence length; got token_ids of "
                f"shape {shape} (batches of different lengths). Pad every batch "
                f"to the same sequence_length, at most max_sequence_length="
                f"{self.max_sequence_length}."
            )
        return packed

    def mask(self, packed):
        """Dynamic masking of a packed batch with the next seed (a dict, see
        `keras_pt.kernels.mlm_masking.apply_mlm_mask`)."""
        return mlm_masking.mask_tokens(
            packed["token_ids"],
            packed["padding_mask"],
            self.seed_generator.next(),
            self.vocabulary_size,
            mask_selection_rate=self.mask_selection_rate,
            mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate,
            max_predictions=self.max_predictions,
        )

    def _mlm_terms(self, packed, masked, training):
        """Per-slot losses, correctness and the global count of predictions."""
        inputs = dict(packed, token_ids=masked["token_ids"])
        logits = self.mlm_logits(inputs, masked["mask_positions"], training=training)
        batch, slots = tf.shape(logits)[0], logits.shape[1]
        rows = tf.reshape(logits, [-1, self.vocabulary_size])  # (batch·P, vocabulary)
        labels = tf.reshape(masked["mask_labels"], [-1])  # (batch·P,)
        losses = kernels.sparse_cross_entropy(rows, labels)
        correct = kernels.correct_predictions(tf.stop_gradient(rows), labels)
        return tf.reshape(losses, [batch, slots]), tf.reshape(correct, [batch, slots])

    def _trainable_mlm_variables(self):
        # The pooler gets no gradient from the MLM loss.
        pooled = {id(v) for v in self.pooled_dense.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in pooled]

    def _apply_gradients(self, grads, variables):
        # On one device outside XLA, the optimizer's many small per-variable
        # updates run as one XLA cluster (same update, fused loops).
        if tf.distribute.has_strategy() or in_xla_context() or self.run_eagerly:
            self.optimizer.apply(grads, variables)
            return
        key = (id(self.optimizer), tuple(id(v) for v in variables))
        fused = getattr(self, "_fused_apply", None)
        if fused is None or fused[0] != key:
            optimizer = self.optimizer
            apply = tf.function(lambda grads: optimizer.apply(grads, variables), jit_compile=True, autograph=False)
            # Plain attribute: not a tracked part of the model.
            fused = (key, apply)
            object.__setattr__(self, "_fused_apply", fused)
        fused[1](grads)

    def train_step(self, data):
        packed = self._batch(data)
        # Mask the batch
        masked = self.mask(packed)
        weights = masked["mask_weights"]  # (batch, P), 1.0 where a slot is used
        global_count = self._global_count(weights)
        variables = self._trainable_mlm_variables()
        # Predict the original tokens at the selected positions
        with tf.GradientTape() as tape:
            losses, correct = self._mlm_terms(packed, masked, training=True)
            # Summed over this replica's predictions / all replicas' count:
            # the replica gradients sum to the global-mean gradient.
            loss = tf.reduce_sum(losses * weights) / tf.maximum(global_count, 1.0)
            scaled_loss = self.optimizer.scale_loss(loss)
        grads = distribute.dense_gradients(tape.gradient(scaled_loss, variables))
        self._apply_gradients(grads, variables)
        self.loss_tracker.update_state(losses, sample_weight=weights)
        self.accuracy_tracker.update_state(correct, sample_weight=weights)
        # Replicas hold different numbers of selected positions.
        return distribute.global_mean_results(self.metrics)

    def test_step(self, data):
        packed = self._batch(data)
        masked = self.mask(packed)
        losses, correct = self._mlm_terms(packed, masked, training=False)
        self.loss_tracker.update_state(losses, sample_weight=masked["mask_weights"])
        self.accuracy_tracker.update_state(correct, sample_weight=masked["mask_weights"])
        return {m.name: m.result() for m in self.metrics}

    # === Compile and serialization ===

    def compile(self, optimizer="auto", jit_compile="auto", **kwargs):
        """Sets the optimizer; the loss is the model's own masked-LM loss.

        Args:
            optimizer: optimizer, name or `"auto"`: AdamW(1e-4,
                weight_decay=0.01, epsilon=1e-6), BERT's pre-training
                setting (without the warm-up schedule).
            jit_compile: bool or `"auto"`. `"auto"` is Keras's choice: XLA
                on one GPU or TPU, off on CPU-only machines and under a
                multi-replica strategy. Defaults to `"auto"`.
            **kwargs: passed to `keras.Model.compile` (e.g.
                `steps_per_execution`).
        """
        if optimizer == "auto":
            optimizer = pretraining_optimizer()
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        # Built for every trainable variable (the MLM step updates all but the
        # pooler), so a saved optimizer state matches on reload.
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        compile_from_config(self, config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **self._transformer_config(),
                "mask_selection_rate": self.mask_selection_rate,
                "mask_token_rate": self.mask_token_rate,
                "random_token_rate": self.random_token_rate,
                "max_predictions": self.max_predictions,
                "num_segments": self.num_segments,
                "activation": self.activation,
                "preprocessor": self._preprocessor_config(),
                "seed": self.seed,
            }
        )
        return config
