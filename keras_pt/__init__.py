"""keras_pt: pre-train -> fine-tune models for TensorFlow / Keras 3."""

__version__ = "0.1.0"

import os as _os
import sys as _sys


def _import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up lines silenced.

    TensorFlow prints oneDNN, CUDA and CPU-feature notices to the process's
    stderr before its logging is set up, whatever `TF_CPP_MIN_LOG_LEVEL`
    says. Set `KERAS_PT_TF_LOGS=1` (or pass `--tf_logs` to a binary) to see
    them.
    """
    if (
        "tensorflow" in _sys.modules
        or _os.environ.get("KERAS_PT_TF_LOGS") == "1"
        or any(arg in ("--tf_logs", "--tf_logs=true", "--tf_logs=1") for arg in _sys.argv[1:])
    ):
        return
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _sys.stderr.flush()
        saved = _os.dup(2)
    except (AttributeError, OSError, ValueError):
        return
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    _os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the device probes' lines
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


_import_tensorflow_quietly()

from keras_pt import (
    callbacks,
    checkpointing,
    data,
    distribute,
    evaluation,
    kernels,
    layers,
    models,
    recipes,
    schedules,
    special_tokens,
    training,
    utils,
)
from keras_pt.distribute import get_strategy
from keras_pt.models.autoencoder import Autoencoder
from keras_pt.models.denoising_autoencoder import DenoisingAutoencoder
from keras_pt.models.mlp_classifier import MLPClassifier
from keras_pt.models.sim_clr import SimCLR
from keras_pt.models.svm_classifier import SVMClassifier

# GAN pre-training.
from keras_pt.models.discriminator import Discriminator  # noqa: E402
from keras_pt.models.gan import GAN  # noqa: E402
from keras_pt.models.generator import Generator  # noqa: E402

# Knowledge distillation.
from keras_pt.models.distiller import Distiller  # noqa: E402

# MiniBERT.
from keras_pt.models.mini_bert import MiniBERT  # noqa: E402
from keras_pt.models.mini_bert_classifier import MiniBERTClassifier  # noqa: E402
from keras_pt.models.electra_pretrainer import ElectraPretrainer  # noqa: E402

# Causal language model and contrastive sentence embeddings.
from keras_pt import metrics  # noqa: E402
from keras_pt.models.mini_gpt import MiniGPT  # noqa: E402
from keras_pt.models.sentence_encoder import SentenceEncoder  # noqa: E402

# The SavedModel export of text classifiers.
from keras_pt import export  # noqa: E402
