"""Batched generation of candidate positives for one shard of training proteins."""
from __future__ import annotations

import contextlib
import logging
import sys

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .diffusion import SiteDiffusion, ddpm_sample, sampler_tables
from .graphs import encode_contexts, protein_graphs

log = logging.getLogger(__name__)


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device):
    """fp32 everywhere; on CUDA, tf32 switches float32 matmuls to TF32 and bf16 runs the denoiser under autocast."""
    if precision not in ("fp32", "tf32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}")
    previous = torch.get_float32_matmul_precision()
    cuda = torch.device(device).type == "cuda"
    torch.set_float32_matmul_precision("high" if cuda and precision == "tf32" else "highest")
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and precision == "bf16"):
            yield
    finally:
        torch.set_float32_matmul_precision(previous)


@torch.inference_mode()
def generate_candidates(
    model: SiteDiffusion,
    residues: pd.DataFrame,
    edges: pd.DataFrame,
    feature_cols: list[str],
    candidates_per_protein: pd.Series,
    seed: int,
    device: torch.device,
    chunk_size: int = 65536,
    max_nonfinite_fraction: float = 0.5,
    precision: str = "fp32",
    progress: bool = True,
) -> pd.DataFrame:
    """Sample ``candidates_per_protein[pid]`` rows for every protein, all proteins in one batch (chunked by rows).

    Contexts and their FiLM read-outs are computed once per protein and gathered per row; the time read-outs of all T
    steps are tabulated once. ``precision`` is fp32, tf32 (TF32 matrix units on CUDA) or bf16 (autocast on CUDA).
    Rows with NaN/inf are dropped with a warning; a mostly non-finite shard is an error.
    """
    counts = candidates_per_protein[candidates_per_protein > 0]
    protein_ids = counts.index.tolist()
    columns = ["protein_id", "candidate_id", *feature_cols]
    if not protein_ids:
        return pd.DataFrame({c: pd.Series(dtype="float32" if c.startswith("f_") else ("int64" if c == "candidate_id" else "str")) for c in columns})
    graphs = protein_graphs(residues, edges, feature_cols, protein_ids)
    context_modulation = model.denoiser.context_modulation(encode_contexts(model.encoder, graphs, device))
    tables = sampler_tables(model)
    row_protein = torch.repeat_interleave(torch.arange(len(protein_ids), device=device), torch.as_tensor(counts.to_numpy(), device=device))
    generator = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    starts = range(0, len(row_protein), chunk_size)
    with matmul_precision(precision, device):
        for start in tqdm(starts, file=sys.stderr, mininterval=10, disable=not progress, desc="generate"):
            rows = row_protein[start : start + chunk_size]
            x_T = torch.randn((len(rows), len(feature_cols)), device=device, generator=generator)
            chunks.append(ddpm_sample(model, context_modulation[rows], x_T, generator, tables).float().cpu())
    samples = torch.cat(chunks).numpy()
    finite = np.isfinite(samples).all(axis=1)
    n_bad = int((~finite).sum())
    if n_bad:
        if n_bad > max_nonfinite_fraction * len(samples):
            raise RuntimeError(f"{n_bad} of {len(samples)} generated rows hold NaN/inf: the diffusion model has diverged")
        log.warning("dropped %d of %d generated rows holding NaN/inf", n_bad, len(samples))
    protein_of_row = np.repeat(np.array(protein_ids, dtype=object), counts.to_numpy())
    candidate_id = np.concatenate([np.arange(n) for n in counts.to_numpy()])
    table = pd.DataFrame(samples[finite], columns=feature_cols)
    table.insert(0, "candidate_id", candidate_id[finite].astype(np.int64))
    table.insert(0, "protein_id", protein_of_row[finite].astype(str))
    return table[columns]
