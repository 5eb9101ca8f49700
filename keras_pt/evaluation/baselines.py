"""Classical baselines: linear classifiers on raw inputs (pixels, TF-IDF, ...).

A pre-trained encoder is only worth its cost if a classifier on its
features beats what a practitioner tries first: a linear SVM or a logistic
regression on the raw inputs. These functions fit scikit-learn's
`LinearSVC` and `LogisticRegression` on any `(examples, ...)` arrays
(flattened to vectors) and return the test accuracy, so recipes can put
them in the same table as their heads, on the same label draws.
"""

import dataclasses

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

BASELINES = ("linear_svm", "logistic_regression")


def _vectors(x):
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float64)


def linear_svm_accuracy(train_x, train_y, test_x, test_y, C=1.0):
    """Test accuracy of scikit-learn's `LinearSVC` fitted on the raw inputs.

    Its defaults (squared hinge, one-vs-rest, `C=1`) on the flattened inputs
    as they are (no rescaling): the baseline a practitioner runs first.

    Args:
        train_x: array `(examples, ...)`. Training inputs.
        train_y: int array `(examples,)`. Training labels.
        test_x: array `(test_examples, ...)`. Test inputs.
        test_y: int array `(test_examples,)`. Test labels.
        C: float. `LinearSVC`'s `C`. Defaults to 1.0.

    Returns:
        float, the test accuracy.
    """
    model = LinearSVC(C=C, max_iter=20000)
    model.fit(_vectors(train_x), np.asarray(train_y).reshape(-1))
    return float(model.score(_vectors(test_x), np.asarray(test_y).reshape(-1)))


def logistic_regression_accuracy(train_x, train_y, test_x, test_y, C=1.0):
    """Test accuracy of scikit-learn's (multinomial, L2) `LogisticRegression`.

    Args:
        train_x: array `(examples, ...)`. Training inputs.
        train_y: int array `(examples,)`. Training labels.
        test_x: array `(test_examples, ...)`. Test inputs.
        test_y: int array `(test_examples,)`. Test labels.
        C: float. Inverse regularisation strength. Defaults to 1.0.

    Returns:
        float, the test accuracy.
    """
    model = LogisticRegression(C=C, max_iter=5000)
    model.fit(_vectors(train_x), np.asarray(train_y).reshape(-1))
    return float(model.score(_vectors(test_x), np.asarray(test_y).reshape(-1)))


BASELINE_FUNCTIONS = {
    "linear_svm": linear_svm_accuracy,
    "logistic_regression": logistic_regression_accuracy,
}


@dataclasses.dataclass
class Spread:
    """Mean and standard deviation of a figure over label draws.

    Attributes:
        values: list of float, one per draw.
    """

    values: list

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def std(self):
        return float(np.std(self.values))

    def __str__(self):
        return f"{self.mean:.3f} ± {self.std:.3f}"


def raw_input_baselines(draws, test_x, test_y, names=BASELINES):
    """Every baseline on every label draw.

    Args:
        draws: list of `(train_x, train_y)` pairs, one per label draw.
        test_x: array. Test inputs.
        test_y: int array. Test labels.
        names: baselines to run, from `BASELINES`.

    Returns:
        dict mapping each name to a `Spread` of test accuracies.
    """
    unknown = [n for n in names if n not in BASELINE_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {', '.join(BASELINES)}.")
    return {name: Spread([BASELINE_FUNCTIONS[name](x, y, test_x, test_y) for x, y in draws]) for name in names}
