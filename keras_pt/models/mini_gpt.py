"""MiniGPT: a small decoder-only transformer pre-trained by next-token prediction."""

import keras
import tensorflow as tf

from keras_pt import distribute
from keras_pt.layers.bert_embedding import BertEmbedding
from keras_pt.layers.masked_lm_head import MaskedLMHead
from keras_pt.layers.transformer_encoder_block import TransformerEncoderBlock
from keras_pt.metrics.perplexity import Perplexity
from keras_pt.models.mini_gpt_generation import (  # noqa: F401 (re-exported)
    BANNED_IDS,
    BOS_ID,
    EOS_ID,
    MiniGPTGeneration,
)
from keras_pt.models.text_model import TextModel, check_transformer_shape

INPUT_KEYS = ("token_ids", "padding_mask")


def _build_encoder(embedding, transformer_layers):
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_KEYS}
    x = embedding(inputs["token_ids"])  # (batch, seq, hidden)
    for block in transformer_layers:
        x = block(x, padding_mask=inputs["padding_mask"])  # (batch, seq, hidden)
    # The state of the last real token (EOS of a packed text): it has seen
    # the whole text, so it is the causal model's sentence vector.
    last = keras.ops.maximum(keras.ops.sum(inputs["padding_mask"], axis=1) - 1, 0)  # (batch,)
    pooled = keras.ops.take_along_axis(x, last[:, None, None], axis=1)[:, 0, :]  # (batch, hidden)
    return keras.Model(inputs, {"sequence_output": x, "pooled_output": pooled}, name="encoder")


def _check_sequence_length(max_sequence_length, preprocessor):
    if int(max_sequence_length) < 2:
        raise ValueError(f"max_sequence_length must be >= 2, got {max_sequence_length}.")
    length = getattr(preprocessor, "sequence_length", None)
    if length is not None and length > int(max_sequence_length):
        raise ValueError(
            f"the preprocessor packs {length} tokens but "
            f"max_sequence_length={max_sequence_length}; raise "
            "max_sequence_length or shorten the preprocessor's sequence_length."
        )


