"""A one-node SLURM cluster on localhost, for CI: munged, slurmctld and slurmd run without systemd.

Everything (slurm.conf, gres.conf, munge key and socket, state, spool, logs, PID files, fake GPU devices) lives in one
folder, on free ports. One thing lives outside it: /etc/slurm/slurm.conf, Slurm's compiled-in default, becomes a
symlink to this folder's slurm.conf while the cluster runs, because snakemake-executor-plugin-slurm-jobstep strips
every SLURM_* variable (SLURM_CONF included) before its srun inside a job, so that srun finds only the default path.
Hence a host that already has /etc/slurm/slurm.conf (a configured SLURM machine) is refused. The daemons are started in
the foreground and stopped by their PIDs. Needs root (SlurmUser=root, mknod) and Debian's
``slurmctld slurmd slurm-client munge`` packages (tested with Slurm 22.05 from Debian 12).

From a shell::

    python tests/slurm/local_cluster.py start /tmp/slurm   # prints `export SLURM_CONF=...`
    python tests/slurm/local_cluster.py stop /tmp/slurm
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "sinfo", "scancel")
PARTITION = "ci"
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")


def missing_requirements() -> str | None:
    """Why a local cluster cannot start here (one line), or None when it can."""
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (SlurmUser=root, mknod for fake GPUs)"
    absent = [name for name in DAEMONS + CLIENTS if shutil.which(name, path=_search_path()) is None]
    if absent:
        return f"SLURM/munge programs not installed: {', '.join(absent)} (apt-get install slurmctld slurmd slurm-client munge)"
    if DEFAULT_CONF.exists():  # a dangling symlink left by a killed run does not count
        return f"{DEFAULT_CONF} exists (a configured or running SLURM); the CI cluster must own that path while it runs"
    return None


def _search_path() -> str:
    # munged, slurmctld and slurmd live in /usr/sbin, which a non-login PATH may lack.
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _total_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("MemTotal not found in /proc/meminfo")


@dataclass
class LocalCluster:
    """One slurmctld and one slurmd (node ``node``, partition ``ci``) configured under ``root``."""

    root: Path
    cpus: int = os.cpu_count() or 1
    gpus: int = 2
    # squeue forgets a finished job after MinJobAge seconds: the slurm executor needs it for >= 3 status intervals, and
    # the test lists every job of a whole run after it ends.
    min_job_age: int = 3600
    mem_per_cpu_mb: int = 1000

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        self.node = socket.gethostname().split(".")[0]

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict:
        """The environment for clients (sbatch, squeue, snakemake's slurm executor) of this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": _search_path()}

    def pid_file(self, daemon: str) -> Path:
        return self.root / "run" / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.root / "log" / f"{daemon}.log"

    # --- configuration -------------------------------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("etc", "munge", "state", "spool", "log", "run", "dev"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        for index in range(self.gpus):
            self._make_fake_gpu(self.root / "dev" / f"nvidia{index}")
        self.conf.write_text(self.slurm_conf())
        (self.conf.parent / "gres.conf").write_text(self.gres_conf())
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        if DEFAULT_CONF.is_symlink():
            DEFAULT_CONF.unlink()  # dangling (missing_requirements refuses a live one)
        DEFAULT_CONF.symlink_to(self.conf)

    @staticmethod
    def _make_fake_gpu(path: Path) -> None:
        # gres.conf File= must name a character device; major 1 minor 3 is /dev/null's.
        if path.exists():
            path.unlink()
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))

    def slurm_conf(self) -> str:
        memory = max(self.cpus * self.mem_per_cpu_mb, int(_total_memory_mb() * 0.8))
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        return "\n".join([
            "# Written by tests/slurm/local_cluster.py: a one-node cluster on localhost.",
            "ClusterName=siteaug-ci",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.root / 'munge' / 'munge.socket'}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.daemon.pid'}",
            f"SlurmdPidFile={self.root / 'run' / 'slurmd.daemon.pid'}",
            f"SlurmctldLogFile={self.log_file('slurmctld')}",
            f"SlurmdLogFile={self.log_file('slurmd')}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # No cgroups in a container: track processes through /proc and bind nothing.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            # No slurmdbd: sacct does not work, so clients must read job states from squeue while MinJobAge lasts.
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "SchedulerType=sched/backfill",
            # Allocate cores and memory, not whole nodes, so that jobs share the node; DefMemPerCPU for jobs without --mem.
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={self.mem_per_cpu_mb}",
            "GresTypes=gpu",
            "ReturnToService=2",
            f"MinJobAge={self.min_job_age}",
            # Trust the node line below rather than the detected hardware (a CI box may differ in sockets/threads).
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory}{gres} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    def gres_conf(self) -> str:
        if not self.gpus:
            return ""
        return f"Name=gpu File={self.root / 'dev'}/nvidia[0-{self.gpus - 1}]\n"

    # --- life cycle ----------------------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        reason = missing_requirements()
        if reason:
            raise RuntimeError(reason)
        try:
            self._start_daemons(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_daemons(self, timeout: float) -> None:
        self.write_config()
        munge = self.root / "munge"
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={munge / 'munge.socket'}",
                               f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                               f"--seed-file={munge / 'munged.seed'}", f"--log-file={self.log_file('munged')}"])
        self._wait_for(lambda: (munge / "munge.socket").exists(), "munged socket", timeout)
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait_for(lambda: self._client_ok("scontrol", "ping"), "slurmctld to answer scontrol ping", timeout)
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait_for(self._node_ready, f"node {self.node} to become idle", timeout)

    def _spawn(self, daemon: str, command: list[str]) -> None:
        executable = shutil.which(command[0], path=_search_path())
        with open(self.root / "log" / f"{daemon}.console", "ab") as console:
            process = subprocess.Popen([executable, *command[1:]], env=self.env, stdin=subprocess.DEVNULL,
                                       stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file(daemon).write_text(f"{process.pid}\n")
        time.sleep(0.2)
        if process.poll() is not None:
            raise RuntimeError(f"{daemon} exited with {process.returncode} at start:\n{self.log_tail(daemon)}")

    def _client_ok(self, *command: str) -> bool:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30)
        return result.returncode == 0 and "DOWN" not in result.stdout

    def _node_ready(self) -> bool:
        result = subprocess.run(["sinfo", "--noheader", "--Node", "--format=%T"], env=self.env, capture_output=True,
                                text=True, timeout=30)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _wait_for(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for daemon in DAEMONS:
                pid = self._pid(daemon)
                if pid is not None and not _alive(pid):
                    raise RuntimeError(f"{daemon} died while waiting for {what}:\n{self.log_tail(daemon)}")
            if ready():
                return
            time.sleep(0.5)
        tails = "\n".join(self.log_tail(d) for d in DAEMONS)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{tails}")

    def log_tail(self, daemon: str, lines: int = 20) -> str:
        chunks = []
        for path in (self.log_file(daemon), self.root / "log" / f"{daemon}.console"):
            if path.exists():
                chunks += [f"--- {path}", *path.read_text(errors="replace").splitlines()[-lines:]]
        return "\n".join(chunks)

    def _pid(self, daemon: str) -> int | None:
        path = self.pid_file(daemon)
        return int(path.read_text()) if path.exists() else None

    def stop(self, timeout: float = 20) -> None:
        """Cancel what is still queued, then stop slurmd, slurmctld and munged by the PIDs recorded at start."""
        if self._pid("slurmctld") is not None and _alive(self._pid("slurmctld")):
            # Only this cluster's jobs: the clients read SLURM_CONF from self.env.
            subprocess.run(["scancel", "--full", f"--partition={PARTITION}"], env=self.env, capture_output=True,
                           timeout=30)
        for daemon in reversed(DAEMONS):
            pid = self._pid(daemon)
            if pid is None:
                continue
            if _is_our_daemon(pid, daemon, self.root):
                _terminate(pid, timeout)
            self.pid_file(daemon).unlink()
        if DEFAULT_CONF.is_symlink() and Path(os.readlink(DEFAULT_CONF)) == self.conf:
            DEFAULT_CONF.unlink()


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    # A zombie that is not our child still answers kill(0).
    return not (status.exists() and status.read_text().split(") ")[-1].startswith("Z"))


def _is_our_daemon(pid: int, daemon: str, root: Path) -> bool:
    """Guard against PID reuse: the process must be this daemon started with a path under this cluster's root."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return bool(argv) and Path(argv[0].decode()).name == daemon and any(str(root).encode() in a for a in argv)


def _terminate(pid: int, timeout: float) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("root", type=Path, help="folder for the configuration, state and logs")
    parser.add_argument("--gpus", type=int, default=2, help="fake GPUs (character devices) on the node")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.root, gpus=args.gpus)
    if args.action == "start":
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
