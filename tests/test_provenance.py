"""Input checksums decide reruns (snakemake -n); machine provenance for the report."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, new_workdir, run_snakemake, write_config
from siteaug.runtime.io import InputError
from siteaug.runtime.provenance import checksum, checksums, git_commit, machine_provenance


def test_file_checksum_is_sha256_of_the_content(tmp_path):
    (tmp_path / "a.fa").write_text(">p\nAC\n01\n")
    got = checksum(tmp_path / "a.fa", "input.labels")
    # what `sha256sum a.fa` prints
    assert got["sha256"] == hashlib.sha256(b">p\nAC\n01\n").hexdigest()
    assert got["files"] == 1 and got["bytes"] == 9


def test_folder_checksum_sees_edits_renames_and_new_files_but_not_listing_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, names in ((a, ["x.pdb", "y.pdb", "sub/z.npy"]), (b, ["sub/z.npy", "y.pdb", "x.pdb"])):
        for name in names:  # same files, created in another order
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(name)
    first = checksum(a, "input.structures")
    assert first == {**checksum(b, "input.structures"), "path": str(a)}
    assert first["files"] == 3
    stat = (a / "x.pdb").stat()
    (a / "x.pdb").write_text("x.pdX")  # same size, same mtime: only the content differs
    os.utime(a / "x.pdb", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = checksum(a, "input.structures")["sha256"]
    assert edited != first["sha256"]
    (a / "x.pdb").rename(a / "w.pdb")
    assert checksum(a, "input.structures")["sha256"] not in (edited, first["sha256"])


def test_missing_input_names_the_config_key(tmp_path):
    with pytest.raises(InputError, match=r"^config features\.precomputed\.pssm: .*nowhere: no such file or folder$"):
        checksums({"input.labels": None, "features.precomputed.pssm": str(tmp_path / "nowhere")})
    assert checksums({"input.labels": None, "features.distance_maps": ""}) == {}


def test_machine_provenance_names_commit_date_machine_and_versions(tmp_path):
    info = machine_provenance(REPO)
    assert re.match(r"^[0-9a-f]{40}( \(uncommitted changes(; work tree [0-9a-f]{40})?\))?$", info["git_commit"]), info["git_commit"]
    assert git_commit(tmp_path) == "unknown (not a git checkout)"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", info["date"])
    assert info["packages"]["skops"] != "not installed" and info["packages"]["numpy"] == np.__version__
    assert info["cpu"] and info["gpu"]


def test_an_uncommitted_tree_is_named_by_the_tree_id_of_the_commit_that_would_hold_it(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("results/\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-qm", "first")
    first = git("rev-parse", "HEAD")
    assert git_commit(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    (tmp_path / "new.py").write_text("y = 1\n")  # untracked, not ignored: part of the tree
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "big.parquet").write_text("ignored")
    named = git_commit(tmp_path)
    assert git("status", "--porcelain") == "M a.py\n?? new.py"  # the checkout's own index is untouched
    git("add", "-A")
    git("commit", "-qm", "second")
    assert named == f"{first} (uncommitted changes; work tree {git('rev-parse', 'HEAD^{tree}')})"


# ---------------------------------------------------------------- the workflow (snakemake -n)


def _planned(result: subprocess.CompletedProcess) -> set[str]:
    """Rules a dry run would run (from its job table)."""
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    if "Nothing to be done" in out:
        return set()
    table = out[out.index("Job stats:"):out.index("\ntotal")]
    return set(re.findall(r"^(\w+)\s+\d+$", table, flags=re.M)) - {"all"}


def _touch_like(path: Path, reference: os.stat_result) -> None:
    os.utime(path, ns=(reference.st_atime_ns, reference.st_mtime_ns))


@pytest.mark.workflow
def test_input_source_paths_and_contents_decide_reruns(tmp_path_factory):
    from siteaug.inputs.demo import make_demo

    workdir = new_workdir(tmp_path_factory, "inputs")
    make_demo(workdir / "inputs", n_proteins=12, min_length=30, max_length=40, seed=0)
    maps = workdir / "maps"
    maps.mkdir()
    np.save(maps / "unused.npy", np.zeros((2, 2)))  # no protein of that id: checksummed, never read
    files = write_config(workdir, {"input": {"source": "files", "labels": "inputs/labels.fa", "structures": "inputs/pdb"},
                                   "features.distance_maps": "maps"}, name="files.yaml")
    demo = write_config(workdir, {"features.distance_maps": "maps"}, name="demo.yaml")

    def plan(config, until="features"):
        return _planned(run_snakemake(workdir, "-n", "--until", until, configfiles=(config,), timeout=300))

    # Results of the demo data exist; switching input.source to files must redo prepare and everything after it.
    assert run_snakemake(workdir, "--until", "features", configfiles=(demo,)).returncode == 0
    assert plan(demo) == set()
    assert plan(files) == {"prepare", "features"}
    assert run_snakemake(workdir, "--until", "features", configfiles=(files,)).returncode == 0
    assert plan(files) == set()

    # A label edited in place with its old modification time: only the content checksum can tell.
    labels = workdir / "inputs/labels.fa"
    stat, text = labels.stat(), labels.read_text()
    lines = text.splitlines()
    lines[2] = ("1" if lines[2][0] == "0" else "0") + lines[2][1:]
    labels.write_text("\n".join(lines) + "\n")
    _touch_like(labels, stat)
    assert plan(files) == {"prepare", "features"}
    labels.write_text(text)  # back to the content the results were made from: nothing to redo
    _touch_like(labels, stat)
    assert plan(files) == set()

    # A PDB file replaced in place (the folder's modification time does not change).
    pdb = workdir / "inputs/pdb/demo0001_A.pdb"
    stat = pdb.stat()
    pdb.write_text(pdb.read_text().replace("END", "REMARK edited\nEND"))
    _touch_like(pdb, stat)
    assert plan(files) == {"prepare", "features"}
    shutil.copy(workdir / "inputs/pdb/demo0002_A.pdb", workdir / "inputs/pdb/spare.pdb")
    assert plan(files) == {"prepare", "features"}
    (workdir / "inputs/pdb/spare.pdb").unlink()

    # A precomputed folder read by features only: features reruns, prepare does not.
    assert run_snakemake(workdir, "--until", "features", configfiles=(files,)).returncode == 0
    np.save(maps / "unused.npy", np.ones((2, 2)))
    assert plan(files) == {"features"}


FAKE_NVIDIA_SMI = """#!/bin/sh
echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5e1f0000-aaaa)"
echo "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-77770000-bbbb)"
"""


def test_the_cards_are_those_nvidia_smi_lists_and_the_run_may_use(tmp_path, monkeypatch):
    from siteaug.runtime import provenance

    (tmp_path / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(provenance, "torch_build", lambda: {"__version__": "2.13.0+cu128", "cuda": "12.8", "hip": None})
    assert provenance.gpu_names({}) == "NVIDIA H100 80GB HBM3, NVIDIA A100-SXM4-40GB"
    assert provenance.gpu_names({"CUDA_VISIBLE_DEVICES": "1"}) == "NVIDIA A100-SXM4-40GB"
    assert provenance.gpu_names({"CUDA_VISIBLE_DEVICES": "GPU-5e1f0000-aaaa"}) == "NVIDIA H100 80GB HBM3"
    assert provenance.gpu_names({"CUDA_VISIBLE_DEVICES": ""}) == "none (CPU only)"
    # A CPU build of torch runs on no card, whatever the machine has.
    monkeypatch.setattr(provenance, "torch_build", lambda: {"__version__": "2.13.0+cpu", "cuda": None, "hip": None})
    assert provenance.gpu_names({}) == "none (CPU only)"


def test_provenance_reads_the_torch_build_without_importing_torch():
    """Importing torch took the report job 2-3 s on a GPU machine; the provenance needs only its version file."""
    import torch

    code = ("import sys; from siteaug.runtime.provenance import machine_provenance, torch_build; "
            f"info = machine_provenance({str(REPO)!r}); print(torch_build()); assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == repr({"__version__": torch.__version__, "cuda": torch.version.cuda, "hip": torch.version.hip})
