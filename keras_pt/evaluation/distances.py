"""Distances between two sets of feature vectors (host-side NumPy).

`frechet_distance` is the Fréchet distance between Gaussians fitted to the two
sets (the FID recipe, Heusel et al., 2017); `kernel_distance` is the unbiased
squared MMD with the cubic polynomial kernel (KID, Bińkowski et al., 2018),
averaged over random subsets. Both are computed in float64 on the host.
"""

import numpy as np


def _check_features(name, features):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a (num_examples, feature_dim) array; got shape {features.shape}.")
    if features.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 examples to estimate statistics; got {features.shape[0]}.")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return features


def _check_pair(features_a, features_b):
    a = _check_features("features_a", features_a)
    b = _check_features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}.")
    return a, b


def frechet_distance(features_a, features_b):
    """`||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`.

    Args:
        features_a: array `(n_a, feature_dim)`.
        features_b: array `(n_b, feature_dim)`.

    Returns:
        A non-negative Python float.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(2000, 3))
    >>> round(frechet_distance(a, a + 2.0), 3)  # shift by 2 in 3 dims
    12.0
    """
    a, b = _check_pair(features_a, features_b)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    # Tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)),
    # a symmetric PSD matrix: stable even when the covariances are singular.
    eigvals, eigvecs = np.linalg.eigh(cov_a)
    sqrt_a = (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T
    inner = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_covmean = np.sum(np.sqrt(np.clip(inner, 0.0, None)))
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_covmean
    return float(max(value, 0.0))


def _polynomial_mmd(x, y):
    dim = x.shape[1]
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    m, n = len(x), len(y)
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return sum_xx + sum_yy - 2.0 * k_xy.mean()


def kernel_distance(features_a, features_b, num_subsets=10, subset_size=1000, seed=0):
    """Unbiased squared MMD with `k(x, y) = (x.y / d + 1)^3`, subset-averaged.

    Args:
        features_a: array `(n_a, feature_dim)`.
        features_b: array `(n_b, feature_dim)`.
        num_subsets: int. Random subsets averaged over. Defaults to 10.
        subset_size: int. Examples per subset (capped at the smaller set).
            Defaults to 1000.
        seed: int. Seed of the subset draws. Defaults to 0.

    Returns:
        A Python float (unbiased, so it can be slightly negative when the
        sets come from one distribution).
    """
    a, b = _check_pair(features_a, features_b)
    size = min(int(subset_size), len(a), len(b))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(num_subsets)):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        values.append(_polynomial_mmd(x, y))
    return float(np.mean(values))
