"""Deprecated: the MiniBERT recipes moved to `keras_pt.recipes`.

`keras_pt.recipes.pretrain_minibert`, `finetune_minibert` and
`distill_minibert`; the learning-rate schedule to `keras_pt.schedules`, the
SavedModel export to `keras_pt.export`. These names stay here for one
release.
"""

import warnings

from keras_pt.export import export_text_classifier  # noqa: F401
from keras_pt.recipes.distillation import STUDENT_FILENAME, DistillResult, distill_minibert  # noqa: F401
from keras_pt.recipes.minibert_finetuning import (  # noqa: F401
    CLASSIFIER_FILENAME,
    EXPORT_DIRNAME,
    SCRATCH_CLASSIFIER_FILENAME,
    FinetuneResult,
    finetune_minibert,
)
from keras_pt.recipes.minibert_pretraining import (  # noqa: F401
    MODEL_FILENAME,
    PretrainResult,
    pretrain_minibert,
    unigram_baseline,
)
from keras_pt.recipes.text_common import (  # noqa: F401
    VOCABULARY_FILENAME,
    finetune_splits,
    tfidf_svm_baseline,
)
from keras_pt.schedules import WarmupLinearDecay  # noqa: F401

warnings.warn(
    "keras_pt.bert_recipes is deprecated; use keras_pt.recipes (and keras_pt.schedules, keras_pt.export).",
    DeprecationWarning,
    stacklevel=2,
)
