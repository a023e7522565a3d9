"""A residue classifier with scikit-learn's fit / predict_proba shape, and the training arms compared in the report."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from siteaug.arms.registry import MLP_SETTINGS
from siteaug.runtime.early_stopping import EarlyStopping
from siteaug.runtime.io import load_torch, save_torch

log = logging.getLogger(__name__)


@dataclass
class MLPConfig:
    input_dim: int
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # Epochs without a validation AUPRC gain before training stops and the best epoch's weights come back (``epochs`` is
    # then the most); 0 or None trains every epoch and keeps the last. Only a fit given validation rows stops early.
    early_stopping_patience: int | None = 5
    # On CUDA the hidden layers run under bf16 autocast; weights, optimiser, output layer and loss stay float32. CPU
    # always runs float32.
    mixed_precision: bool = True
    balanced: bool = False  # weight classes inversely to their frequency, so p = 0.5 separates them
    seed: int = 0
    # Loss weight of a positive row (when not ``balanced``); None means 1. The class_weight arm sets it so the
    # positives' share of the loss equals the balancing target ratio.
    positive_weight: float | None = None
    # On CUDA, one training step (gather, forward, backward, AdamW) is captured once as a CUDA graph and replayed for
    # every full batch: an eager step launches about 50 small kernels from Python, which bounds the loop on a GPU.
    cuda_graph: bool = True


def _network(config: MLPConfig) -> nn.Sequential:
    layers, width = [], config.input_dim
    for size in config.hidden:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(config.dropout)]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, 1))


class MLPClassifier:
    """Binary MLP trained with Adam on BCE; deterministic for a given seed on CPU."""

    def __init__(self, config: MLPConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.network = _network(config).to(self.device)
        # The epoch whose weights early stopping kept (None: no epoch was chosen, the last one's weights are kept) and
        # the validation AUPRC of every epoch trained.
        self.best_epoch: int | None = None
        self.history: list[dict] = []

    def _tensor(self, X: np.ndarray, device=None) -> torch.Tensor:
        # np.require copies only a read-only array (e.g. from pandas), which torch would warn about.
        return torch.as_tensor(np.require(X, np.float32, ["W"]), device=device)

    def _logits(self, X: torch.Tensor) -> torch.Tensor:
        # No cast cache: a captured CUDA graph may not hold one (and each call is its own autocast region anyway).
        with torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False,
                            enabled=self.config.mixed_precision and self.device.type == "cuda"):
            hidden = self.network[:-1](X)
        # The output layer in float32: bf16 logits keep 8 significant bits, which would tie many residues' scores.
        return self.network[-1](hidden.float()).squeeze(1)

    def fit(self, X: np.ndarray, y: np.ndarray, validation: tuple | None = None, progress=None) -> MLPClassifier:
        """Train on (X, y). Given ``validation`` rows (X_val, y_val) and a patience, every epoch is scored on them by
        AUPRC; training stops after ``early_stopping_patience`` epochs without a gain and keeps the best epoch."""
        cfg = self.config
        X_t = self._tensor(X, self.device)
        y_t = torch.as_tensor(np.asarray(y, np.float32), device=self.device)
        n_pos = float(y_t.sum())
        if n_pos == 0 or n_pos == len(y_t):
            raise ValueError("training rows hold a single class; a classifier cannot be fitted")
        if cfg.balanced:
            weight = (len(y_t) - n_pos) / n_pos
        else:
            weight = 1.0 if cfg.positive_weight is None else cfg.positive_weight
        pos_weight = torch.tensor(weight, device=self.device)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        on_cuda = self.device.type == "cuda"
        # Fused: one kernel per step on a GPU; capturable: its step count stays on the device, as a CUDA graph needs.
        optimiser = torch.optim.AdamW(self.network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=on_cuda,
                                      capturable=on_cuda and cfg.cuda_graph)
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.best_epoch, self.history = None, []
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            # Dropout draws from the global generator: seed it here so fit() alone fixes the result.
            torch.manual_seed(cfg.seed)
            self._train(X_t, y_t, loss_fn, optimiser, generator, progress, self._stopping_rows(validation))
        self.network.eval()
        return self

    def _stopping_rows(self, validation: tuple | None) -> tuple | None:
        """The validation rows that choose the epoch (features on the device, labels), None when none do."""
        if validation is None or not self.config.early_stopping_patience:
            return None
        X_val, y_val = validation
        y_val = np.asarray(y_val)
        if not 0 < y_val.sum() < len(y_val):
            log.warning("MLP: the validation rows hold one class only; training every epoch, keeping the last")
            return None
        return self._tensor(X_val, self.device), y_val

    def _captured_step(self, X_t, y_t, loss_fn, optimiser):
        """A function of a batch's row indices that runs one training step by replaying a CUDA graph."""
        from siteaug.runtime.cuda_graphs import capture_step

        static_idx = torch.arange(self.config.batch_size, device=self.device)

        def step():
            loss_fn(self._logits(X_t[static_idx]), y_t[static_idx]).backward()
            optimiser.step()

        graph = capture_step(step, self.network.parameters(), optimiser, self.device)

        def replay(idx: torch.Tensor) -> None:
            static_idx.copy_(idx)
            graph.replay()

        return replay

    def _train(self, X_t, y_t, loss_fn, optimiser, generator, progress, validation) -> None:
        cfg = self.config
        n_batches = math.ceil(len(y_t) / cfg.batch_size)
        # A short last batch (another shape) takes the eager step.
        captured = self._captured_step(X_t, y_t, loss_fn, optimiser) if (
            self.device.type == "cuda" and cfg.cuda_graph and len(y_t) >= cfg.batch_size) else None
        # Reached only with a patience: _stopping_rows gives no rows without one, and then every epoch trains.
        stopping = EarlyStopping(higher_is_better=True, patience=cfg.early_stopping_patience)
        began = time.monotonic()
        epochs = range(1, cfg.epochs + 1)
        if validation is not None:
            # Only here: the jobs that score with a trained MLP (filter_shard, balance_variant) never import
            # scikit-learn's metrics, which cost a job about 1 s of CPU (scipy.stats).
            from sklearn.metrics import average_precision_score
        for epoch in epochs if progress is None else progress(epochs):
            self.network.train()
            order = torch.randperm(len(y_t), device=self.device, generator=generator)
            for b in range(n_batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                if captured is not None and len(idx) == cfg.batch_size:
                    captured(idx)
                    continue
                loss = loss_fn(self._logits(X_t[idx]), y_t[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            if validation is None:
                continue
            # Scoring in eval mode draws no random numbers, so the epochs trained match a fit without validation rows.
            self.network.eval()
            auprc = float(average_precision_score(validation[1], self._probabilities(validation[0])))
            self.history.append({"epoch": epoch, "validation_auprc": round(auprc, 5)})
            if stopping.update(epoch, auprc, self.network):
                break
        self.best_epoch = stopping.best_step
        if stopping.best_state is not None:
            self.network.load_state_dict(stopping.best_state)
            seconds = time.monotonic() - began
            log.info("MLP seed %d: kept epoch %d of %d (validation AUPRC %.4f); %.1f s, %.2f s an epoch", cfg.seed,
                     self.best_epoch, len(self.history), stopping.best_score, seconds, seconds / len(self.history))

    @torch.inference_mode()
    def _probabilities(self, X_t: torch.Tensor, batch_size: int = 65536) -> np.ndarray:
        """float32 probabilities of the rows of ``X_t`` (on any device), moved to the device a batch at a time."""
        out = [torch.sigmoid(self._logits(X_t[i : i + batch_size].to(self.device))).cpu() for i in range(0, len(X_t), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    def predict_proba(self, X: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Probability of the positive class for every row (a 1-D array, unlike scikit-learn's two columns)."""
        return self._probabilities(self._tensor(X), batch_size)

    def save(self, path) -> None:
        save_torch({"config": asdict(self.config), "state_dict": self.network.state_dict()}, path)

    @classmethod
    def load(cls, path, device: str | torch.device = "cpu") -> MLPClassifier:
        payload = load_torch(path, device)  # a truncated file: one line naming it
        config = payload["config"]
        config["hidden"] = tuple(config["hidden"])
        model = cls(MLPConfig(**config), device)
        model.network.load_state_dict(payload["state_dict"])
        model.network.eval()
        return model


# The config file's classifier keys that set the MLP; weight_decay is fixed, the other fields are set per arm and seed.
MLP_SETTING_KEYS = MLP_SETTINGS  # siteaug.arms.registry names them, torch-free, for the rules


def mlp_config(settings: dict, input_dim: int, seed: int, balanced: bool = False, positive_weight: float | None = None) -> MLPConfig:
    """An MLPConfig from the config file's ``classifier`` section (or ``filter.critic``)."""
    values = {k: settings[k] for k in MLP_SETTING_KEYS}
    # Only the arms' section holds the key: the critic has no validation rows to stop on and trains every epoch.
    values["early_stopping_patience"] = settings.get("early_stopping_patience")
    values["hidden"] = tuple(values["hidden"])  # a list in YAML; MLPConfig holds a tuple, as load() restores it
    return MLPConfig(input_dim=input_dim, balanced=balanced, seed=seed, positive_weight=positive_weight, **values)
