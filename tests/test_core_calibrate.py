"""calibrate: fitting the answer policy (pure functions)."""
from __future__ import annotations

import numpy as np

import pytest

from faq_bot.calibrate import choose_threshold, fit_conditional_logistic, fit_logistic, standardise, stratified_folds


def test_logistic_separates_and_stays_finite():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    w, b = fit_logistic(x, np.array([0, 0, 1, 1]), l2=1.0)
    p = 1 / (1 + np.exp(-(x[:, 0] * w[0] + b)))
    assert w[0] > 0 and p[0] < 0.5 < p[3] and np.isfinite(b)


def _question(level: float, positive: int, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One question's candidates: column 0 tells its answering row (rank), column 1 is the same
    for all its rows (a question-level signal, e.g. how close its best passage is)."""
    tells = np.linspace(0.0, 1.0, n)
    tells[[positive, n - 1]] = tells[[n - 1, positive]]     # the positive gets the largest value
    return np.c_[tells, np.full(n, level)], (np.arange(n) == positive).astype(int)


def test_conditional_logistic_ranks_within_each_question_and_ignores_question_level_signals():
    # questions with a high level have more answering rows: a pooled logistic leans on the level
    groups = [_question(level, positive) for level, positive in ((0.0, 0), (0.0, 2), (1.0, 1), (1.0, 3))]
    groups += [(np.c_[np.linspace(0.0, 1.0, 4), np.ones(4)], np.array([0, 1, 1, 1]))]
    w = fit_conditional_logistic(groups, l2=1.0)
    assert w[0] > 0 and abs(w[1]) < 1e-9
    for x, y in groups[:4]:
        assert int(np.argmax(x @ w)) == int(np.flatnonzero(y)[0])
    pooled, _ = fit_logistic(np.vstack([x for x, _ in groups]), np.concatenate([y for _, y in groups]))
    assert pooled[1] > 0.1


def test_conditional_logistic_takes_several_positives_and_skips_groups_that_say_nothing():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    w = fit_conditional_logistic([(x, np.array([0, 0, 1, 1])), (x, np.zeros(4)), (x, np.ones(4))], l2=1.0)
    assert w[0] > 0 and np.isfinite(w).all()
    with pytest.raises(ValueError, match="positive and a negative"):
        fit_conditional_logistic([(x, np.zeros(4))])


def test_standardise_constant_column():
    mean, scale = standardise(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert mean.tolist() == [2.0, 5.0] and scale.tolist() == [1.0, 1.0]


def test_threshold_bounds_false_abstention():
    p = [0.1, 0.2, 0.3, 0.8, 0.9]
    assert choose_threshold(p, [0, 0, 1, 1, 1], 0.0) == 0.25      # halfway between 0.2 and 0.3
    # allowed to refuse one answerable question in three, it refuses both unanswerable ones
    t = choose_threshold([0.1, 0.2, 0.3, 0.8, 0.9], [0, 1, 0, 1, 1], 0.34)
    assert 0.3 < t < 0.8


def test_threshold_bound_holds_in_every_group():
    p = [0.1, 0.2, 0.3, 0.4, 0.8, 0.9]
    y = [0, 1, 0, 1, 1, 1]
    groups = ["en", "en", "zh", "zh", "zh", "en"]
    # overall one refusal in four is allowed; within English one in two would be: so nothing English
    assert choose_threshold(p, y, 0.25) > 0.3
    assert choose_threshold(p, y, 0.25, groups) < 0.2


def test_folds_spread_every_kind():
    folds = stratified_folds(list("aaabbbccc"), 3)
    assert sorted(i for f in folds for i in f) == list(range(9))
    labels = list("aaabbbccc")
    assert all(sorted(labels[i] for i in f) == ["a", "b", "c"] for f in folds)


def test_fold_draws_are_shuffled_within_kind_repeatably():
    labels = list("aaaaaabbbbbbcccccc")
    draws = [stratified_folds(labels, 3, seed=seed) for seed in range(5)]
    for folds in draws:
        assert sorted(i for f in folds for i in f) == list(range(18))
        assert all(sorted(labels[i] for i in f) == list("aabbcc") for f in folds)
    assert len({str(folds) for folds in draws}) > 1                 # the draws differ
    assert stratified_folds(labels, 3, seed=2) == draws[2]          # and each is repeatable