@keras.saving.register_keras_serializable(package="keras_pt")
class MiniGPT(MiniGPTGeneration, TextModel, keras.Model):
    """A small decoder-only transformer language model (next-token prediction).

    Token and position embeddings (`BertEmbedding` with one segment:
    LayerNorm, dropout), `num_layers` post-LN `TransformerEncoderBlock`s with
    `causal=True` — position `i` attends only to positions `<= i`: later
    keys get a large negative bias before the softmax — and a language-model
    head (`MaskedLMHead`: dense, GELU, LayerNorm, then the output projection
    tied to the token embeddings, plus a bias). The layers are MiniBERT's;
    only the attention mask and the objective differ.

    Sequences are packed as MiniBERT packs a single text, so a
    `MiniBERTPreprocessor` is the LM's preprocessor: `[CLS]` is the
    beginning-of-sequence token, `[SEP]` the end-of-sequence token, `[PAD]`
    pads on the right (`token_ids`: `[CLS] t1 ... tn [SEP] [PAD] ...`;
    `segment_ids` are ignored). A text truncated to `sequence_length` still
    ends with `[SEP]`.

    `call(inputs)` returns next-token logits for every position, `(batch,
    seq_len, vocabulary_size)`: row `i` scores token `i + 1`. `inputs` is the
    packed dict (`token_ids`, optional `padding_mask`), or raw strings when
    the model has a preprocessor.

    `encoder` is a functional `keras.Model` from `{"token_ids",
    "padding_mask"}` to `{"sequence_output": (batch, seq_len, hidden_dim),
    "pooled_output": (batch, hidden_dim)}`, the state of each sequence's
    last real token.

    `train_step` minimises the next-token cross-entropy: token `i + 1` is
    predicted from tokens `<= i` wherever token `i + 1` is real (`[SEP]`
    included, padding excluded). The loss is the true mean over the real
    target tokens of the *global* batch: each replica divides its summed
    loss by the global token count (an all-reduce of the per-replica
    counts), so the summed replica gradients equal the one-device gradient
    even though replicas hold different numbers of tokens. Logged: `loss`
    (mean cross-entropy, nats per token) and `perplexity` (its
    exponential, over all tokens of the epoch). `test_step` reports both, so
    `evaluate` gives held-out perplexity. The step is XLA-ready
    (`compile(jit_compile=True)`; `"auto"` leaves the choice to Keras).

    `generate(prompts, max_length, strategy, ...)` continues prompts with
    greedy, top-k or temperature sampling in a fixed-length loop compiled
    with `jit_compile=True`, keeping each block's keys and values in
    fixed-shape caches (see `generate`).

    Args:
        vocabulary_size: int or None. Token ids lie in `[0,
            vocabulary_size)`; the first `NUM_SPECIAL_TOKENS` are `[PAD]
            [UNK] [CLS] [SEP] [MASK]`. Defaults to the preprocessor's
            `tokenizer.vocabulary_size()`.
        num_layers: int. Decoder blocks. Defaults to 2.
        hidden_dim: int. Hidden size. Defaults to 128.
        num_heads: int or None. Attention heads. Defaults to
            `max(1, hidden_dim // 64)`.
        intermediate_dim: int or None. Feed-forward width. Defaults to
            `4 * hidden_dim`.
        max_sequence_length: int. Learned positions. Defaults to 512.
        dropout: float. Dropout in embeddings and blocks. Defaults to 0.1.
        activation: str. Feed-forward activation (`"gelu"`,
            `"gelu_approximate"` or `"relu"`). Defaults to `"gelu"`.
        preprocessor: Keras layer or None. Maps raw strings to the packed
            dict (a `MiniBERTPreprocessor`); saved with the model, and its
            tokenizer turns prompts into ids and samples back into text.
            Defaults to None.

    Example:

    >>> model = MiniGPT.from_preset("tiny", vocabulary_size=100,
    ...                             max_sequence_length=16)
    >>> model.compile(optimizer="adam")
    >>> ids = np.random.randint(5, 100, size=(8, 16)).astype("int32")
    >>> ids[:, 0], ids[:, -1] = 2, 3
    >>> history = model.fit({"token_ids": ids}, batch_size=4, verbose=0)
    >>> sorted(history.history)
    ['loss', 'perplexity']
    >>> model.generate([[2, 7, 9]], max_length=8, strategy="top_k",
    ...                top_k=5, seed=1).shape
    (1, 8)

    References:
        Radford et al., "Improving Language Understanding by Generative
        Pre-Training", 2018.
    """

    # A causal LM models single texts, not sentence pairs; no segments.
    TEXT_PAIRS = False
    INPUT_KEYS = INPUT_KEYS

    def __init__(
        self,
        vocabulary_size=None,
        num_layers=2,
        hidden_dim=128,
        num_heads=None,
        intermediate_dim=None,
        max_sequence_length=512,
        dropout=0.1,
        activation="gelu",
        preprocessor=None,
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
        _check_sequence_length(max_sequence_length, preprocessor)
        super().__init__(**kwargs)
        # Raw strings are valid inputs: no float conversion.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.num_layers = int(num_layers)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = int(max_sequence_length)
        self.dropout = float(dropout)
        self.activation = activation

        # === Layers ===
        embedding = BertEmbedding(
            vocabulary_size=self.vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=self.max_sequence_length,
            num_segments=1,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name="embedding",
        )
        blocks = [
            TransformerEncoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=self.dropout,
                activation=activation,
                causal=True,
                dtype=self.dtype_policy,
                name=f"transformer_layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.encoder = _build_encoder(embedding, blocks)
        self.lm_head = MaskedLMHead(
            self.vocabulary_size, activation=activation, dtype=self.dtype_policy, name="lm_head"
        )
        self.lm_head.build((None, None, hidden_dim))
        self.preprocessor = preprocessor

        # === Trackers ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.perplexity_tracker = Perplexity(name="perplexity")
        self._generate_fns = {}
        self.built = True

    # === Parts ===

    @property
    def metrics(self):
        return [self.loss_tracker, self.perplexity_tracker]

    # === Forward ===

    def logits(self, packed, training=False):
        """Next-token logits `(batch, seq_len, vocabulary_size)` of a packed dict."""
        sequence = self.encoder(packed, training=training)["sequence_output"]
        return self.lm_head(sequence, self.embedding.token_embeddings)

    def call(self, inputs, training=False):
        return self.logits(self.pack(inputs), training=training)

    # === Next-token steps ===

    def _batch(self, data, training=True):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        packed = self.pack(x)
        shape = packed["token_ids"].shape
        if shape[1] is None:
            verb = "trains" if training else "evaluates"
            raise ValueError(
                f"MiniGPT {verb} on a fixed sequence length; got token_ids of shape "
                f"{shape}. Pad every batch to the same sequence_length."
            )
        if training and shape[0] is None:
            # Evaluation accepts a last, shorter batch; training keeps static
            # shapes (TPUs, and replicas splitting the batch evenly).
            raise ValueError(
                f"MiniGPT trains on static shapes; got token_ids of shape {shape}. Batch with drop_remainder=True."
            )
        if shape[1] < 2:
            raise ValueError(f"next-token training needs sequences of at least 2 tokens; got {shape[1]}.")
        return packed

    def token_losses(self, packed, training=False):
        """Per-position next-token cross-entropy and target weights.

        Returns:
            `(losses, weights)`, float32 `(batch, seq_len - 1)`: the loss of
            predicting token `i + 1` from tokens `<= i`, and 1.0 where token
            `i + 1` is real (0.0 on padding).
        """
        sequence = self.encoder(packed, training=training)["sequence_output"]
        # Positions 0..L-2 predict tokens 1..L-1.
        logits = self.lm_head(sequence[:, :-1], self.embedding.token_embeddings)
        logits = tf.cast(logits, tf.float32)  # (batch, L-1, vocabulary)
        targets = packed["token_ids"][:, 1:]  # (batch, L-1)
        weights = tf.cast(packed["padding_mask"][:, 1:], tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
        return losses, weights

    def _update_trackers(self, losses, weights):
        self.loss_tracker.update_state(losses, sample_weight=weights)
        self.perplexity_tracker.update_state(losses, sample_weight=weights)
        # Replicas hold different numbers of real tokens.
        return distribute.global_mean_results(self.metrics)

    def train_step(self, data):
        packed = self._batch(data)
        weights = tf.cast(packed["padding_mask"][:, 1:], tf.float32)
        global_count = self._global_count(weights)
        variables = self.trainable_variables
        # Predict each next token
        with tf.GradientTape() as tape:
            losses, weights = self.token_losses(packed, training=True)
            # Summed over this replica's tokens / all replicas' token count:
            # the replica gradients sum to the gradient of the global mean.
            loss = tf.reduce_sum(losses * weights) / tf.maximum(global_count, 1.0)
            scaled_loss = self.optimizer.scale_loss(loss)
        grads = distribute.dense_gradients(tape.gradient(scaled_loss, variables))
        self.optimizer.apply(grads, variables)
        return self._update_trackers(losses, weights)

    def test_step(self, data):
        packed = self._batch(data, training=False)
        losses, weights = self.token_losses(packed, training=False)
        return self._update_trackers(losses, weights)

    # === Compile and serialization ===

    def compile(self, optimizer="auto", jit_compile="auto", **kwargs):
        """Sets the optimizer; the loss is the model's own next-token loss.

        Args:
            optimizer: optimizer, name or `"auto"`: AdamW(3e-4,
                weight_decay=0.01).
            jit_compile: bool or `"auto"`. `"auto"` is Keras's choice, as
                in every keras_pt model: XLA on one GPU or TPU, off on
                CPU-only machines and under a multi-replica strategy.
                Defaults to `"auto"`.
            **kwargs: passed to `keras.Model.compile`.
        """
        self._check_own_loss(kwargs)
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=3e-4, weight_decay=0.01)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **self._transformer_config(),
                "activation": self.activation,
                "preprocessor": self._preprocessor_config(),
            }
        )
        return config
