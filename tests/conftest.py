"""Shared fixtures: a tiny diffusion model, fake residue/edge tables, and one finished run of the tiny workflow."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from siteaug.generative.diffusion import DiffusionConfig, SiteDiffusion

FEATURES = ["f_a", "f_b", "f_c"]


def tiny_config(**overrides) -> DiffusionConfig:
    settings = dict(feature_dim=len(FEATURES), hidden=16, blocks=2, context=8, gnn_hidden=8, gnn_layers=1,
                    gnn_heads=2, timesteps=10)
    settings.update(overrides)
    return DiffusionConfig(**settings)


def tiny_model(seed: int = 0, **overrides) -> SiteDiffusion:
    """A tiny model whose (normally zero-initialised) output layer is random, so that eps and contexts matter."""
    torch.manual_seed(seed)
    model = SiteDiffusion(tiny_config(**overrides))
    torch.nn.init.normal_(model.denoiser.output.weight, std=0.5)
    return model.eval()


@pytest.fixture
def model() -> SiteDiffusion:
    return tiny_model()


@pytest.fixture
def fake_tables():
    """Three proteins of 6 residues (features f_a..f_c) and chain edges in both directions."""
    rng = np.random.default_rng(0)
    rows, edges = [], []
    for pid in ("p0", "p1", "p2"):
        for pos in range(6):
            rows.append({"protein_id": pid, "position": pos, "label": int(pos % 3 == 0), "split": "train",
                         **dict(zip(FEATURES, rng.normal(size=3).astype(np.float32)))})
        for i in range(5):
            edges += [{"protein_id": pid, "src": i, "dst": i + 1}, {"protein_id": pid, "src": i + 1, "dst": i}]
    return pd.DataFrame(rows), pd.DataFrame(edges)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A work directory holding one finished run of the tiny workflow (tests/data/tiny.yaml, every arm, --cores 2).

    Shared by every test that reads its outputs, or reruns jobs whose outputs come out byte-identical (the workflow is
    deterministic on CPU: tests/test_determinism.py), so the suite runs the whole tiny workflow once, not per module.
    """
    from helpers import new_workdir, run_snakemake

    workdir = new_workdir(tmp_path_factory, "tiny_run")
    result = run_snakemake(workdir)
    if result.returncode != 0:
        raise AssertionError(f"the tiny workflow failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return workdir


@pytest.fixture(scope="session")
def lean_ablation_run(tmp_path_factory) -> tuple[Path, tuple[Path, ...]]:
    """(work directory, config files) of one finished run of the tiny workflow with the lean overlay (three arms, one
    seed) and a feature-group ablation (``report.feature_ablation: ABLATION_SETTINGS``, in ``ablation.yaml`` there).

    Shared by tests/test_ablation.py, which reads its outputs, and the SIGKILL trials of tests/test_resume.py, whose
    killed and resumed runs of the same config files must end with its tables and metrics.
    """
    from helpers import ABLATION_SETTINGS, LEAN, new_workdir, run_snakemake, write_config

    workdir = new_workdir(tmp_path_factory, "lean_ablation_run")
    configfiles = (write_config(workdir, {"report.feature_ablation": ABLATION_SETTINGS}, name="ablation.yaml"), LEAN)
    result = run_snakemake(workdir, configfiles=configfiles)
    if result.returncode != 0:
        raise AssertionError(f"the lean ablation run failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return workdir, configfiles
