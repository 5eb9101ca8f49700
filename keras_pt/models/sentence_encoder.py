"""SentenceEncoder: contrastive sentence embeddings on a pre-trained text encoder."""

import keras
import numpy as np
import tensorflow as tf

from keras_pt import distribute
from keras_pt.kernels import contrastive, random
from keras_pt.models.seed_state import SeedStateMixin
from keras_pt.models.text_model import (
    INPUT_KEYS,
    POOLINGS,  # noqa: F401 (the pooling names, once defined here)
    TextModel,
    pool,
    resolve_pooling,
)
from keras_pt.special_tokens import PAD_ID, SEP_ID
from keras_pt.utils.nearest_neighbors import NearestNeighborIndex

VIEWS = ("dropout", "crop")


@keras.saving.register_keras_serializable(package="keras_pt")
class SentenceEncoder(SeedStateMixin, TextModel, keras.Model):
    """Sentence embeddings trained contrastively with in-batch negatives.

    Wraps a text encoder — `MiniBERT(...).encoder` (or `MiniGPT(...).encoder`):
    a model from the packed dict to `{"sequence_output", "pooled_output"}` —
    and pools its output into one L2-normalised vector per text.

    `call(inputs)` maps a packed dict (or raw strings, with a preprocessor)
    to embeddings `(batch, hidden_dim)` of unit norm, float32.

    `train_step` is InfoNCE with in-batch negatives over temperature-scaled
    cosine similarities (`keras_pt.kernels.contrastive`):

    - supervised, data `(texts_a, texts_b)` (two packed dicts): each `a_i`
      must pick its own `b_i` among all `b` of the batch;
    - unsupervised, data a packed dict alone (or `(x, None)`): each text
      must pick its own second view among the second views of the batch.
      With `views="dropout"` (SimCSE) the views are the same text encoded
      twice, each pass with its own dropout masks; with `views="crop"` they
      are two independent random spans of the text (each a fraction
      `U(crop_ratio)` of it, as in Contriever's independent cropping), also
      under dropout.

    Under a `tf.distribute` strategy the candidates are all-gathered across
    replicas (`ReplicaContext.all_gather`, whose gradient sums the replicas'
    upstream gradients and returns each replica its slice), so every anchor
    sees the whole global batch as negatives and the loss and gradients
    equal a one-device step on the global batch. The loss is the mean over
    the global batch. Logged: `loss` and `accuracy` (in-batch top-1
    retrieval). `test_step` reports the same with dropout off (meaningful
    for pairs; two views of a text are then identical). The step is
    XLA-ready (`compile(jit_compile=True)`; `"auto"` leaves the choice to
    Keras).

    Two dropout views of the same text are told apart by surface identity
    alone, which a small encoder trained from scratch learns without
    learning meaning (SimCSE relies on a well pre-trained encoder); two
    crops of a text share topic and vocabulary but few tokens, so they make
    the encoder match content. BUILD_NOTES has the measured comparison.

    `embed(texts)` gives NumPy embeddings of raw strings; `build_index(texts)`
    a `keras_pt.utils.NearestNeighborIndex` over them, and `search(queries,
    index, k)` the nearest indexed texts of each query.

    Args:
        encoder: keras.Model. The text encoder (dict in, dict with
            `"sequence_output"` `(batch, seq_len, hidden)` and
            `"pooled_output"` `(batch, hidden)` out). Trained with the
            embedder (not frozen).
        pooling: str. `"mean"`: the mean of `sequence_output` over real
            tokens; `"first_token"`: `sequence_output` at position 0;
            `"pooled"`: the encoder's `pooled_output` (see
            `keras_pt.models.text_model.POOLINGS`). The old `"cls"` means
            `"first_token"` (deprecated). Defaults to `"mean"`.
        temperature: float > 0. The similarity temperature `T`. Defaults to
            0.05 (SimCSE).
        preprocessor: Keras layer or None. Packs raw strings
            (`MiniBERTPreprocessor`); saved with the model. Needed by `embed`.
            Defaults to None.
        views: str. The unsupervised views: `"dropout"` (SimCSE, the text
            twice) or `"crop"` (two random spans). Pairs ignore it. Defaults
            to `"dropout"`.
        crop_ratio: `(low, high)`, `0 < low <= high <= 1`. The fraction of a
            text's tokens each crop keeps is drawn uniformly from it.
            Defaults to `(0.1, 0.5)`.
        seed: int or None. Seed of the crop draws. Defaults to None.

    Example:

    >>> from keras_pt import MiniBERT
    >>> bert = MiniBERT(vocabulary_size=100, num_layers=1, hidden_dim=32,
    ...                 max_sequence_length=16)
    >>> embedder = SentenceEncoder(bert.encoder, temperature=0.1)
    >>> embedder.compile(optimizer="adam")
    >>> ids = np.random.randint(5, 100, size=(8, 16)).astype("int32")
    >>> x = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
    ...      "padding_mask": np.ones_like(ids)}
    >>> history = embedder.fit(x, batch_size=4, verbose=0)  # SimCSE
    >>> embedder(x).shape
    TensorShape([8, 32])

    References:
        Gao, Yao & Chen, "SimCSE: Simple Contrastive Learning of Sentence
        Embeddings", 2021.
        Reimers & Gurevych, "Sentence-BERT", 2019.
    """

    # Raw inputs are single texts; the config holds two serialized layers.
    TEXT_PAIRS = False
    _SERIALIZED_LAYERS = ("encoder", "preprocessor")

    def __init__(
        self,
        encoder,
        pooling="mean",
        temperature=0.05,
        preprocessor=None,
        views="dropout",
        crop_ratio=(0.1, 0.5),
        seed=None,
        **kwargs,
    ):
        if not isinstance(encoder, keras.Model):
            raise ValueError(
                "encoder must be a keras Model from packed token ids to "
                "{'sequence_output', 'pooled_output'} (e.g. MiniBERT(...).encoder); "
                f"got {type(encoder).__name__}."
            )
        pooling = resolve_pooling(pooling, "SentenceEncoder", cls_means="first_token")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if views not in VIEWS:
            raise ValueError(f"unknown views {views!r}; choose one of {', '.join(VIEWS)}.")
        crop_ratio = tuple(float(r) for r in crop_ratio)
        if len(crop_ratio) != 2 or not 0.0 < crop_ratio[0] <= crop_ratio[1] <= 1.0:
            raise ValueError(
                "crop_ratio must be (low, high) with 0 < low <= high <= 1, the range "
                f"of the fraction of each text a crop keeps; got {crop_ratio}."
            )
        super().__init__(**kwargs)
        # Raw strings are valid inputs: no float conversion.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        # === Layers ===
        self.encoder = encoder
        self.preprocessor = preprocessor

        # === Config ===
        self.pooling = pooling
        self.temperature = float(temperature)
        self.views = views
        self.crop_ratio = crop_ratio
        self.seed = seed
        # Crop positions: fresh, replica-consistent draws every step.
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        inputs = encoder.input
        self._input_keys = tuple(inputs) if isinstance(inputs, dict) else None

        # === Trackers ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self._embed_fn = None
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    # === Forward ===

    def pack(self, inputs):
        """The packed int32 dict the encoder takes (strings go through the preprocessor)."""
        return self.pack_inputs(inputs, self._input_keys or INPUT_KEYS)

    def _pool(self, outputs, padding_mask):
        return pool(outputs, padding_mask, self.pooling)

    def embeddings(self, packed, training=False):
        """Unit-norm float32 embeddings `(batch, hidden)` of a packed dict."""
        outputs = self.encoder(packed, training=training)
        mask = packed.get("padding_mask", tf.ones_like(packed["token_ids"]))
        pooled = tf.cast(self._pool(outputs, mask), tf.float32)
        return tf.math.l2_normalize(pooled, axis=-1)

    def call(self, inputs, training=False):
        return self.embeddings(self.pack(inputs), training=training)

    # === Contrastive steps ===

    def _views(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        anchors = self.pack(x)
        positives = None if y is None else self.pack(y)
        batch = anchors["token_ids"].shape[0]
        if positives is not None and None not in (batch, positives["token_ids"].shape[0]):
            if positives["token_ids"].shape[0] != batch:
                raise ValueError(
                    f"pairs must have as many texts on both sides; got {batch} and {positives['token_ids'].shape[0]}."
                )
        return anchors, positives

    def _contrast(self, anchor_embeddings, positive_embeddings):
        """Per-anchor loss and correctness against the global batch's positives."""
        batch = anchor_embeddings.shape[0]
        if batch is None:
            batch = tf.shape(anchor_embeddings)[0]
        candidates = positive_embeddings
        offset = 0
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # (global batch, hidden), differentiable: the gradient of each
            # replica's slice is the sum over replicas of its upstream grads.
            candidates = context.all_gather(positive_embeddings, axis=0)
            offset = tf.cast(context.replica_id_in_sync_group, tf.int32) * batch
        positive_indices = offset + tf.range(batch, dtype=tf.int32)
        return contrastive.in_batch_contrastive_loss(anchor_embeddings, candidates, positive_indices, self.temperature)

    def _positive_embeddings(self, anchors, positives, training):
        # Unsupervised: the same texts again; with training=True every
        # dropout layer draws new masks, so this is a second view.
        return self.embeddings(anchors if positives is None else positives, training=training)

    def crop(self, packed, seed):
        """A random contiguous span of each text, repacked `[CLS] span [SEP]`.

        The span keeps a fraction `U(crop_ratio)` of the text's ordinary
        tokens (at least one) from a uniform start. Shapes are unchanged
        (static); draws are for the global batch, so one device and N
        replicas crop alike.
        """
        token_ids = packed["token_ids"]  # (batch, seq)
        shape = token_ids.shape
        batch = shape[0] if shape[0] is not None else tf.shape(token_ids)[0]
        seq_len = shape[1]
        draws = random.uniform(seed, (batch, 2))  # (batch, 2)
        # Ordinary tokens sit at positions 1..n ([CLS] first, [SEP] after).
        n = tf.maximum(tf.reduce_sum(tf.cast(packed["padding_mask"], tf.int32), axis=1) - 2, 1)
        low, high = self.crop_ratio
        ratio = low + (high - low) * draws[:, 0]
        length = tf.clip_by_value(tf.cast(tf.math.ceil(ratio * tf.cast(n, tf.float32)), tf.int32), 1, n)  # (batch,)
        start = tf.minimum(
            tf.cast(draws[:, 1] * tf.cast(n - length + 1, tf.float32), tf.int32), n - length
        )  # (batch,) offset of the span among the n tokens
        positions = tf.range(seq_len, dtype=tf.int32)[None]  # (1, seq)
        source = tf.clip_by_value(start[:, None] + positions, 0, seq_len - 1)
        span = tf.gather(token_ids, source, batch_dims=1)  # (batch, seq): position p holds token start + p
        length = length[:, None]
        cropped = tf.where(
            positions == 0,
            token_ids[:, :1],
            tf.where(
                positions <= length,
                span,
                tf.where(positions == length + 1, SEP_ID, PAD_ID),
            ),
        )
        out = dict(packed)
        out["token_ids"] = cropped
        out["padding_mask"] = tf.cast(positions <= length + 1, packed["padding_mask"].dtype)
        if "segment_ids" in out:
            out["segment_ids"] = tf.zeros_like(cropped)
        return out

    def _training_views(self, anchors, positives):
        """The two views of a training step (crops when `views="crop"`)."""
        if positives is not None or self.views == "dropout":
            return anchors, positives
        anchor_seed, positive_seed = random.draw_seeds(self.seed_generator, ("crop_anchor", "crop_positive"))
        return self.crop(anchors, anchor_seed), self.crop(anchors, positive_seed)

    def train_step(self, data):
        anchors, positives = self._training_views(*self._views(data))
        variables = self.trainable_variables
        # Contrast each text with the global batch
        with tf.GradientTape() as tape:
            anchor_embeddings = self.embeddings(anchors, training=True)
            positive_embeddings = self._positive_embeddings(anchors, positives, True)
            terms = self._contrast(anchor_embeddings, positive_embeddings)
            loss = tf.reduce_mean(terms["loss"])  # this replica's mean
            scaled_loss = self.optimizer.scale_loss(distribute.scale_loss(loss))
        grads = tape.gradient(scaled_loss, variables)
        # Unused encoder outputs (e.g. the pooler under mean pooling) get none.
        used = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        grads = distribute.dense_gradients([g for g, _ in used])
        self.optimizer.apply(grads, [v for _, v in used])
        self.loss_tracker.update_state(terms["loss"])
        self.accuracy_tracker.update_state(terms["correct"])
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        anchors, positives = self._views(data)
        terms = self._contrast(
            self.embeddings(anchors, training=False),
            self._positive_embeddings(anchors, positives, False),
        )
        self.loss_tracker.update_state(terms["loss"])
        self.accuracy_tracker.update_state(terms["correct"])
        return {m.name: m.result() for m in self.metrics}

    # === Embedding and search ===

    def embed(self, texts, batch_size=64):
        """Unit-norm embeddings of raw strings as a NumPy array `(n, hidden)`.

        Runs in fixed-size batches (the last one padded), so one compiled
        function serves any number of texts.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
        if not texts:
            raise ValueError("embed got no texts.")
        if self.preprocessor is None:
            raise ValueError(
                "embed needs a preprocessor to pack raw strings; build the "
                "SentenceEncoder with preprocessor=MiniBERTPreprocessor(...)."
            )
        if self._embed_fn is None:
            self._embed_fn = tf.function(lambda packed: self.embeddings(packed, training=False))
        outputs = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            padded = chunk + [""] * (batch_size - len(chunk))
            packed = self.pack(tf.constant(padded, tf.string))
            outputs.append(self._embed_fn(packed).numpy()[: len(chunk)])
        return np.concatenate(outputs)

    def build_index(self, texts, batch_size=64):
        """A `NearestNeighborIndex` over the embeddings of `texts` (items: the texts)."""
        texts = list(texts)
        return NearestNeighborIndex(self.embed(texts, batch_size), items=texts)

    def search(self, queries, index, k=5, batch_size=64):
        """The `k` nearest indexed items of each query string, `[(item, cosine), ...]`."""
        if isinstance(queries, str):
            queries = [queries]
        return index.search(self.embed(queries, batch_size), k)

    # === Compile and serialization ===

    def compile(self, optimizer="adam", jit_compile="auto", **kwargs):
        """Sets the optimizer; the contrastive loss is built in.

        Args:
            optimizer: optimizer or name. Defaults to `"adam"`.
            jit_compile: bool or `"auto"`. `"auto"` is Keras's choice, as
                in every keras_pt model: XLA on one GPU or TPU, off on
                CPU-only machines and under a multi-replica strategy.
                Defaults to `"auto"`.
            **kwargs: passed to `keras.Model.compile`.
        """
        self._check_own_loss(kwargs)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.layers.serialize(self.encoder),
                "pooling": self.pooling,
                "temperature": self.temperature,
                "views": self.views,
                "crop_ratio": list(self.crop_ratio),
                "seed": self.seed,
                "preprocessor": self._preprocessor_config(),
            }
        )
        return config
