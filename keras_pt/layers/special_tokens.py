"""The special tokens, also importable from here (see `keras_pt.special_tokens`)."""

from keras_pt.special_tokens import *  # noqa: F401,F403
from keras_pt.special_tokens import (  # noqa: F401
    CLS_ID,
    CLS_TOKEN,
    MASK_ID,
    MASK_TOKEN,
    NUM_SPECIAL_TOKENS,
    PAD_ID,
    PAD_TOKEN,
    SEP_ID,
    SEP_TOKEN,
    SPECIAL_TOKENS,
    UNK_ID,
    UNK_TOKEN,
)
