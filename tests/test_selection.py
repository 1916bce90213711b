import math
import re

import numpy as np
import pandas as pd
import pytest

from chatsr.search.selection import pareto_front, penalized_loss, select_best


def table(complexity, loss, **extra):
    return pd.DataFrame({"complexity": complexity, "loss": loss, **extra})


# the front ----------------------------------------------------------------------------------------
def test_dominated_rows_are_dropped_and_the_front_is_sorted():
    candidates = table([6, 3, 1, 2, 3, 4], [0.05, 1.0, 10.0, 12.0, 0.5, 0.5],
                       equation=["f", "d", "a", "b", "c", "e"])
    front = pareto_front(candidates)
    # b: worse than the simpler a; d: not the best of complexity 3; e: no better than c
    assert front["equation"].tolist() == ["a", "c", "f"]
    assert front["complexity"].tolist() == [1, 3, 6]
    assert front.index.tolist() == [2, 4, 0]  # labels of the candidates
    assert list(front.columns) == ["complexity", "loss", "equation", "score"]


def test_scores_are_log_loss_drops_per_node():
    front = pareto_front(table([6, 3, 1], [0.05, 0.5, 10.0]))
    # 0; ln(10 / 0.5) / (3 - 1); ln(0.5 / 0.05) / (6 - 3)
    expected = [0.0, math.log(20) / 2, math.log(10) / 3]
    np.testing.assert_allclose(front["score"], expected, rtol=1e-12)


def test_score_is_relative_to_the_previous_front_row_not_to_dropped_rows():
    front = pareto_front(table([1, 2, 4], [8.0, 9.0, 2.0]))
    assert front["complexity"].tolist() == [1, 4]
    np.testing.assert_allclose(front["score"], [0.0, math.log(4) / 3], rtol=1e-12)


def test_ties_within_a_complexity_keep_the_first_row():
    front = pareto_front(table([2, 1, 2], [0.5, 1.0, 0.5], equation=["first", "a", "second"]))
    assert front["equation"].tolist() == ["a", "first"]


def test_zero_loss_gets_a_large_finite_score():
    front = pareto_front(table([1, 3], [1.0, 0.0]))
    assert front["loss"].tolist() == [1.0, 0.0]
    score = front["score"].iloc[1]
    assert np.isfinite(score) and score > 300  # -log(tiny) / 2 is about 354
    assert select_best(front)["complexity"] == 3  # threshold 1.5 * 0 keeps only the exact row


def test_non_finite_losses_are_left_out():
    front = pareto_front(table([1, 2, 3], [np.nan, np.inf, 2.0]))
    assert front["complexity"].tolist() == [3]
    assert front["score"].tolist() == [0.0]


def test_empty_candidates_give_an_empty_front():
    front = pareto_front(table([], []))
    assert front.empty and "score" in front.columns


# selection ----------------------------------------------------------------------------------------
@pytest.fixture
def front():
    # scores: 0, ln 100 = 4.61, ln 10 / 2 = 1.15, ln(10/9) = 0.105, ln(9/8) / 2 = 0.059
    return pareto_front(table([1, 2, 4, 5, 7], [100.0, 1.0, 0.1, 0.09, 0.08]))


@pytest.mark.parametrize("mode, complexity", [
    ("best", 4),  # losses <= 0.12 are complexities 4, 5, 7; 4 scores highest
    ("accuracy", 7),
    ("score", 2),
])
def test_each_selection_mode(front, mode, complexity):
    assert select_best(front, model_selection=mode)["complexity"] == complexity


def test_best_is_the_default_and_the_row_keeps_its_label(front):
    chosen = select_best(front)
    assert chosen["complexity"] == 4 and chosen.name == front.index[2]
    assert select_best(front, "accuracy")["complexity"] == 7  # the mode may be positional


def test_tied_scores_choose_the_simplest():
    front = table([1, 2, 3], [1.2, 1.1, 1.0], score=[0.0, 0.5, 0.5])
    assert select_best(front)["complexity"] == 2
    assert select_best(front, model_selection="score")["complexity"] == 2


def test_a_single_row_is_chosen_by_every_mode():
    front = pareto_front(table([3], [0.4]))
    for mode in ("best", "accuracy", "score"):
        assert select_best(front, model_selection=mode)["complexity"] == 3


def test_accuracy_needs_no_score():
    assert select_best(table([1, 2], [2.0, 1.0]), model_selection="accuracy")["loss"] == 1.0


# bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("candidates, error, message", [
    ([{"complexity": 1, "loss": 1.0}], TypeError,
     "candidates must be a pandas DataFrame, got list"),
    (pd.DataFrame({"complexity": [1]}), ValueError, "missing loss"),
    (table([1, 2.5], [1.0, 0.5]), ValueError, "complexity must hold whole numbers, got 2.5"),
    (table([1, None], [1.0, 0.5]), ValueError, "complexity must hold whole numbers"),
    (table([1, 2], [1.0, -0.5]), ValueError, "loss must be a mean squared error (>= 0), got -0.5"),
])
def test_bad_candidates(candidates, error, message):
    with pytest.raises(error, match=re.escape(message)):
        pareto_front(candidates)


def test_unknown_mode(front):
    with pytest.raises(ValueError, match="model_selection must be 'best', 'accuracy' or 'score', "
                                         "got 'simplest'"):
        select_best(front, model_selection="simplest")


def test_empty_table():
    with pytest.raises(ValueError, match="front is empty"):
        select_best(pareto_front(table([], [])))


def test_missing_score_column():
    with pytest.raises(ValueError, match="missing score"):
        select_best(table([1], [1.0]))


# the small-sample penalty ---------------------------------------------------------------------
def test_penalized_loss_is_aicc_as_a_loss():
    n, k, loss = 20, 3, 0.37
    aicc = n * math.log(loss) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
    assert math.isclose(math.log(penalized_loss(loss, k, n)) * n, aicc)
    assert penalized_loss(loss, 0, n) == loss  # nothing fitted, nothing to pay
    # more constants cost more, fewer points cost more, and interpolation is never chosen
    assert penalized_loss(loss, 4, n) > penalized_loss(loss, 3, n)
    assert penalized_loss(loss, 3, 10) > penalized_loss(loss, 3, n)
    assert penalized_loss(loss, 9, 10) == math.inf
