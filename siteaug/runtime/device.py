"""Device choice for GPU rules: each job holds exactly one free card.

Snakemake's ``--resources gpu=N`` only limits how many GPU jobs run at once and leaves ``CUDA_VISIBLE_DEVICES``
alone, so without this every job would land on card 0. A card assigned by the scheduler (SLURM sets
``CUDA_VISIBLE_DEVICES`` inside the job) is respected; otherwise a job takes the first free card from the device list
under an exclusive ``flock`` on one lock file per card. The kernel drops the lock when the process exits or is killed,
so a crashed job never leaves a card marked busy.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_LOCK_DIR = "/tmp/siteaug-gpu-locks"


def listed_cards() -> list[dict]:
    """The NVIDIA cards of this machine as ``nvidia-smi --list-gpus`` lists them (index, name, uuid); none without the
    driver. Not the CUDA runtime: asking it would fix CUDA_VISIBLE_DEVICES for good, and importing torch takes seconds."""
    try:
        listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30, check=True)
    except (FileNotFoundError, subprocess.SubprocessError):
        return []
    cards = []
    for line in listing.stdout.splitlines():  # GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5e1f...)
        found = re.match(r"^GPU (\d+): (.*?)(?: \(UUID: ([^)]*)\))?$", line.strip())
        if found:
            cards.append({"index": found.group(1), "name": found.group(2), "uuid": found.group(3) or ""})
    return cards


def visible_device_count() -> int:
    """GPUs on this machine, counted by nvidia-smi."""
    return len(listed_cards())


def visible_devices(environ) -> list[str] | None:
    """The entries of CUDA_VISIBLE_DEVICES (card indices or UUIDs), or None when it is not set."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    return None if visible is None else [d.strip() for d in visible.split(",") if d.strip()]


def candidate_devices(configured, environ) -> list[str]:
    """The cards a job may take: CUDA_VISIBLE_DEVICES when set, else the configured list, else all cards."""
    visible = visible_devices(environ)
    if visible is not None:
        return visible
    if configured not in (None, "auto"):
        return [str(d) for d in configured]
    return [str(i) for i in range(visible_device_count())]


def _lock_name(card: str, slot: int) -> str:
    # Slot 0 keeps the name of the one-job-per-card lock: a workflow with jobs_per_card 1 on the same machine waits for
    # the first job on a card, of whichever workflow.
    return f"gpu{card}.lock" if slot == 0 else f"gpu{card}.{slot}.lock"


@contextlib.contextmanager
def gpu_slot(configured="auto", lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR, environ: dict | None = None, poll_seconds: float = 1.0, timeout: float | None = None,
             torch_has_gpu: bool | None = None, jobs_per_card: int = 1):
    """Hold one GPU for the duration of the block and expose only it through ``CUDA_VISIBLE_DEVICES``.

    Yields the card's id, or None when there is no GPU (the job then runs on the CPU). ``torch_has_gpu`` (default:
    whether the installed torch is a CUDA or ROCm build) False means no card can be used, so none is held or logged.
    ``jobs_per_card`` > 1 lets that many jobs hold one card at once (one lock file per slot), the first slot of every
    card taken before any second one.
    """
    if jobs_per_card < 1:
        raise ValueError(f"gpu.jobs_per_card must be at least 1, not {jobs_per_card}")
    environ = os.environ if environ is None else environ
    if torch_has_gpu is None:
        import torch

        torch_has_gpu = torch.version.cuda is not None or torch.version.hip is not None
    # A card SLURM assigned is the job's whatever torch can do with it: pin and log it (the scheduler already holds it).
    if environ.get("SLURM_JOB_ID") and environ.get("CUDA_VISIBLE_DEVICES"):
        card = environ["CUDA_VISIBLE_DEVICES"].split(",")[0].strip()
        environ["CUDA_VISIBLE_DEVICES"] = card
        log.info("using GPU %s assigned by SLURM job %s", card, environ["SLURM_JOB_ID"])
        yield card
        return
    if not torch_has_gpu:
        yield None
        return
    devices = candidate_devices(configured, environ)
    if not devices:
        yield None
        return
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    slots = [(card, slot) for slot in range(jobs_per_card) for card in devices]
    while True:
        for card, slot in slots:
            handle = open(lock_dir / _lock_name(card, slot), "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            environ["CUDA_VISIBLE_DEVICES"] = card
            log.info("holding GPU %s (lock %s)", card, handle.name)
            try:
                yield card
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {devices} after {timeout} s (locks in {lock_dir})")
        if not waited:
            log.info("all GPUs %s busy; waiting for one to free up", devices)
            waited = True
        time.sleep(poll_seconds)


def configured_gpu_slot(settings: dict):
    """:func:`gpu_slot` as the config's ``gpu`` section (devices, lock_dir, jobs_per_card) sets it: what every GPU rule
    script holds."""
    return gpu_slot(settings["devices"], settings["lock_dir"], jobs_per_card=settings["jobs_per_card"])


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)
