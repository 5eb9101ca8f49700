"""MiniGPT: a small decoder-only transformer pre-trained by next-token prediction."""

import copy

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import sampling
from keras_pt.layers.bert_embedding import BertEmbedding, TokenIdCheckMixin
from keras_pt.layers.masked_lm_head import MaskedLMHead
from keras_pt.special_tokens import (
    CLS_ID,
    MASK_ID,
    NUM_SPECIAL_TOKENS,
    PAD_ID,
    SEP_ID,
)
from keras_pt.layers.transformer_encoder_block import ACTIVATIONS, TransformerEncoderBlock
from keras_pt.metrics.perplexity import Perplexity
from keras_pt.models.mini_bert import PRESETS, is_text, preprocess_text

INPUT_KEYS = ("token_ids", "padding_mask")

# Never sampled: padding, the start token and the MLM mask token.
BANNED_IDS = (PAD_ID, CLS_ID, MASK_ID)

BOS_ID = CLS_ID
EOS_ID = SEP_ID


def _standardize(inputs):
    """`{"token_ids", "padding_mask"}` int32 `(batch, seq_len)` from a packed dict."""
    if not isinstance(inputs, dict) or "token_ids" not in inputs:
        got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise ValueError(
            "MiniGPT takes a dict with 'token_ids' (and 'padding_mask') of int "
            f"(batch, seq_len) tensors, or raw strings with a preprocessor; got {got}. "
            "Pack text with MiniBERTPreprocessor."
        )
    token_ids = tf.convert_to_tensor(inputs["token_ids"])
    if not token_ids.dtype.is_integer or token_ids.shape.rank != 2:
        raise ValueError(
            "token_ids must be an int tensor of shape (batch, seq_len); got "
            f"{token_ids.dtype.name} {token_ids.shape}."
        )
    token_ids = tf.cast(token_ids, tf.int32)
    padding_mask = inputs.get("padding_mask")
    if padding_mask is None:
        padding_mask = tf.cast(token_ids != PAD_ID, tf.int32)
    else:
        padding_mask = tf.cast(padding_mask, tf.int32)
        if padding_mask.shape.rank != 2 or (
            padding_mask.shape[1] is not None
            and token_ids.shape[1] is not None
            and padding_mask.shape[1] != token_ids.shape[1]
        ):
            raise ValueError(
                f"padding_mask must have the shape of token_ids {token_ids.shape}; "
                f"got {padding_mask.shape}."
            )
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _build_encoder(embedding, transformer_layers):
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_KEYS
    }
    x = embedding(inputs["token_ids"])  # (batch, seq, hidden)
    for block in transformer_layers:
        x = block(x, padding_mask=inputs["padding_mask"])  # (batch, seq, hidden)
    # The state of the last real token (EOS of a packed text): it has seen
    # the whole text, so it is the causal model's sentence vector.
    last = keras.ops.maximum(keras.ops.sum(inputs["padding_mask"], axis=1) - 1, 0)  # (batch,)
    pooled = keras.ops.take_along_axis(x, last[:, None, None], axis=1)[:, 0, :]  # (batch, hidden)
    return keras.Model(
        inputs, {"sequence_output": x, "pooled_output": pooled}, name="encoder"
    )


