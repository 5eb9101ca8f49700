"""Deprecated: the MiniGPT and sentence-embedding recipes moved to `keras_pt.recipes`.

These names stay here for one release.
"""

import warnings

from keras_pt.evaluation.text_baselines import tfidf_retrieval_accuracy  # noqa: F401
from keras_pt.recipes.minigpt import DEFAULT_PROMPTS, MiniGPTResult, pretrain_minigpt  # noqa: F401
from keras_pt.recipes.sentence_embeddings import (  # noqa: F401
    SentenceEmbeddingResult,
    train_sentence_embeddings,
)
from keras_pt.recipes.text_common import heldout_split  # noqa: F401

warnings.warn(
    "keras_pt.text_recipes is deprecated; use keras_pt.recipes.",
    DeprecationWarning,
    stacklevel=2,
)
