"""A residue classifier with scikit-learn's fit / predict_proba shape, and the training arms compared in the report."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from siteaug.arms.registry import MLP_SETTINGS
from siteaug.runtime.io import atomic_path, load_torch


@dataclass
class MLPConfig:
    input_dim: int
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    balanced: bool = False  # weight classes inversely to their frequency, so p = 0.5 separates them
    seed: int = 0
    # Loss weight of a positive row (when not ``balanced``); None means 1. The class_weight arm sets it so the
    # positives' share of the loss equals the balancing target ratio.
    positive_weight: float | None = None


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

    def fit(self, X: np.ndarray, y: np.ndarray, progress=None) -> MLPClassifier:
        cfg = self.config
        # np.require copies only a read-only array (e.g. from pandas), which torch would warn about.
        X_t = torch.as_tensor(np.require(X, np.float32, ["W"]), device=self.device)
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
        optimiser = torch.optim.AdamW(self.network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            # Dropout draws from the global generator: seed it here so fit() alone fixes the result.
            torch.manual_seed(cfg.seed)
            self._train(X_t, y_t, loss_fn, optimiser, generator, progress)
        self.network.eval()
        return self

    def _train(self, X_t, y_t, loss_fn, optimiser, generator, progress) -> None:
        cfg = self.config
        n_batches = math.ceil(len(y_t) / cfg.batch_size)
        self.network.train()
        epochs = range(cfg.epochs) if progress is None else progress(range(cfg.epochs))
        for _ in epochs:
            order = torch.randperm(len(y_t), device=self.device, generator=generator)
            for b in range(n_batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                loss = loss_fn(self.network(X_t[idx]).squeeze(1), y_t[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()

    @torch.inference_mode()
    def predict_proba(self, X: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Probability of the positive class for every row (a 1-D array, unlike scikit-learn's two columns)."""
        X_t = torch.as_tensor(np.require(X, np.float32, ["W"]))
        out = [torch.sigmoid(self.network(X_t[i : i + batch_size].to(self.device))).squeeze(1).cpu() for i in range(0, len(X_t), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    def save(self, path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"config": asdict(self.config), "state_dict": self.network.state_dict()}, tmp)

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
    """An MLPConfig from the config file's ``classifier`` section."""
    values = {k: settings[k] for k in MLP_SETTING_KEYS}
    values["hidden"] = tuple(values["hidden"])  # a list in YAML; MLPConfig holds a tuple, as load() restores it
    return MLPConfig(input_dim=input_dim, balanced=balanced, seed=seed, positive_weight=positive_weight, **values)
