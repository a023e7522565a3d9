"""EarlyStopping: both directions, strict gains, patience, and the kept weights."""
import math
import subprocess
import sys

import pytest
from torch import nn

from helpers import REPO
from siteaug.runtime.early_stopping import EarlyStopping


def evaluate(stopping: EarlyStopping, scores, model=None) -> list[bool]:
    """Feed ``scores`` as steps 1, 2, ... with the model's weight set to the step; the stop decisions."""
    model = model or nn.Linear(1, 1)
    decisions = []
    for step, score in enumerate(scores, start=1):
        model.weight.data.fill_(float(step))
        decisions.append(stopping.update(step, score, model))
    return decisions


def test_a_loss_keeps_the_lowest_and_stops_after_patience():
    stopping = EarlyStopping(higher_is_better=False, patience=2)
    assert evaluate(stopping, [3.0, 2.0, 2.5, 2.1]) == [False, False, False, True]
    assert stopping.best_step == 2 and stopping.best_score == 2.0 and stopping.since_best == 2
    assert stopping.best_state["weight"].item() == 2.0  # a copy, not a view of the weights that went on changing


def test_an_auprc_keeps_the_highest_and_a_gain_resets_the_count():
    stopping = EarlyStopping(higher_is_better=True, patience=2)
    assert evaluate(stopping, [0.5, 0.4, 0.7, 0.6, 0.65]) == [False, False, False, False, True]
    assert stopping.best_step == 3 and stopping.best_score == 0.7
    assert stopping.best_state["weight"].item() == 3.0


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_a_tie_is_no_gain_and_the_first_of_equal_scores_stays_best(higher_is_better):
    stopping = EarlyStopping(higher_is_better=higher_is_better, patience=2)
    assert evaluate(stopping, [0.5, 0.5, 0.5]) == [False, False, True]
    assert stopping.best_step == 1 and stopping.best_state["weight"].item() == 1.0


def test_no_patience_never_stops_but_keeps_the_best_weights():
    stopping = EarlyStopping(higher_is_better=False)
    assert not any(evaluate(stopping, [1.0] + [2.0] * 50))
    assert stopping.since_best == 50 and stopping.best_step == 1 and stopping.best_state["weight"].item() == 1.0


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_zero_stops_at_the_first_evaluation_without_a_gain_as_one_does(patience):
    stopping = EarlyStopping(higher_is_better=True, patience=patience)
    assert evaluate(stopping, [0.1, 0.2, 0.3, 0.2]) == [False, False, False, True]


def test_nothing_is_kept_before_a_gain():
    stopping = EarlyStopping(higher_is_better=True, patience=2)
    assert stopping.best_step is None and stopping.best_state is None and stopping.best_score == -math.inf
    assert evaluate(stopping, [math.nan, math.nan]) == [False, True]  # NaN never beats anything
    assert stopping.best_step is None and stopping.best_state is None


def test_the_kept_state_is_a_copy_detached_from_the_live_weights():
    model = nn.Linear(2, 1)
    stopping = EarlyStopping(higher_is_better=False)
    stopping.update(1, 1.0, model)
    kept = stopping.best_state["weight"]
    model.weight.data.add_(1.0)
    assert kept.data_ptr() != model.weight.data_ptr() and not kept.requires_grad
    assert not kept.equal(model.weight.detach())


def test_importing_it_loads_no_heavy_library():
    # The MLP arm's rule job imports it; torch_geometric, pandas or scikit-learn would cost it seconds for nothing.
    code = "import sys, siteaug.runtime.early_stopping; print(*sorted(m for m in ('torch_geometric', 'pandas', 'sklearn') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.split() == []