@keras.saving.register_keras_serializable(package="keras_pt")
class MiniGPT(TokenIdCheckMixin, keras.Model):
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
    `evaluate` gives held-out perplexity. The step compiles with XLA
    (`compile(jit_compile="auto")` turns it on for one device).

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
        vocabulary_size = _resolve_vocabulary_size(vocabulary_size, preprocessor)
        if int(vocabulary_size) <= NUM_SPECIAL_TOKENS:
            raise ValueError(
                f"vocabulary_size must exceed the {NUM_SPECIAL_TOKENS} special "
                f"tokens; got {vocabulary_size}."
            )
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be a positive int; got {num_layers}.")
        hidden_dim = int(hidden_dim)
        num_heads = max(1, hidden_dim // 64) if num_heads is None else int(num_heads)
        if hidden_dim < 1 or hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim={hidden_dim} must be a positive multiple of "
                f"num_heads={num_heads}."
            )
        intermediate_dim = 4 * hidden_dim if intermediate_dim is None else int(intermediate_dim)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}."
            )
        if int(max_sequence_length) < 2:
            raise ValueError(
                f"max_sequence_length must be >= 2, got {max_sequence_length}."
            )
        if preprocessor is not None:
            length = getattr(preprocessor, "sequence_length", None)
            if length is not None and length > int(max_sequence_length):
                raise ValueError(
                    f"the preprocessor packs {length} tokens but "
                    f"max_sequence_length={max_sequence_length}; raise "
                    "max_sequence_length or shorten the preprocessor's sequence_length."
                )
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

    @classmethod
    def from_preset(cls, name, vocabulary_size=None, **overrides):
        """A MiniGPT with one of MiniBERT's named shapes: `"tiny"` (2 layers,
        hidden 128), `"mini"` (4/256) or `"small"` (4/512); heads = hidden /
        64, intermediate = 4 · hidden. `overrides` are passed to the
        constructor (e.g. `max_sequence_length=128`, `preprocessor=...`)."""
        if name not in PRESETS:
            raise ValueError(
                f"unknown MiniGPT preset {name!r}; choose one of {', '.join(PRESETS)}."
            )
        config = dict(PRESETS[name])
        config["num_heads"] = config["hidden_dim"] // 64
        config["intermediate_dim"] = 4 * config["hidden_dim"]
        config.update(overrides)
        return cls(vocabulary_size=vocabulary_size, **config)

    # === Parts ===

    @property
    def embedding(self):
        """The `BertEmbedding` layer (its `token_embeddings` feed the LM head)."""
        return self.encoder.get_layer("embedding")

    @property
    def transformer_layers(self):
        return [self.encoder.get_layer(f"transformer_layer_{i}") for i in range(self.num_layers)]

    @property
    def metrics(self):
        return [self.loss_tracker, self.perplexity_tracker]

    # === Forward ===

    def pack(self, inputs):
        """The packed int32 dict for `inputs` (raw strings go through the preprocessor)."""
        if is_text(inputs):
            if isinstance(inputs, tuple):
                raise ValueError(
                    "MiniGPT models single texts; got a pair of text batches. "
                    "Join the texts or pass one batch of strings."
                )
            inputs = preprocess_text(self.preprocessor, inputs, "MiniGPT")
        packed = _standardize(inputs)
        self.embedding.check_sequence_length(packed["token_ids"].shape[1])
        return packed

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
                f"MiniGPT trains on static shapes; got token_ids of shape {shape}. "
                "Batch with drop_remainder=True."
            )
        if shape[1] < 2:
            raise ValueError(
                f"next-token training needs sequences of at least 2 tokens; got {shape[1]}."
            )
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

    def _global_count(self, weights):
        count = tf.reduce_sum(weights)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        return tf.stop_gradient(count)

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

    # === Generation ===

    def next_token_logits(self, token_ids, positions):
        """Next-token logits at `positions` only, `(batch, num_positions, V)`.

        Causal attention lets every position but the queried ones be
        skipped in the last block and the head: the earlier blocks run on
        the whole sequence (keys and values), the last block on the queried
        rows (`TransformerEncoderBlock(query_positions=...)`). Equal to
        `self(...)` at those rows. No padding mask: with right padding a
        position never attends to the padding after it.

        Args:
            token_ids: int32 `(batch, seq_len)`.
            positions: int32 `(batch, num_positions)`.
        """
        x = self.embedding(token_ids, training=False)  # (batch, seq, hidden)
        blocks = self.transformer_layers
        for block in blocks[:-1]:
            x = block(x, training=False)  # (batch, seq, hidden)
        x = blocks[-1](x, query_positions=positions, training=False)  # (batch, P, hidden)
        return self.lm_head(x, self.embedding.token_embeddings)

    def prefill_cache(self, token_ids):
        """Key/value caches of every block for a whole `(batch, max_length)` buffer.

        One causal forward pass over the buffer (the prompts' prefill).
        Returns a list of `2 · num_layers` tensors, each block's keys then
        values, `(batch, num_heads, max_length, head_dim)`; a position's
        entries are exact for the buffer's tokens up to that position.
        """
        batch, length = token_ids.shape
        heads = self.num_heads
        empty = tf.zeros([batch, heads, length, self.hidden_dim // heads], self.compute_dtype)
        x = self.embedding(token_ids, training=False)  # (batch, max_length, hidden)
        caches = []
        for block in self.transformer_layers:
            x, keys, values = block.call_with_cache(x, empty, empty, 0)
            caches += [keys, values]
        return caches

    def cached_next_token_logits(self, token_ids, index, caches):
        """Next-token logits after position `index`, reading and updating caches.

        Runs the model on the tokens at `index` only, `token_ids[:, index]`:
        their keys and values go into `caches` (from `prefill_cache`) at
        `index` and they attend to the cached positions `<= index`.

        Args:
            token_ids: int32 `(batch, max_length)`.
            index: int32 scalar.
            caches: list of `2 · num_layers` float tensors `(batch,
                num_heads, max_length, head_dim)`.

        Returns:
            `(logits (batch, vocabulary_size), caches)`.
        """
        batch = token_ids.shape[0]
        tokens = tf.slice(token_ids, tf.stack([0, index]), [batch, 1])  # (batch, 1)
        x = self.embedding(tokens, start_index=index, training=False)  # (batch, 1, hidden)
        updated = []
        for b, block in enumerate(self.transformer_layers):
            x, keys, values = block.call_with_cache(x, caches[2 * b], caches[2 * b + 1], index)
            updated += [keys, values]
        logits = self.lm_head(x, self.embedding.token_embeddings)  # (batch, 1, V)
        return logits[:, 0], updated

    def _generate_loop(
        self, token_ids, prompt_lengths, seed, temperature, strategy, top_k, use_cache=True
    ):
        """Fills `token_ids` after each prompt, one position per iteration.

        `token_ids` `(batch, max_length)` holds each prompt at its start and
        `[PAD]` after it. Iteration `i` (from the shortest prompt's length to
        `max_length - 1`) computes the next-token logits at position `i - 1`
        and writes a token at position `i` for every sequence whose prompt
        is shorter than `i + 1` and which has not yet emitted `[SEP]`.

        With `use_cache`, one pass over the buffer fills per-block key/value
        caches (`prefill_cache`), and iteration `i` runs the model on the
        tokens at position `i - 1` only, writing their keys and values into
        the caches (`cached_next_token_logits`): the caches hold exact
        entries for every position before it (the prompt tokens from the
        prefill, the rest from earlier iterations), and positions after it
        are masked. Without, iteration `i` re-runs the model on the whole
        buffer (`next_token_logits`); the causal mask keeps position `i - 1`
        blind to the padding after it. Shapes never change, so XLA compiles
        the loop once per buffer shape.
        """
        batch, length = token_ids.shape
        positions = tf.range(length)[None, :]  # (1, max_length)

        def cond(i, ids, done, caches):
            return tf.logical_and(i < length, tf.logical_not(tf.reduce_all(done)))

        def body(i, ids, done, caches):
            if use_cache:
                logits, caches = self.cached_next_token_logits(ids, i - 1, caches)
            else:
                logits = self.next_token_logits(ids, tf.fill([batch, 1], i - 1))[:, 0]
            # (batch, V)
            token = sampling.next_token(
                logits,
                tf.stack([seed, i]),
                strategy=strategy,
                temperature=temperature,
                top_k=top_k,
                banned_ids=BANNED_IDS,
            )  # (batch,)
            in_prompt = i < prompt_lengths
            token = tf.where(done, PAD_ID, token)
            token = tf.where(in_prompt, tf.gather(ids, i, axis=1), token)
            done = tf.logical_or(done, tf.logical_and(~in_prompt, tf.equal(token, EOS_ID)))
            ids = tf.where(tf.equal(positions, i), token[:, None], ids)
            return i + 1, ids, done, caches

        start = tf.maximum(tf.reduce_min(prompt_lengths), 1)
        done = tf.zeros([batch], tf.bool)
        caches = self.prefill_cache(token_ids) if use_cache else []
        _, token_ids, _, _ = tf.while_loop(
            cond, body, (start, token_ids, done, caches), maximum_iterations=length
        )
        return token_ids

    def generate_fn(self, strategy="greedy", top_k=10, use_cache=True):
        """The XLA-compiled generation loop for a strategy (cached).

        A `tf.function(jit_compile=True)` of `(token_ids (batch, max_length)
        int32, prompt_lengths (batch,) int32, seed int32 scalar, temperature
        float32 scalar) -> token_ids`; `use_cache=False` gives the loop
        that re-runs the model on the whole buffer at every step.
        """
        key = (strategy, int(top_k) if strategy == "top_k" else None, bool(use_cache))
        if key not in self._generate_fns:
            strategy, k = key[0], key[1] or 1

            def loop(token_ids, prompt_lengths, seed, temperature):
                return self._generate_loop(
                    token_ids,
                    prompt_lengths,
                    seed,
                    temperature,
                    strategy=strategy,
                    top_k=k,
                    use_cache=key[2],
                )

            self._generate_fns[key] = tf.function(loop, jit_compile=True)
        return self._generate_fns[key]

    def _prompt_ids(self, prompts):
        """Lists of int ids and whether the prompts were strings."""
        if is_text(prompts):
            if self.preprocessor is None or not hasattr(self.preprocessor, "tokenizer"):
                raise ValueError(
                    "MiniGPT.generate got text prompts but the model has no "
                    "preprocessor with a tokenizer; pass preprocessor=... or "
                    "token id prompts."
                )
            if isinstance(prompts, str):
                prompts = [prompts]
            if isinstance(prompts, tuple):
                prompts = list(prompts)
            ids = self.preprocessor.tokenizer(tf.constant(prompts, tf.string)).to_list()
            return [[BOS_ID] + list(p) for p in ids], True
        array = prompts.numpy() if isinstance(prompts, tf.Tensor) else prompts
        if isinstance(array, np.ndarray):
            if array.ndim == 1:
                array = array[None]
            if array.ndim != 2 or array.dtype.kind not in "iu":
                raise ValueError(
                    "token id prompts must be an int array (batch, length) padded "
                    f"with [PAD]={PAD_ID}; got {array.dtype} {array.shape}."
                )
            rows = [[int(t) for t in row if t != PAD_ID] for row in array]
        else:
            try:
                rows = [[int(t) for t in row if int(t) != PAD_ID] for row in prompts]
            except (TypeError, ValueError):
                raise ValueError(
                    "prompts must be strings, a list of token id lists, or an int "
                    f"array; got {type(prompts).__name__}."
                ) from None
        return rows, False

    def generate(
        self,
        prompts,
        max_length=None,
        strategy="greedy",
        temperature=1.0,
        top_k=10,
        seed=None,
        use_cache=True,
    ):
        """Continues prompts token by token until `[SEP]` or `max_length`.

        Prompts are strings (tokenized by the preprocessor, `[CLS]`
        prepended) or token ids (lists of ids, or an int array padded with
        `[PAD]`; used as given, so include `[CLS]` to start like the
        training data). All prompts are completed together in one
        fixed-shape loop compiled with XLA (`generate_fn`); a sequence stops
        after it emits `[SEP]` and is padded with `[PAD]`. `[PAD]`, `[CLS]`
        and `[MASK]` are never sampled.

        One causal pass over the `(batch, max_length)` buffer fills a
        key/value cache per block, `(batch, num_heads, max_length,
        head_dim)`; each step then runs the model on one position per
        sequence and attends to the cache (static shapes: the caches are
        updated in place with `dynamic_update_slice` and later positions
        are masked). `use_cache=False` re-runs the model on the whole buffer
        at each step instead (quadratic in `max_length`); both give the same
        tokens up to float rounding (the sums are ordered differently, which
        can only matter where two tokens' logits all but tie).

        Args:
            prompts: str, list of str, list of lists of int, or int array.
            max_length: int or None. Total length, prompt included. Defaults
                to the preprocessor's `sequence_length`, else
                `max_sequence_length`.
            strategy: str. `"greedy"` (most likely token), `"top_k"` (sample
                among the `top_k` most likely) or `"temperature"` (sample
                from the whole softmax at `temperature`). Defaults to
                `"greedy"`.
            temperature: float > 0. Softmax temperature of the sampling
                strategies. Defaults to 1.0.
            top_k: int. Candidates of `"top_k"`. Defaults to 10.
            seed: int or None. The same prompts and seed always give the same
                output. Defaults to None (a seed from NumPy's global
                generator).
            use_cache: bool. Keep the prefix's keys and values in fixed-shape
                caches (one model position per step); False re-runs the
                whole buffer at each step. Defaults to True.

        Returns:
            For string prompts, a list of str (prompt and continuation,
            detokenized, special tokens dropped); for id prompts, an int32
            array `(batch, max_length)`.

        Raises:
            ValueError: for an unknown strategy, bad parameters, an empty
                prompt, or a prompt longer than `max_length`.
        """
        sampling.check_sampling_args(strategy, temperature, top_k, self.vocabulary_size)
        if max_length is None:
            max_length = getattr(self.preprocessor, "sequence_length", None) or (
                self.max_sequence_length
            )
        if int(max_length) != max_length or not 2 <= max_length <= self.max_sequence_length:
            raise ValueError(
                f"max_length must be an integer in [2, max_sequence_length="
                f"{self.max_sequence_length}]; got {max_length}."
            )
        rows, text = self._prompt_ids(prompts)
        if not rows:
            raise ValueError("generate got no prompts.")
        for row in rows:
            if not row:
                raise ValueError(
                    "a prompt is empty; start id prompts with [CLS] "
                    f"(id {BOS_ID}) for an unconditional sample."
                )
            if len(row) > max_length:
                raise ValueError(
                    f"a prompt has {len(row)} tokens, more than max_length={max_length}; "
                    "raise max_length or shorten the prompt."
                )
            if min(row) < 0 or max(row) >= self.vocabulary_size:
                raise ValueError(
                    f"prompt token ids must lie in [0, {self.vocabulary_size}); got {row}."
                )
        buffer = np.full((len(rows), int(max_length)), PAD_ID, np.int32)
        for b, row in enumerate(rows):
            buffer[b, : len(row)] = row
        lengths = np.array([len(row) for row in rows], np.int32)
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        token_ids = self.generate_fn(strategy, top_k, use_cache)(
            tf.constant(buffer),
            tf.constant(lengths),
            tf.constant(int(seed), tf.int32),
            tf.constant(float(temperature), tf.float32),
        ).numpy()
        if not text:
            return token_ids
        return self.detokenize(token_ids)

    def detokenize(self, token_ids):
        """Text of generated ids: up to the first `[SEP]`, special tokens dropped."""
        pieces = []
        for row in np.asarray(token_ids):
            kept = []
            for t in row.tolist():
                if t == EOS_ID:
                    break
                if t >= NUM_SPECIAL_TOKENS or t == 1:  # ordinary tokens and [UNK]
                    kept.append(t)
            pieces.append(kept)
        strings = self.preprocessor.tokenizer.detokenize(tf.ragged.constant(pieces, tf.int32))
        return [s.decode("utf-8") for s in strings.numpy()]

    # === Compile and serialization ===

    def compile(self, optimizer="auto", jit_compile="auto", **kwargs):
        """Sets the optimizer; the loss is the model's own next-token loss.

        Args:
            optimizer: optimizer, name or `"auto"`: AdamW(3e-4,
                weight_decay=0.01).
            jit_compile: bool or `"auto"`. `"auto"` compiles the step with
                XLA unless a multi-replica strategy is in use (then Keras's
                choice). Defaults to `"auto"`.
            **kwargs: passed to `keras.Model.compile`.
        """
        for name in ("loss", "metrics"):
            if kwargs.pop(name, None) not in (None, "auto"):
                raise ValueError(f"MiniGPT has its own loss and metrics; do not pass {name}=.")
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=3e-4, weight_decay=0.01)
        if jit_compile == "auto" and not kwargs.get("run_eagerly"):
            if tf.distribute.get_strategy().num_replicas_in_sync == 1:
                jit_compile = True
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "max_sequence_length": self.max_sequence_length,
                "dropout": self.dropout,
                "activation": self.activation,
                "preprocessor": (
                    None
                    if self.preprocessor is None
                    else keras.layers.serialize(self.preprocessor)
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        return cls(**config)


def _resolve_vocabulary_size(vocabulary_size, preprocessor):
    tokenizer_size = None
    if preprocessor is not None:
        tokenizer = getattr(preprocessor, "tokenizer", None)
        if tokenizer is None or not hasattr(tokenizer, "vocabulary_size"):
            raise ValueError(
                "preprocessor must have a .tokenizer with vocabulary_size() "
                f"(e.g. MiniBERTPreprocessor); got {type(preprocessor).__name__}."
            )
        tokenizer_size = int(tokenizer.vocabulary_size())
    if vocabulary_size is None:
        if tokenizer_size is None:
            raise ValueError("pass vocabulary_size, or a preprocessor whose tokenizer gives it.")
        return tokenizer_size
    if tokenizer_size is not None and int(vocabulary_size) != tokenizer_size:
        raise ValueError(
            f"vocabulary_size={vocabulary_size} differs from the preprocessor's "
            f"tokenizer vocabulary_size()={tokenizer_size}; leave vocabulary_size=None "
            "to take the tokenizer's."
        )
    return int(vocabulary_size)
