"""Evaluation of generative models: distances in a classifier's feature space."""

from keras_pt.evaluation.distances import frechet_distance, kernel_distance
from keras_pt.evaluation.feature_classifier import (
    FeatureClassifier,
    images_array,
    train_feature_classifier,
)
from keras_pt.evaluation.generator_evaluator import GeneratorEvaluator
