"""Fitting the answer policy's calibration from labelled questions (used by bench/calibrate.py).

Pure functions on arrays, so they are tested on their own: a logistic regression (Newton steps with
an L2 penalty, on standardised features), a threshold that keeps false abstention under a bound,
and stratified folds for cross-validation. No scikit-learn: the model has five inputs.
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and spreads (1 where a column is constant, so it divides safely)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 100) -> tuple[np.ndarray, float]:
    """Weights and bias of P(y=1) = sigmoid(x @ w + b), by Newton's method with an L2 penalty on w
    (not on b). With few labelled questions the penalty keeps the weights from running off when
    a feature separates the classes perfectly."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.diag([l2] * d + [0.0])
    for _ in range(iterations):
        z = np.clip(design @ theta, -40, 40)
        p = 1.0 / (1.0 + np.exp(-z))
        gradient = design.T @ (p - y) + penalty @ theta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:d], float(theta[d])


def choose_threshold(p: Sequence[float], y: Sequence[int], max_false_abstention: float,
                     groups: Sequence[str] | None = None) -> float:
    """The probability below which to refuse: among cuts that refuse at most `max_false_abstention`
    of the answerable questions (y=1) in every group (e.g. language), the one that refuses the most
    unanswerable ones (y=0) with the fewest answerable ones; placed halfway between the last refused
    and the first answered probability, so a new question near the edge is not decided by where
    one training question fell."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=int)
    if not p.size:
        raise ValueError("no probabilities to choose a threshold from")
    g = np.asarray(groups if groups is not None else [""] * len(p))
    group_sizes = {name: max(int(((g == name) & (y == 1)).sum()), 1) for name in set(g.tolist())}
    order = np.unique(p)
    cuts = np.concatenate([[order[0] - 1e-6] if order.size else [0.0], (order[:-1] + order[1:]) / 2,
                           [order[-1] + 1e-6] if order.size else [1.0]])
    positives = max(int((y == 1).sum()), 1)
    negatives = max(int((y == 0).sum()), 1)
    best = None
    for t in cuts:
        false_abstention = float(((p < t) & (y == 1)).sum()) / positives
        worst = max(float(((p < t) & (y == 1) & (g == name)).sum()) / size for name, size in group_sizes.items())
        if worst > max_false_abstention + 1e-12:
            continue
        abstention = float(((p < t) & (y == 0)).sum()) / negatives
        key = (abstention, -false_abstention, -t)
        if best is None or key > best[0]:
            best = (key, float(t))
    return best[1] if best else 0.0


def stratified_folds(labels: Sequence[str], k: int, seed: int | None = None) -> list[list[int]]:
    """k folds of item indices, each kind spread over all folds: in file order, round robin
    (seed None), or shuffled within each kind by `seed`, for another draw of the same folds' shape.
    With ~100 questions one question moves a figure by a point: the mean over several draws says
    more than one draw."""
    rng = random.Random(seed) if seed is not None else None
    folds: list[list[int]] = [[] for _ in range(k)]
    position = rng.randrange(k) if rng else 0
    for label in sorted(set(labels)):
        members = [i for i, l in enumerate(labels) if l == label]
        if rng:
            rng.shuffle(members)
        for i in members:
            folds[position % k].append(i)
            position += 1
    return [sorted(f) for f in folds]
