"""Keras callbacks for training generative models."""

from keras_pt.callbacks.frechet_distance import FrechetDistance
from keras_pt.callbacks.sample_grid import SampleGrid, image_grid
