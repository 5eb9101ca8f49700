"""Evaluation: raw-input baselines (linear SVM, logistic regression),
TF-IDF baselines for text classification and retrieval, distances in a
classifier's feature space (generative models), unigram perplexity
(language models), pair retrieval (sentence embeddings)."""

from keras_pt.evaluation.baselines import (
    Spread,
    linear_svm_accuracy,
    logistic_regression_accuracy,
    raw_input_baselines,
)
from keras_pt.evaluation.distances import frechet_distance, kernel_distance
from keras_pt.evaluation.feature_classifier import (
    FeatureClassifier,
    images_array,
    train_feature_classifier,
)
from keras_pt.evaluation.generator_evaluator import GeneratorEvaluator
from keras_pt.evaluation.language_model import next_token_counts, perplexity, unigram_perplexity
from keras_pt.evaluation.retrieval import retrieval_accuracy
from keras_pt.evaluation.text_baselines import (
    TfidfSVM,
    tfidf_retrieval_accuracy,
    tfidf_svm_accuracy,
)
