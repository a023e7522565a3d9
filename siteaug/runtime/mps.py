"""NVIDIA's Multi-Process Service for one workflow run (``gpu.mps``).

Without MPS a card time-slices between processes: one process's kernels at a time. A run on one card has many CUDA
processes at once (the GPU rules' jobs, every arm's seed processes), so the jobs of its longest chain got only a share
of the card's time. Under MPS their kernels run on the card side by side. On DNA-573 (one H100, 16 cores, the same
machine) the whole comparison took 281.6 s under MPS against 313.5 s without, and 258.3 s with 8 GPU jobs a card
(bench/RESULTS.md, 2026-12-06, seventh session).

The daemon is the run's own: its pipe and log folders are a fresh folder under the system's temporary folder, and
only processes that carry ``CUDA_MPS_PIPE_DIRECTORY`` (the workflow's jobs, which inherit it from Snakemake) connect
to it. The card's settings (compute mode and the rest) are left alone.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from siteaug.runtime.io import InputError

CONTROL = "nvidia-cuda-mps-control"
ENVIRONMENT = ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")


class MpsDaemon:
    """Start with :meth:`start` (before the first job), stop with :meth:`stop` (after the last; also at exit)."""

    def __init__(self, environ: dict | None = None):
        self.environ = os.environ if environ is None else environ
        self.control: str | None = None
        self.folder: Path | None = None

    def start(self) -> Path:
        """Start the daemon and give this process's environment (which the jobs inherit) its pipe folder."""
        self.control = shutil.which(CONTROL, path=self.environ.get("PATH"))
        if self.control is None:
            raise InputError(f"config gpu.mps: true, but {CONTROL} (part of the NVIDIA driver) is not on PATH; "
                             "set gpu.mps: false to run without MPS")
        self.folder = Path(tempfile.mkdtemp(prefix="siteaug-mps-"))
        pipe, logs = self.folder / "pipe", self.folder / "log"
        pipe.mkdir()
        logs.mkdir()
        env = {**self.environ, "CUDA_MPS_PIPE_DIRECTORY": str(pipe), "CUDA_MPS_LOG_DIRECTORY": str(logs)}
        started = subprocess.run([self.control, "-d"], env=env, capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
            reason = (started.stderr or started.stdout).strip().splitlines()
            raise InputError(f"config gpu.mps: {CONTROL} -d failed (exit {started.returncode})"
                               + (f": {reason[-1]}" if reason else "") + "; set gpu.mps: false to run without MPS")
        self.environ.update({name: env[name] for name in ENVIRONMENT})
        atexit.register(self.stop)
        return self.folder

    def stop(self) -> Stopped | None:
        """Quit the daemon (it shuts its server down first) and remove its folder; what its logs said (see
        :class:`Stopped`), or None when it was not running."""
        if self.folder is None:
            return None
        env = {**self.environ, "CUDA_MPS_PIPE_DIRECTORY": str(self.folder / "pipe")}
        subprocess.run([self.control], input="quit\n", env=env, capture_output=True, text=True, timeout=120)
        logs = {name: (self.folder / "log" / name) for name in ("control.log", "server.log")}
        text = {name: path.read_text(errors="replace") if path.exists() else "" for name, path in logs.items()}
        # A job that failed under MPS names only its CUDA error; the daemon's own lines say why (a card in another
        # compute mode, a container without a shared IPC namespace, ...), so they go to the console with the error.
        problems = [line.strip() for log_text in text.values() for line in log_text.splitlines()
                    if re.search(r"error|fail", line, re.IGNORECASE) and not CLIENT_GONE.search(line)]
        stopped = Stopped(clients=len(re.findall(r"NEW CLIENT", text["control.log"])), problems=problems)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
        for name in ENVIRONMENT:
            self.environ.pop(name, None)
        return stopped


# The server's line for a client process that exited without closing its connection ("Server failed to recevie
# command with status 806, assuming client {PID: ..., Context ID: 0} exit", NVIDIA's spelling): routine, not a problem.
# A DNA-573 run that succeeded logged it for 2 of its client processes (bench/RESULTS.md, 2026-12-06, eighth session).
CLIENT_GONE = re.compile(r"assuming client .* exit", re.IGNORECASE)


class Stopped(NamedTuple):
    """What a stopped daemon's logs said: how many client processes connected, and its lines that name an error or a
    failure."""

    clients: int
    problems: list[str]
