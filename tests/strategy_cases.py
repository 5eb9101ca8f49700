"""Model cases for the cross-strategy equivalence test.

Each case builds and compiles one public model with SGD (Adam's normalised
steps would hide gradient-scale bugs), gives the unbatched training data,
and optionally an independent reference for the mean loss of a global
batch at the current weights. `tests/strategy_worker.py` trains every
requested case with `keras_pt.training.train` under one strategy.

To add a model, write a `Case` and register it in `CASES` (one line).
"""

import dataclasses
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

import keras_pt

BATCH_SIZE = 16  # global, split over 2 replicas or 2 workers
NUM_EXAMPLES = 32  # two batches per epoch; three steps cross an epoch boundary
STEPS = 3


@dataclasses.dataclass
class Case:
    build: Callable[[], keras.Model]
    data: Callable[[], tf.data.Dataset]
    reference_loss: Optional[Callable] = None  # (model, global batch) -> float
    loss_keys: tuple = ("loss",)
    # Classifiers also validate (accuracy on their data) after each epoch,
    # with early stopping keeping the best epoch's weights.
    classifier: bool = False


def _images(low=0.0, high=1.0):
    rng = np.random.default_rng(0)
    return rng.uniform(low, high, size=(NUM_EXAMPLES, 8, 8, 1)).astype("float32")


def _labels(num_classes=4):
    return (np.arange(NUM_EXAMPLES) * 7 % num_classes).astype("int32")


def _encoder():
    return keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=6, hidden_dims=(16,)).encoder


def _reconstruction_reference(model, batch):
    return float(np.mean(model.per_example_loss(batch, model(batch))))


def _denoising_reference(model, batch):
    # The first step's noise: the seed generator's next draw, undone after.
    state = model.seed_generator.state.numpy()
    noisy = model.corrupt(batch)
    model.seed_generator.state.assign(state)
    return float(np.mean(model.per_example_loss(batch, model(noisy))))


def _softmax_reference(model, batch):
    x, y = batch
    logits = np.asarray(model(x), "float64")
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(y)), np.asarray(y)]))


def _svm_reference(model, batch):
    # The per-step objective 0.5 ||W||^2 / N + C mean(xi), N the examples
    # adapt counted; xi the squared one-vs-rest hinge (the default):
    # sum_j max(0, 1 - t_j s_j)^2 with t_j = +1 for the true class, -1 else.
    x, y = batch
    y = np.asarray(y)
    s = np.asarray(model(x), "float64")
    t = -np.ones_like(s)
    t[np.arange(len(y)), y] = 1.0
    xi = np.sum(np.maximum(0.0, 1.0 - t * s) ** 2, axis=1)
    w = np.asarray(model.svm.kernel, "float64")
    n = float(np.asarray(model.num_train_examples)) or len(y)
    return float(0.5 * np.sum(w**2) / n + model.C * np.mean(xi))


