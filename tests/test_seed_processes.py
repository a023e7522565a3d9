"""An arm's seeds trained side by side in processes of their own give what the loop over seeds gives (CPU, tiny)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

import siteaug.arms.protocol
import siteaug.runtime.io
from helpers import REPO
from siteaug.arms.protocol import fit_one_seed, read_arm_inputs, train_arm
from siteaug.arms.registry import ARM_NAMES, lookup_arm, seed_process_count
from siteaug.arms.seed_processes import SavedModel, SeedProcesses, load_seed_fit, save_seed_fit, seed_model_path
from test_classifier import SETTINGS, residue_table
from test_graph_transformer import classifier_settings, planted_proteins


@contextlib.contextmanager
def torch_threads(n: int):
    """The loop over seeds in this process with as many torch threads as each child gets."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("arm", "tables", "settings", "seeds"), [
    ("smote", residue_table, SETTINGS, [3, 4, 5]),  # resampled per seed, in the child; a third seed waits its turn
    ("graph_transformer", planted_proteins, None, [3, 4]),
    ("gnn", residue_table, SETTINGS, [3, 4]),
])
def test_seeds_in_processes_give_the_loop_over_seeds(arm, tables, settings, seeds, caplog):
    residues, edges = tables()
    settings = settings or {**classifier_settings(), "graph_transformer": {**classifier_settings()["graph_transformer"], "epochs": 4}}
    with torch_threads(1):
        expected, expected_models, expected_summary = train_arm(arm, residues, settings, 0.5, seeds, edges=edges)
    caplog.set_level("INFO")
    predictions, models, summary = train_arm(arm, residues, settings, 0.5, seeds, edges=edges, seed_processes=2, threads=1)
    pd.testing.assert_frame_equal(predictions, expected)
    assert summary == expected_summary and len(models) == len(seeds)
    # The models come back as the files the children saved (the job only writes them to its outputs), and read with
    # their class's load (no pickle) they are the loop's models, on the CPU.
    assert all(isinstance(model, SavedModel) for model in models)
    for saved, reference in zip(models, expected_models):
        model = saved.load()
        state, reference_state = (m.network.state_dict() for m in (model, reference))
        assert all(torch.equal(state[k], reference_state[k]) for k in reference_state)
        assert all(v.device.type == "cpu" for v in state.values()) and model.device.type == "cpu"
    messages = [r.getMessage() for r in caplog.records]
    assert f"arm {arm}: {len(seeds)} seeds in 2 processes on cpu" in messages
    # Each child's log is copied into the job's log, seed by seed, in seed order.
    copied = [m.split(",")[0] for m in messages if "its process's log" in m]
    assert copied == [f"arm {arm} seed {s}" for s in seeds]


def test_a_seed_fitted_by_another_job_is_read_and_scored_as_if_fitted_here(tmp_path, caplog, monkeypatch):
    # The workflow's embed_residues job fits graph_transformer's first seed; the arm's job fits the others.
    residues, edges = planted_proteins()
    settings = {**classifier_settings(), "graph_transformer": {**classifier_settings()["graph_transformer"], "epochs": 3}}
    with torch_threads(1):
        expected, expected_models, expected_summary = train_arm("graph_transformer", residues, settings, 0.5, [3, 4], edges=edges)
        save_seed_fit(tmp_path, 3, *fit_one_seed("graph_transformer", residues, settings, 0.5, 3, edges=edges))
        fitted_here, fit = [], siteaug.arms.protocol._fit_graph_transformer
        monkeypatch.setattr(siteaug.arms.protocol, "_fit_graph_transformer",
                            lambda context, seed: fitted_here.append(seed) or fit(context, seed))
        caplog.set_level("INFO")
        predictions, models, summary = train_arm("graph_transformer", residues, settings, 0.5, [3, 4], edges=edges,
                                                 fitted={3: tmp_path})
    pd.testing.assert_frame_equal(predictions, expected)
    assert summary == expected_summary
    assert isinstance(models[0], SavedModel) and not isinstance(models[1], SavedModel)  # read as a file, fitted here
    (tmp_path / "out").mkdir()
    models[0].save(tmp_path / "out/seed_3.pt")  # what the arm's job writes: the fit's own file
    assert (tmp_path / "out/seed_3.pt").read_bytes() == seed_model_path(tmp_path, 3).read_bytes()
    for model, reference in zip((models[0].load(), models[1]), expected_models):
        state, reference_state = (m.network.state_dict() for m in (model, reference))
        assert all(torch.equal(state[k], reference_state[k]) for k in reference_state)
    messages = [r.getMessage() for r in caplog.records]
    assert f"arm graph_transformer seed 3: fitted by another job, read from {tmp_path}" in messages
    assert fitted_here == [4]


