"""Shared fixtures: a tiny diffusion model, fake residue/edge tables, and finished runs of the tiny workflow."""
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from siteaug.generative.diffusion import DiffusionConfig, SiteDiffusion

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))

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


# What the lean ablation run takes over from tiny_run's work directory: the outputs (and their logs, benchmarks and
# Snakemake's metadata) of the stages before the classifiers, whose config the lean overlay leaves as tiny.yaml has it.
# Not what only tiny.yaml's other arms make (balanced/<arm>/, embedding/, classifier/, graph_transformer's
# features/tree_scores.parquet) nor the report, so that its tables are those a run of its own would make, no more.
SHARED_STAGES = ["demo", "data", "features", "diffusion", "generated", "filtered", "balanced/train.parquet",
                 "balanced/summary.json", "sample_quality", "logs", "benchmarks"]
OTHER_ARMS_ONLY = shutil.ignore_patterns("tree_scores.parquet")


@pytest.fixture(scope="session")
def lean_ablation_run(tmp_path_factory, tiny_run) -> tuple[Path, tuple[Path, ...]]:
    """(work directory, config files) of one finished run of the tiny workflow with the lean overlay (three arms, one
    seed) and a feature-group ablation (``report.feature_ablation: ABLATION_SETTINGS``, in ``ablation.yaml`` there).

    It starts from a copy of ``tiny_run``'s stages before the classifiers (SHARED_STAGES, with the modification times
    and Snakemake's metadata, so Snakemake finds them up to date) and runs the rest: the three arms, the ablation and
    the report. Shared by tests/test_ablation.py, which reads its outputs, and the SIGKILL trials of
    tests/test_resume.py, which run the same config files from nothing and must end with its tables and metrics (so a
    copied output that a run of its own would not make byte-identical fails there).
    """
    from helpers import ABLATION_SETTINGS, LEAN, new_workdir, run_snakemake, write_config

    workdir = new_workdir(tmp_path_factory, "lean_ablation_run")
    for name in SHARED_STAGES:
        source, target = tiny_run / "results" / name, workdir / "results" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=OTHER_ARMS_ONLY)
        else:
            shutil.copy2(source, target)
    shutil.copytree(tiny_run / ".snakemake" / "metadata", workdir / ".snakemake" / "metadata")
    configfiles = (write_config(workdir, {"report.feature_ablation": ABLATION_SETTINGS}, name="ablation.yaml"), LEAN)
    result = run_snakemake(workdir, configfiles=configfiles)
    if result.returncode != 0:
        raise AssertionError(f"the lean ablation run failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return workdir, configfiles


# ---- the second run of the tiny workflow: through SLURM in the background when a local cluster can start -----------

SECOND_RUN = "second_tiny_run"


def _reads_second_run(item) -> bool:
    return SECOND_RUN in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The tests that read ``second_tiny_run`` go last (in their order), so that its SLURM run, started when the session
    starts, queues its jobs while every other test runs. trylast: after -m and -k have deselected tests."""
    readers = [item for item in items if _reads_second_run(item)]
    items[:] = [item for item in items if not _reads_second_run(item)] + readers


@pytest.fixture(scope="session", autouse=True)
def slurm_tiny_run(request, tmp_path_factory):
    """The SLURM run of the tiny workflow (tests/slurm/background_run.py), started before the first test of a session
    that has a test reading ``second_tiny_run``, if a local SLURM cluster can start here; else None. The cluster is
    stopped when the session ends, and a daemon that survives that is an error."""
    from local_cluster import missing_requirements

    if not any(_reads_second_run(item) for item in request.session.items) or missing_requirements():
        yield None
        return
    from background_run import SlurmTinyRun

    run = SlurmTinyRun(tmp_path_factory.mktemp("slurm_tiny_run"))
    run.start()
    yield run
    survivors = run.stop()
    assert not survivors, f"SLURM daemons survived stop(): {survivors}"


@pytest.fixture(scope="session")
def second_tiny_run(slurm_tiny_run, tmp_path_factory) -> Path:
    """A work directory holding a second finished run of tests/data/tiny.yaml, made apart from ``tiny_run``: the SLURM
    run when a local cluster could start (a run through another executor, so tests/test_determinism.py compares a
    local and a SLURM run), else a local run made here. SITEAUG_REQUIRE_SLURM=1 without a cluster is an error."""
    if slurm_tiny_run is not None:
        return slurm_tiny_run.wait()
    from local_cluster import missing_requirements

    if os.environ.get("SITEAUG_REQUIRE_SLURM") == "1":
        pytest.fail(f"SITEAUG_REQUIRE_SLURM=1 but no local SLURM cluster: {missing_requirements()}", pytrace=False)
    from helpers import new_workdir, run_snakemake

    workdir = new_workdir(tmp_path_factory, SECOND_RUN)
    result = run_snakemake(workdir)
    if result.returncode != 0:
        raise AssertionError(f"the second tiny run failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return workdir