def _autoencoder():
    model = keras_pt.Autoencoder(image_shape=(8, 8, 1), latent_dim=4, hidden_dims=(16,))
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _denoising_autoencoder():
    model = keras_pt.DenoisingAutoencoder(
        image_shape=(8, 8, 1), latent_dim=4, architecture="conv", filters=(4, 8), seed=7
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _mlp():
    model = keras_pt.MLPClassifier(_encoder(), num_classes=4, hidden_dims=(8,), trainable_encoder=True)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _svm():
    model = keras_pt.SVMClassifier(_encoder(), num_classes=4, C=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _sim_clr():
    # Augmentations (crops, jitter, noise) drawn in the step, replica by replica.
    model = keras_pt.SimCLR(image_shape=(8, 8, 1), filters=(4, 8), feature_dim=8, projection_dim=4, seed=3)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _gan():
    gan = keras_pt.GAN(
        keras_pt.Generator([8, 8, 1], latent_dim=8, base_filters=4, hidden_dims=[16, 16]),
        keras_pt.Discriminator([8, 8, 1], base_filters=4, hidden_dims=[16, 16]),
        seed=3,
    )
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    return gan


_VOCAB, _LENGTH = 40, 12


def _packed_texts():
    """Packed `[CLS] tokens [SEP] [PAD]...` of random lengths (ragged masks)."""
    from keras_pt.layers.special_tokens import CLS_ID, NUM_SPECIAL_TOKENS, PAD_ID, SEP_ID

    rng = np.random.default_rng(1)
    lengths = rng.integers(4, _LENGTH + 1, NUM_EXAMPLES)
    ids = rng.integers(NUM_SPECIAL_TOKENS, _VOCAB, (NUM_EXAMPLES, _LENGTH))
    mask = (np.arange(_LENGTH)[None] < lengths[:, None]).astype("int32")
    ids[:, 0] = CLS_ID
    ids[np.arange(NUM_EXAMPLES), lengths - 1] = SEP_ID
    ids = np.where(mask == 1, ids, PAD_ID).astype("int32")
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def _mini_bert_backbone():
    return keras_pt.MiniBERT(
        vocabulary_size=_VOCAB,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=_LENGTH,
        dropout=0.1,  # dropout and masks: replica-consistent draws
        seed=5,
    )


def _mini_bert():
    model = _mini_bert_backbone()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _mini_bert_classifier():
    model = keras_pt.MiniBERTClassifier(_mini_bert_backbone(), num_classes=4, dropout=0.1, seed=6)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _electra():
    model = keras_pt.ElectraPretrainer(_mini_bert_backbone(), generator_intermediate_dim=16, seed=7)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _mini_gpt():
    model = keras_pt.MiniGPT(
        vocabulary_size=_VOCAB,
        num_layers=1,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=_LENGTH,
        dropout=0.1,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
    return model


def _sentence_encoder():
    # Crop views: both spans of every text are drawn in the step from the
    # model's seed generator, replica by replica; candidates are all-gathered.
    model = keras_pt.SentenceEncoder(_mini_bert_backbone().encoder, temperature=0.1, views="crop", seed=11)
    model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
    return model


def _distiller():
    teacher = keras_pt.MiniBERTClassifier(_mini_bert_backbone(), num_classes=4, dropout=0.0, seed=9)
    student = keras_pt.MiniBERTClassifier(_mini_bert_backbone(), num_classes=4, dropout=0.1, seed=10)
    model = keras_pt.Distiller(teacher, student, temperature=2.0, alpha=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


CASES = {
    "autoencoder": Case(
        _autoencoder,
        lambda: tf.data.Dataset.from_tensor_slices(_images()),
        _reconstruction_reference,
    ),
    "denoising_autoencoder": Case(
        _denoising_autoencoder,
        lambda: tf.data.Dataset.from_tensor_slices(_images()),
        _denoising_reference,
    ),
    "mlp_classifier": Case(
        _mlp,
        lambda: tf.data.Dataset.from_tensor_slices((_images(), _labels())),
        _softmax_reference,
        ("loss", "accuracy"),
        classifier=True,
    ),
    "svm_classifier": Case(
        _svm,
        lambda: tf.data.Dataset.from_tensor_slices((_images(), _labels())),
        _svm_reference,
        ("loss", "accuracy"),
        classifier=True,
    ),
    "sim_clr": Case(
        _sim_clr,
        lambda: tf.data.Dataset.from_tensor_slices(_images()),
        None,
        # Not view_accuracy: an argmax over near-tied similarities of an
        # 8-feature network flips on rounding (the loss and weights agree).
        ("loss",),
    ),
    "gan": Case(
        _gan,
        lambda: tf.data.Dataset.from_tensor_slices(_images(-1.0, 1.0)),
        None,
        ("loss", "d_loss", "g_loss"),
    ),
    "mini_bert": Case(
        _mini_bert,
        lambda: tf.data.Dataset.from_tensor_slices(_packed_texts()),
        None,
        ("loss", "mlm_accuracy"),
    ),
    "electra": Case(
        _electra,
        lambda: tf.data.Dataset.from_tensor_slices(_packed_texts()),
        None,
        ("loss", "mlm_loss", "rtd_loss", "rtd_accuracy"),
    ),
    "mini_gpt": Case(
        _mini_gpt,
        lambda: tf.data.Dataset.from_tensor_slices(_packed_texts()),
        None,
        ("loss", "perplexity"),
    ),
    "sentence_encoder": Case(
        _sentence_encoder,
        lambda: tf.data.Dataset.from_tensor_slices(_packed_texts()),
        None,
        ("loss", "accuracy"),
    ),
    "distiller": Case(
        _distiller,
        lambda: tf.data.Dataset.from_tensor_slices((_packed_texts(), _labels())),
        None,
    ),
    "mini_bert_classifier": Case(
        _mini_bert_classifier,
        lambda: tf.data.Dataset.from_tensor_slices((_packed_texts(), _labels())),
        None,
        ("loss", "accuracy"),
        classifier=True,
    ),
}
