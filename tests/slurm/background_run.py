"""The tiny demo (tests/data/tiny.yaml, every arm) through snakemake-executor-plugin-slurm on the one-node cluster of
local_cluster.py, started in the background when the test session starts (tests/conftest.py, ``slurm_tiny_run``).

The run spends most of its time waiting for the scheduler and the plugin's status polls (about 4 min on the idle
2-core machine; the three-arm lean config took 2.5 min with the CPUs idle two thirds of that time), so it overlaps the
rest of the suite. tests/test_slurm.py checks how it went through the scheduler, and
tests/test_determinism.py compares its tables with the local tiny run's (``tiny_run``).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from local_cluster import LocalCluster

from helpers import REPO, TINY, copy_config, fake_mps_driver, snakemake_command

CONFIGFILES = (TINY,)
# gpu.mps on: a cluster executor's run must leave it alone (the jobs run on the nodes). A stand-in for NVIDIA's MPS
# control program is on the run's PATH and would record a start in mps_calls beside the work directory.
MPS_OVERLAY = "gpu:\n  mps: true\n"
# A hard limit: a scheduler that never answers must fail the tests, not hang CI.
RUN_TIMEOUT_S = 1800
DAEMONS = ("munged", "slurmctld", "slurmd")


def without_gpu_assignment(env: dict) -> dict:
    # sbatch --export=ALL would carry a CUDA_VISIBLE_DEVICES of the submitting shell into every job.
    return {key: value for key, value in env.items() if key != "CUDA_VISIBLE_DEVICES"}


class SlurmTinyRun:
    """``start()`` the cluster and the run without waiting; ``wait()`` for its end; ``stop()`` the cluster.

    The run passes `--resources gpu=1`, as a local run would: the profile scopes `gpu` locally, so this must not
    serialise the GPU jobs across the cluster.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cluster = LocalCluster(self.root / "cluster")
        self.workdir = self.root / "slurm"
        self.log_path = self.root / "snakemake.log"
        self.mps_calls = self.root / "mps_calls"
        self.process: subprocess.Popen | None = None
        self.error: str | None = None  # why the run did not start or failed; raised by wait()
        self.pids: list[int] = []
        self.log = ""

    def start(self) -> None:
        try:
            self.cluster.start()
            self.pids = [int(self.cluster.pid_file(daemon).read_text()) for daemon in DAEMONS]
            copy_config(self.workdir)
            (self.root / "mps.yaml").write_text(MPS_OVERLAY)
            env = without_gpu_assignment(self.cluster.env)
            env |= {"PATH": fake_mps_driver(self.root, env.get("PATH")), "FAKE_MPS_RECORD": str(self.mps_calls)}
            with open(self.log_path, "w") as log:
                # Stdout and stderr to one file (no pipe to fill while nobody reads it), in the order they came.
                self.process = subprocess.Popen(
                    snakemake_command(self.workdir, "--profile", str(REPO / "profiles" / "ci-slurm"), "--resources",
                                      "gpu=1", configfiles=(*CONFIGFILES, self.root / "mps.yaml"), cores=None),
                    cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True,
                )
        except Exception as err:  # reported by wait(), to the tests that read the run, not to every test
            self.error = f"the local SLURM cluster or the run did not start: {type(err).__name__}: {err}"

    def wait(self) -> Path:
        """The work directory of the finished run; raises AssertionError if it did not start or failed."""
        if self.process is not None and self.error is None:
            try:
                returncode = self.process.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                returncode = f"killed after {RUN_TIMEOUT_S} s"
            self.log = self.log_path.read_text()
            if returncode != 0:
                self.error = f"SLURM run failed ({returncode}):\n{self.log[-6000:]}\n{self.cluster.log_tail('slurmctld')}"
        if self.error:
            raise AssertionError(self.error)
        return self.workdir

    def stop(self) -> list[int]:
        """Stop the run if still going and the cluster; the PIDs of daemons that survived (none expected)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self.pids:
            return []
        self.cluster.stop()
        return [pid for pid in self.pids if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except FileNotFoundError:
        return "Z"