def test_a_seed_fit_naming_a_class_outside_siteaug_is_refused(tmp_path):
    (tmp_path / "seed_3.json").write_text(json.dumps({"model_class": "os:system", "info": {}}))
    for as_file in (False, True):  # refused before it is read, or kept to be read later
        with pytest.raises(ValueError, match="model class 'os:system' is not one of siteaug's"):
            load_seed_fit(tmp_path, 3, as_file=as_file)


def test_an_arm_whose_seeds_share_a_fit_takes_no_seed_from_another_job(tmp_path):
    residues, _ = residue_table()
    with pytest.raises(ValueError, match="arm gbdt fits its seeds together; no seed can come from another job"):
        train_arm("gbdt", residues, SETTINGS, 0.5, [3, 4], fitted={3: tmp_path})


def test_seed_processes_read_the_jobs_input_files_instead_of_copies(tmp_path, monkeypatch):
    residues, edges = residue_table()
    inputs = {"residues": tmp_path / "residues.parquet", "tree_scores": None, "balanced": None, "edges": tmp_path / "edges.parquet"}
    siteaug.runtime.io.write_parquet(residues, inputs["residues"])
    siteaug.runtime.io.write_parquet(edges, inputs["edges"])
    table, balanced, edge_table = read_arm_inputs(**inputs)
    assert balanced is None
    with torch_threads(1):
        expected, _, expected_summary = train_arm("gnn", table, SETTINGS, 0.5, [3, 4], edges=edge_table)

    def no_copies(*args, **kwargs):
        raise AssertionError("the job wrote a copy of a table for its seed processes")

    monkeypatch.setattr(siteaug.runtime.io, "write_parquet", no_copies)
    # As the workflow's job does: the processes start before the job reads its tables, and train_arm collects them;
    # the job itself then needs no training table (here the edges), as it only scores. (train_arm with
    # seed_processes=2 and inputs starts the same SeedProcesses.from_files itself.)
    with SeedProcesses.from_files("gnn", SETTINGS, 0.5, "cpu", inputs, [3, 4], 2, 1) as running:
        table, _, _ = read_arm_inputs(**{**inputs, "edges": None})
        predictions, _, summary = train_arm("gnn", table, SETTINGS, 0.5, [3, 4], started=running)
    pd.testing.assert_frame_equal(predictions, expected)
    assert summary == expected_summary
    with pytest.raises(ValueError, match=r"arm gnn: seeds \[4\] were started in processes, but \[3, 4\] are to be fitted"):
        train_arm("gnn", table, SETTINGS, 0.5, [3, 4], edges=edge_table, started=SimpleNamespace(seeds=[4]))


def test_an_error_in_the_job_kills_the_seed_processes_it_started(tmp_path):
    """A job that fails after starting its seeds (e.g. on its own reading of the tables) must not wait for their training."""
    residues, _ = residue_table()
    siteaug.runtime.io.write_parquet(residues, tmp_path / "residues.parquet")
    inputs = {"residues": tmp_path / "residues.parquet", "tree_scores": None, "balanced": None, "edges": None}
    settings = {**SETTINGS, "epochs": 10_000, "early_stopping_patience": None}  # would train for minutes
    began = time.monotonic()
    with pytest.raises(KeyError, match="the job's own error"):
        with SeedProcesses.from_files("none", settings, 0.5, "cpu", inputs, [3, 4], 2, 1) as running:
            deadline = time.monotonic() + 60
            while len(running._children) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            raise KeyError("the job's own error")
    assert time.monotonic() - began < 60
    assert [child.returncode for child in running._children] == [-signal.SIGKILL] * 2
    assert not running.folder.exists()


