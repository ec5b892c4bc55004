"""Fitting the answer policy's calibration from labelled questions (used by bench/calibrate.py).

Pure functions on arrays, so they are tested on their own: a logistic regression (Newton steps with
an L2 penalty, on standardised features), a conditional logistic regression that ranks the
candidates of one question against each other, a threshold that keeps false abstention under a
bound, and stratified folds for cross-validation. No scikit-learn: the models have a dozen inputs.
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


def _conditional_loss(groups: list[tuple[np.ndarray, np.ndarray]], w: np.ndarray, l2: float) -> float:
    loss = 0.5 * l2 * float(w @ w)
    for x, y in groups:
        z = x @ w
        top = z.max()
        loss -= np.log(np.exp(z[y] - top).sum()) - np.log(np.exp(z - top).sum())
    return float(loss)


def fit_conditional_logistic(groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float = 1.0,
                             iterations: int = 50) -> np.ndarray:
    """Weights w that rank each group's positive rows above its other rows: the likelihood that a
    softmax of x @ w over a group's rows picks one of its positives (a group is one question's
    candidate sentences; several may hold the evidence), with an L2 penalty. Unlike a logistic
    regression pooled over every question, what differs between questions (how close the best
    passage is, how many words the question has) does not pull the weights: only what tells a
    question's answering sentences from the others does. Groups with no positive or no negative
    row say nothing and are skipped. Newton steps, halved while they do not lower the loss (with
    several positives in a group the loss is not convex everywhere)."""
    usable = []
    for x, y in groups:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=bool)
        if 0 < y.sum() < len(y):
            usable.append((x, y))
    if not usable:
        raise ValueError("no group has both a positive and a negative row")
    d = usable[0][0].shape[1]
    w = np.zeros(d)
    loss = _conditional_loss(usable, w, l2)
    for _ in range(iterations):
        gradient = l2 * w
        hessian = l2 * np.eye(d)
        for x, y in usable:
            z = x @ w
            e = np.exp(z - z.max())
            p = e / e.sum()
            q = np.where(y, e, 0.0)
            q = q / q.sum()
            mean_all, mean_pos = p @ x, q @ x
            gradient += mean_all - mean_pos
            hessian += (x * p[:, None]).T @ x - np.outer(mean_all, mean_all)
            hessian -= (x * q[:, None]).T @ x - np.outer(mean_pos, mean_pos)
        try:
            step = np.linalg.solve(hessian + 1e-9 * np.eye(d), gradient)
        except np.linalg.LinAlgError:
            step = gradient
        if gradient @ step <= 0:     # not a descent direction where the loss is not convex
            step = gradient
        scale = 1.0
        while scale > 1e-6:
            candidate = w - scale * step
            new_loss = _conditional_loss(usable, candidate, l2)
            if new_loss <= loss:
                break
            scale /= 2
        else:
            break
        moved = float(np.max(np.abs(candidate - w)))
        w, loss = candidate, new_loss
        if moved < 1e-8:
            break
    return w


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
