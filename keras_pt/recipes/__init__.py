"""End-to-end recipes: one module per job, on one run context.

Each recipe takes a config dataclass (or keyword arguments that override
its fields), resolves the strategy, seeds and output folder once
(`RunContext`), trains every phase through `keras_pt.training.train` with
its own checkpoint folder, writes only on the chief through `tf.io.gfile`
(local, `gs://` and other TensorFlow filesystems), and returns a result
with a `table()` of its figures beside the baselines a practitioner tries
first.

| recipe | config | binary |
|---|---|---|
| `pretrain_finetune` (image encoder, MLP and SVM heads) | `PretrainFinetuneConfig` | `examples/pretrain_finetune.py` |
| `train_gan` (GAN, Fréchet distance, feature probe) | `GANConfig` | `examples/train_gan.py` |
| `pretrain_minibert` (PPMI vectors; MLM, ELECTRA, crops) | `PretrainMiniBERTConfig` | `examples/pretrain_minibert.py` |
| `finetune_minibert` (few-label classifier) | `FinetuneConfig` | `examples/finetune_minibert.py` |
| `distill_minibert` (knowledge distillation) | `DistillConfig` | `examples/distill.py` |
| `pretrain_minigpt` (causal LM) | `MiniGPTConfig` | `examples/pretrain_minigpt.py` |
| `train_sentence_embeddings` (contrastive) | `SentenceEmbeddingConfig` | `examples/train_sentence_embeddings.py` |
"""

from keras_pt.recipes.context import RunContext, load_model
from keras_pt.recipes.distillation import DistillConfig, DistillResult, distill_minibert
from keras_pt.recipes.gan import GANConfig, GANResult, train_gan
from keras_pt.recipes.minibert_finetuning import FinetuneConfig, FinetuneResult, finetune_minibert
from keras_pt.recipes.minibert_pretraining import (
    PretrainMiniBERTConfig,
    PretrainResult,
    pretrain_minibert,
    unigram_baseline,
)
from keras_pt.recipes.minigpt import DEFAULT_PROMPTS, MiniGPTConfig, MiniGPTResult, pretrain_minigpt
from keras_pt.recipes.pretrain_finetune import (
    HEADS,
    PRETRAINING,
    PretrainFinetuneConfig,
    PretrainFinetuneResult,
    batches_fn,
    pretrain_finetune,
)
from keras_pt.recipes.sentence_embeddings import (
    SentenceEmbeddingConfig,
    SentenceEmbeddingResult,
    train_sentence_embeddings,
)
from keras_pt.recipes.text_common import finetune_splits, heldout_split, tfidf_svm_baseline
