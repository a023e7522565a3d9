"""Early stopping with best-state keeping, shared by every training loop that chooses its step on validation data.

Standard library only (torch for type hints): the rule jobs that train an MLP arm import this and nothing heavier.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


class EarlyStopping:
    """Keeps a copy of the weights of the best validation score and says stop after ``patience`` evaluations in a row
    without a gain.

    ``higher_is_better`` picks the direction (AUPRC up, loss down). Only a strict gain counts, so on a tie the earlier
    evaluation stays the best. ``patience`` None never stops (the best weights are still the ones kept); a stop comes
    only after an evaluation without a gain, so patience 0 stops at the first one, as 1 does.
    """

    def __init__(self, *, higher_is_better: bool, patience: int | None = None):
        self.higher_is_better = higher_is_better
        self.patience = patience
        self.best_score = -math.inf if higher_is_better else math.inf
        self.best_step: int | None = None  # None until an evaluation gains
        self.best_state: dict | None = None
        self.since_best = 0

    def update(self, step: int, score: float, model: nn.Module) -> bool:
        """Record the evaluation of ``model`` at ``step``; True when training should stop."""
        gained = score > self.best_score if self.higher_is_better else score < self.best_score
        if gained:
            self.best_score, self.best_step, self.since_best = score, step, 0
            # A clone: the state dict's tensors are the live weights, which the next steps go on changing.
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.since_best += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        """True once the last ``patience`` evaluations (at least one) brought no gain; never without a patience."""
        return self.patience is not None and self.since_best > 0 and self.since_best >= self.patience
