"""Reusable layers: tokenization and packing, transformer blocks, BERT embeddings, masked-LM head."""

from keras_pt.layers import special_tokens
from keras_pt.layers.bert_embedding import BertEmbedding
from keras_pt.layers.fast_dropout import FastDropout
from keras_pt.layers.masked_lm_head import MaskedLMHead
from keras_pt.layers.mini_bert_preprocessor import MiniBERTPreprocessor
from keras_pt.layers.transformer_encoder_block import TransformerEncoderBlock
from keras_pt.layers.wordpiece_tokenizer import WordPieceTokenizer
