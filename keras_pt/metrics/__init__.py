"""Keras metrics."""

from keras_pt.metrics.perplexity import Perplexity
