"""A full-batch solver for the linear multi-class SVM objective.

Minimises `0.5·||W||² + C·Σ_i ξ_i` over `W (features, classes)` and an
unpenalised bias `b (classes,)`, with `ξ_i` the multi-class hinge of
`keras_pt.kernels.hinge` (Crammer–Singer or one-vs-rest, plain or squared)
of the scores `s_i = z_i·W + b`. The plain hinges are not differentiable,
so the solver minimises smoothed versions (the max replaced by `μ·log Σ
exp(·/μ)`, which exceeds it by at most `μ·log(terms)`) with L-BFGS for a
decreasing sequence of `μ`, each run starting from the last one's
solution; the squared hinges are differentiable and solved directly.
Runs on the host in float64 (the few-label problems of a linear probe are
small: examples x features x classes of a few million at most).
"""

import numpy as np
from scipy import optimize

SMOOTHING = (1.0, 0.1, 1e-2, 1e-3)


def _logsumexp(values, axis):
    top = np.max(values, axis=axis, keepdims=True)
    return (top + np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True))).squeeze(axis)


def _softmax(values, axis):
    e = np.exp(values - np.max(values, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _slack_and_gradient(scores, labels, variant, squared, mu):
    """Per-example slack (smoothed by `mu` where not squared) and d slack / d scores."""
    n, k = scores.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    if variant == "crammer_singer":
        true = np.sum(onehot * scores, axis=1, keepdims=True)
        margins = scores - true + (1.0 - onehot)  # (n, k); 0 at the true class
        if squared:
            slack = np.max(margins, axis=1)  # >= 0 (the true class gives 0)
            winner = np.zeros_like(margins)
            winner[np.arange(n), np.argmax(margins, axis=1)] = 1.0
            grad = winner - onehot * np.sum(winner, axis=1, keepdims=True)
            return slack**2, 2.0 * slack[:, None] * grad
        slack = mu * _logsumexp(margins / mu, axis=1)
        p = _softmax(margins / mu, axis=1)
        return slack, p - onehot
    signs = 2.0 * onehot - 1.0
    u = 1.0 - signs * scores  # (n, k)
    if squared:
        hinge = np.maximum(u, 0.0)
        return np.sum(hinge**2, axis=1), -2.0 * signs * hinge
    # mu·softplus(u / mu), its derivative sigmoid(u / mu)
    slack = np.sum(mu * np.logaddexp(0.0, u / mu), axis=1)
    return slack, -signs * (0.5 * (1.0 + np.tanh(0.5 * u / mu)))


def svm_objective(weights, bias, features, labels, C, variant="crammer_singer", squared=False):
    """The exact objective `0.5·||W||² + C·Σ ξ_i` (float64)."""
    scores = np.asarray(features, np.float64) @ weights + bias
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n, k = scores.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    if variant == "crammer_singer":
        true = np.sum(onehot * scores, axis=1, keepdims=True)
        slack = np.max(scores - true + (1.0 - onehot), axis=1)  # (n,)
        slack = slack**2 if squared else slack
    else:
        terms = np.maximum(1.0 - (2.0 * onehot - 1.0) * scores, 0.0)  # (n, k)
        slack = np.sum(terms**2 if squared else terms, axis=1)
    return float(0.5 * np.sum(np.square(weights)) + C * np.sum(slack))


def solve_linear_svm(
    features,
    labels,
    num_classes,
    C=1.0,
    variant="crammer_singer",
    squared=False,
    initial=None,
    max_iterations=500,
):
    """Minimises the linear SVM objective on fixed features.

    Args:
        features: float array `(examples, features)`.
        labels: int array `(examples,)`, in `[0, num_classes)`.
        num_classes: int.
        C: float. Weight of the summed slack.
        variant: `"crammer_singer"` or `"one_vs_rest"`.
        squared: bool. Squared hinge.
        initial: optional `(W, b)` to start from. Defaults to zeros.
        max_iterations: int. L-BFGS iterations per smoothing level.

    Returns:
        `(W, b)`: float64 arrays `(features, num_classes)` and `(num_classes,)`.
    """
    z = np.asarray(features, np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n, d = z.shape
    k = int(num_classes)
    if initial is None:
        params = np.zeros(d * k + k)
    else:
        params = np.concatenate([np.ravel(initial[0]), np.ravel(initial[1])]).astype(np.float64)

    def unpack(p):
        return p[: d * k].reshape(d, k), p[d * k :]

    def loss(p, mu):
        w, b = unpack(p)
        slack, dslack = _slack_and_gradient(z @ w + b, labels, variant, squared, mu)
        value = 0.5 * np.sum(w * w) + C * np.sum(slack)
        grad_scores = C * dslack  # (n, k)
        grad = np.concatenate([np.ravel(w + z.T @ grad_scores), np.sum(grad_scores, axis=0)])
        return value, grad

    levels = (0.0,) if squared else SMOOTHING
    for mu in levels:
        result = optimize.minimize(
            loss,
            params,
            args=(mu,),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iterations, "gtol": 1e-10, "ftol": 1e-14},
        )
        params = result.x
    return unpack(params)
