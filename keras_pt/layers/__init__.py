"""Reusable layers: text tokenization and packing, transformer blocks."""

from keras_pt.layers import special_tokens
from keras_pt.layers.mini_bert_preprocessor import MiniBERTPreprocessor
from keras_pt.layers.wordpiece_tokenizer import WordPieceTokenizer
