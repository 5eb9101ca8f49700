"""MiniBERTClassifier: fine-tunes a MiniBERT encoder for text classification."""

import keras

from keras_pt.layers.fast_dropout import FastDropout
from keras_pt.models.encoder_classifier import assert_labels
from keras_pt.models.mini_bert import MiniBERT
from keras_pt.models.text_model import (
    POOLINGS,
    TextModel,
    compile_from_config,
    pool,
    resolve_pooling,
)
from keras_pt.utils.deprecation import warn_renamed

# The pooling names this head takes (once POOLING, with "cls").
POOLING = POOLINGS


@keras.saving.register_keras_serializable(package="keras_pt")
class MiniBERTClassifier(TextModel, keras.Model):
    """Sentence (or sentence-pair) classifier on a MiniBERT encoder.

    `logits = Dense(Dropout(pooled))`. With `pooling="pooled"` (the default)
    `pooled` is the encoder's pooled `[CLS]` vector (the tanh pooler), as in
    BERT's fine-tuning recipe; with `pooling="mean"` it is the mean of the
    sequence output over the real (unpadded) tokens, which suits an encoder
    pre-trained by masked-LM alone (its `[CLS]` pooler gets no pre-training
    signal without a next-sentence task); with `pooling="first_token"` it is
    the raw sequence output at `[CLS]`. `call(inputs)` takes the packed dict `{"token_ids",
    "segment_ids", "padding_mask"}` (int `(batch, seq_len)`) and returns
    logits `(batch, num_classes)`. With a `preprocessor`, `inputs` may also
    be raw strings `(batch,)` or a tuple of two string batches (sentence
    pairs), which are packed first, so `predict(["some text"])` works.

    For training, map the preprocessor over the data set on the host
    (`keras_pt.data`) and `fit` on packed `(dict, label)` batches: string
    ops cannot run in an XLA/TPU step, and host-side tokenization overlaps
    with training. `compile()` defaults to sparse categorical
    cross-entropy from logits and an `"accuracy"` metric.

    Args:
        backbone: `MiniBERT` (its `encoder` is used) or an encoder
            `keras.Model` from the packed dict to a dict with
            `"pooled_output"`.
        num_classes: int. Number of classes.
        dropout: float. Dropout on the pooled vector. Defaults to 0.1.
        preprocessor: Keras layer or None. Maps raw strings to the packed
            dict (e.g. `MiniBERTPreprocessor`); saved with the model.
            Defaults to None, i.e. the backbone's `preprocessor` if it has
            one (that one is saved with the backbone).
        trainable_encoder: bool. Fine-tune the encoder (True) or train the
            head only (False); the old name `trainable_backbone` is
            deprecated. Defaults to True.
        seed: int or None. Seed of the head's dropout. Defaults to None.
        pooling: `"pooled"`, `"mean"` or `"first_token"` (see
            `keras_pt.models.text_model.POOLINGS`). What the head reads; the
            old `"cls"` means `"pooled"` (deprecated). Defaults to
            `"pooled"`.

    Example:

    >>> backbone = MiniBERT.from_preset("tiny", vocabulary_size=100,
    ...                                 max_sequence_length=16)
    >>> classifier = MiniBERTClassifier(backbone, num_classes=3)
    >>> classifier.compile(optimizer="adam")
    >>> ids = np.random.randint(5, 100, size=(8, 16)).astype("int32")
    >>> x = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
    ...      "padding_mask": np.ones_like(ids)}
    >>> history = classifier.fit(x, np.arange(8) % 3, batch_size=4, verbose=0)
    >>> classifier.predict(x, verbose=0).shape
    (8, 3)
    """

    # The config holds two serialized layers.
    _SERIALIZED_LAYERS = ("backbone", "preprocessor")

    def __init__(
        self,
        backbone,
        num_classes,
        dropout=0.1,
        preprocessor=None,
        trainable_encoder=True,
        seed=None,
        pooling="pooled",
        trainable_backbone=None,
        **kwargs,
    ):
        if isinstance(backbone, MiniBERT):
            encoder = backbone.encoder
        elif isinstance(backbone, keras.Model) and "pooled_output" in _output_names(backbone):
            encoder = backbone
        else:
            raise ValueError(
                "backbone must be a MiniBERT or an encoder keras.Model whose "
                f"outputs include 'pooled_output'; got {type(backbone).__name__}."
            )
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}.")
        pooling = resolve_pooling(pooling, "MiniBERTClassifier", cls_means="pooled")
        if trainable_backbone is not None:
            warn_renamed("MiniBERTClassifier(trainable_backbone=...)", "trainable_encoder=...")
            trainable_encoder = trainable_backbone
        super().__init__(**kwargs)
        # Inputs may be int id dicts or strings: keep Keras from casting them.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.classifier_dropout = FastDropout(float(dropout), seed=seed, name="classifier_dropout")
        self.logits_dense = keras.layers.Dense(
            int(num_classes),
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="logits",
        )
        self.logits_dense.build((None, _pooled_dim(encoder)))

        # === Config ===
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.trainable_encoder = bool(trainable_encoder)
        self.seed = seed
        self.pooling = pooling
        self.backbone.trainable = self.trainable_encoder
        self.built = True

    @property
    def trainable_backbone(self):
        """Deprecated: `trainable_encoder`."""
        warn_renamed("MiniBERTClassifier.trainable_backbone", "trainable_encoder")
        return self.trainable_encoder

    @property
    def encoder(self):
        """The encoder the head sits on (packed dict -> sequence/pooled outputs)."""
        if isinstance(self.backbone, MiniBERT):
            return self.backbone.encoder
        return self.backbone

    def _without_mlm_head(self, weights):
        # A MiniBERT backbone's masked-LM head plays no part in classification,
        # nor its [CLS] pooler under mean pooling.
        if isinstance(self.backbone, MiniBERT):
            unused = list(self.backbone.mlm_head.weights)
            if self.pooling != "pooled":
                unused += self.backbone.pooled_dense.weights
            unused = {id(w) for w in unused}
            weights = [w for w in weights if id(w) not in unused]
        return weights

    @property
    def trainable_weights(self):
        return self._without_mlm_head(super().trainable_weights)

    @property
    def trainable_variables(self):
        return self._without_mlm_head(super().trainable_variables)

    def _preprocessor(self):
        if self.preprocessor is not None:
            return self.preprocessor
        return getattr(self.backbone, "preprocessor", None)

    def call(self, inputs, training=False):
        # Float ids (Keras builds compiled metrics under a multi-replica
        # strategy from a MEAN-reduced copy of the first batch) are cast back.
        packed = self.pack_inputs(inputs)
        if isinstance(self.backbone, MiniBERT):
            self.backbone.embedding.check_sequence_length(packed["token_ids"].shape[1])
        outputs = self.encoder(packed, training=training)
        pooled = pool(outputs, packed["padding_mask"], self.pooling)  # (batch, hidden)
        pooled = self.classifier_dropout(pooled, training=training)
        return self.logits_dense(pooled)  # (batch, num_classes)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is not None:
            y = assert_labels(y, self.num_classes)
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Defaults: AdamW(5e-5, weight_decay=0.01) (BERT's fine-tuning
        setting, without warm-up), sparse categorical cross-entropy from
        logits, and `"accuracy"`."""
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=5e-5, weight_decay=0.01)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        compile_from_config(self, config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "num_classes": self.num_classes,
                "dropout": self.dropout,
                "preprocessor": self._preprocessor_config(),
                "trainable_encoder": self.trainable_encoder,
                "seed": self.seed,
                "pooling": self.pooling,
            }
        )
        return config


def _output_names(model):
    outputs = model.output
    return set(outputs) if isinstance(outputs, dict) else set()


def _pooled_dim(encoder):
    pooled = encoder.output["pooled_output"]
    dim = pooled.shape[-1]
    if dim is None:
        raise ValueError("the encoder's pooled_output needs a known last dimension.")
    return int(dim)