def test_an_error_in_a_seed_process_is_raised_again_unchanged():
    residues, _ = residue_table()
    residues.loc[residues["split"] == "train", "label"] = 0
    with pytest.raises(ValueError, match="training rows hold a single class; a classifier cannot be fitted"):
        train_arm("none", residues, SETTINGS, 0.5, [0, 1], seed_processes=2)


def test_gbdt_seeds_share_their_grid_point_so_never_train_in_processes():
    residues, edges = residue_table()
    with pytest.raises(ValueError, match="arm gbdt trains its seeds in one process"):
        train_arm("gbdt", residues, SETTINGS, 0.5, [0, 1], seed_processes=2)


def test_the_workflow_asks_for_processes_on_a_cuda_device_only():
    classifier = {"device": "cuda", "seeds": 3, "seed_processes": 4}
    assert seed_process_count("graph_transformer", classifier) == 3  # at most one per seed
    assert seed_process_count("none", {**classifier, "seed_processes": 2}) == 2
    assert seed_process_count("gbdt", classifier) == 1
    assert seed_process_count("graph_transformer", {**classifier, "device": "cpu"}) == 1
    assert [a for a in ARM_NAMES if not lookup_arm(a).on_device] == ["gbdt"]


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed child that nobody has reaped yet counts as dead)."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_seed_process_dies_with_its_killed_parent(tmp_path):
    """A SIGKILLed train_classifier job must not leave its seeds training on the card."""
    child = ("import os, time; from siteaug.arms.seed_processes import _die_with; "
             "_die_with(os.getppid()); open(os.environ['READY'], 'w').write(str(os.getpid())); time.sleep(120)")
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"
    ready = tmp_path / "child.pid"
    job = subprocess.Popen([sys.executable, "-c", parent], env={**os.environ, "READY": str(ready)})
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = int(ready.read_text())
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
        deadline = time.monotonic() + 10
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(pid)
    finally:
        job.kill()


SCRIPT_JOB = """
import runpy, sys
from types import SimpleNamespace

class Files(dict):  # Snakemake's named input/output lists: by key, by attribute, get() and keys()
    __getattr__ = dict.__getitem__

job = {job!r}
snakemake = SimpleNamespace(
    input=Files(job["input"]), output=SimpleNamespace(**job["output"]), params=SimpleNamespace(**job["params"]),
    wildcards=Files(arm=job["arm"]), threads=job["threads"], log=[job["log"]], rule="train_classifier")
sys.path.insert(0, {scripts!r})
runpy.run_path({script!r}, init_globals={{"snakemake": snakemake}})
"""


def test_the_train_classifier_script_with_seeds_in_processes_gives_the_loop(tmp_path):
    """The workflow's train_classifier script as it runs on a CUDA device (its seeds in processes, started before it
    reads its tables, and itself reading no training table), here on the CPU: the loop's predictions and summary."""
    residues, _ = residue_table()
    train = residues[residues["split"] == "train"]
    balanced = pd.concat([train, train[train["label"] == 1]], ignore_index=True)
    siteaug.runtime.io.write_parquet(residues, tmp_path / "residues.parquet")
    siteaug.runtime.io.write_parquet(balanced, tmp_path / "balanced.parquet")
    with torch_threads(1):
        expected, _, expected_summary = train_arm("diffusion", residues, SETTINGS, 0.5, [3, 4], balanced=balanced)
    settings = {**SETTINGS, "seeds": 2, "device": "cpu"}
    out = tmp_path / "out"
    job = {"arm": "diffusion", "threads": 2, "log": str(tmp_path / "job.log"),
           "input": {"residues": str(tmp_path / "residues.parquet"), "balanced": str(tmp_path / "balanced.parquet")},
           "output": {"models": str(out / "models"), "summary": str(out / "summary.json"),
                      "predictions": str(out / "predictions.parquet")},
           "params": {"settings": settings, "seed_processes": 2, "ratio": 0.5, "seed": 3}}
    scripts = str(REPO / "workflow_scripts")
    code = SCRIPT_JOB.format(job=job, scripts=scripts, script=str(REPO / "workflow_scripts/train_classifier.py"))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "arm diffusion: 2 seeds in 2 processes on cpu" in (tmp_path / "job.log").read_text()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"), expected)
    assert [s["best_epoch"] for s in json.loads((out / "summary.json").read_text())["seeds"]] == \
        [s["best_epoch"] for s in expected_summary]
