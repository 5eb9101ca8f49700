"""keras_pt: pre-train -> fine-tune models for TensorFlow / Keras 3."""

__version__ = "0.1.0"

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

# Causal language model and contrastive sentence embeddings.
from keras_pt import metrics  # noqa: E402
from keras_pt.models.mini_gpt import MiniGPT  # noqa: E402
from keras_pt.models.sentence_encoder import SentenceEncoder  # noqa: E402

# MiniBERT recipes (registers the learning-rate schedule saved with models).
from keras_pt import bert_recipes  # noqa: E402
