"""Device choice for GPU rules: each job sees exactly one GPU."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def pin_single_gpu(environ: dict | None = None) -> str | None:
    """Restrict this process to one GPU through ``CUDA_VISIBLE_DEVICES`` before CUDA is initialised.

    A scheduler's choice (SLURM sets the variable) is respected; of several listed cards the first is kept, because
    Snakemake's ``gpu`` resource only counts jobs and would otherwise let every job see every card.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    chosen = "0" if visible is None else visible.split(",")[0].strip()
    environ["CUDA_VISIBLE_DEVICES"] = chosen
    return chosen


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)
