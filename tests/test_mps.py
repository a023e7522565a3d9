"""gpu.mps: the run's own NVIDIA MPS daemon, started before the first job and stopped after the last.

No GPU machine here: a stand-in nvidia-cuda-mps-control on PATH records how it is called (the real one was measured on
an H100, bench/RESULTS.md, 2026-12-06, seventh session).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import TINY, fake_mps_driver, new_workdir, snakemake_command
from siteaug.runtime.io import InputError
from siteaug.runtime.mps import MpsDaemon


def test_the_daemon_gets_a_folder_of_its_own_and_the_jobs_its_pipe(tmp_path):
    record = tmp_path / "calls"
    environ = {"PATH": fake_mps_driver(tmp_path), "FAKE_MPS_RECORD": str(record)}
    daemon = MpsDaemon(environ)
    folder = daemon.start()
    assert environ["CUDA_MPS_PIPE_DIRECTORY"] == str(folder / "pipe") and (folder / "pipe").is_dir()
    assert record.read_text().split() == ["start", str(folder / "pipe"), str(folder / "log")]
    assert daemon.stop() == (3, [])  # clients counted from the daemon's log; no line names an error
    assert record.read_text().splitlines()[1].split() == ["quit", str(folder / "pipe")]
    assert not folder.exists() and "CUDA_MPS_PIPE_DIRECTORY" not in environ
    assert daemon.stop() is None  # a second stop (onsuccess, then at exit) does nothing
    # The daemon's lines that name an error or a failure come back, for the console; not the routine line of a client
    # that exited without closing its connection, which names a failure too.
    environ["FAKE_MPS_SERVER_ERROR"] = "the card is in exclusive-process mode"
    daemon.start()
    assert daemon.stop().problems == ["[Server 99] Failed to start: the card is in exclusive-process mode"]


def test_no_driver_or_a_daemon_that_fails_names_the_key(tmp_path):
    with pytest.raises(InputError, match=r"config gpu.mps: true, but nvidia-cuda-mps-control .* is not on PATH"):
        MpsDaemon({"PATH": str(tmp_path)}).start()
    environ = {"PATH": fake_mps_driver(tmp_path), "FAKE_MPS_FAIL": "1"}
    before = set(Path(tempfile.gettempdir()).glob("siteaug-mps-*"))
    with pytest.raises(InputError, match=r"config gpu.mps: .* -d failed \(exit 3\): cannot start the daemon: no CUDA device"):
        MpsDaemon(environ).start()
    assert "CUDA_MPS_PIPE_DIRECTORY" not in environ
    assert set(Path(tempfile.gettempdir()).glob("siteaug-mps-*")) == before  # its folder is removed


@pytest.mark.workflow
def test_a_run_starts_its_daemon_before_the_jobs_and_stops_it_after(tmp_path_factory):
    workdir = new_workdir(tmp_path_factory, "mps")
    (workdir / "mps.yaml").write_text("gpu: {mps: true}\n")
    record = workdir / "calls"
    command = snakemake_command(workdir, "--until", "prepare", configfiles=(TINY, workdir / "mps.yaml"))
    env = {**os.environ, "PATH": fake_mps_driver(workdir), "FAKE_MPS_RECORD": str(record)}
    dry = subprocess.run([*command, "-n"], cwd=workdir, env={**env, "PATH": os.environ["PATH"]}, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]  # a dry run starts nothing, so it needs no driver
    run = subprocess.run(command, cwd=workdir, env={**env, "FAKE_MPS_SERVER_ERROR": "no shared IPC namespace"},
                         capture_output=True, text=True, timeout=300)
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-3000:]
    assert console.index("GPU jobs share the cards through NVIDIA MPS") < console.index("rule prepare:")
    assert "NVIDIA MPS stopped; 3 client processes had connected" in console
    # The daemon's own lines naming a failure reach the console (with a failed GPU job, they say why).
    assert "NVIDIA MPS log: [Server 99] Failed to start: no shared IPC namespace" in console
    assert [line.split()[0] for line in record.read_text().splitlines()] == ["start", "quit"]
    # A daemon that cannot start stops the run before its first job, with one line naming the key.
    failed = subprocess.run([*command, "--forceall"], cwd=workdir, env={**env, "FAKE_MPS_FAIL": "1"},
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert "error: config gpu.mps: nvidia-cuda-mps-control -d failed (exit 3)" in failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr and "rule prepare:" not in failed.stdout + failed.stderr
