"""Fidelity of generated rows, old vs new column handling: how hard synthetic positives are to tell from real ones.

    python bench/generation_fidelity.py --features results/features --configfile config/ppi335.yaml [--device cuda]
        [--settings raw quantile discrete codec] [--steps 300] [--json OUT.json]

For each setting (``diffusion.quantile_transform`` / ``discrete_columns`` / ``circular_columns``: ``raw`` = off/off/off,
the model before siteaug.generative.columns; ``quantile`` = on/off/off; ``discrete`` = off/on/off; ``codec_no_circles`` =
on/on/off, the codec before circle pairs; ``codec`` = on/on/on, the default, which reads the folder's
standardisation.json) it trains the
workflow's diffusion model on the training positives of the features folder (residues.parquet + edges.parquet, the
workflow's split; the test split is never read) with the config's sizes (config/config.yaml, then each
``--configfile`` on top, then schema defaults), generates as many candidates per training protein as it has positives,
with the config's sampler, and measures with siteaug.evaluation.sample_quality:

- ``val_*``: synthetic rows against the **validation** positives, at the validation split's size (the issue-13 targets:
  ``val_c2st_auc_continuous`` <= 0.75, ``val_knn_precision`` >= 0.5);
- ``train_*``: the rule ``sample_quality``'s metrics (against training positives, DCR against validation ones);
- the row ``real``: training positives (subsampled to the validation size) against validation positives, what a
  perfect generator would get (protein-level split: not 0.5).

Prints a table and writes every number to JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siteaug.generative.columns import fit_codec  # noqa: E402
from siteaug.runtime.device import resolve_device  # noqa: E402
from siteaug.generative.diffusion import DiffusionConfig  # noqa: E402
from siteaug.features.residues import feature_columns  # noqa: E402
from siteaug.generative.generation import generate_candidates  # noqa: E402
from siteaug.features.graphs import protein_contexts  # noqa: E402
from siteaug.runtime.io import read_parquet, write_json  # noqa: E402
from siteaug.runtime.tables import read_json  # noqa: E402
from siteaug.evaluation.sample_quality import (  # noqa: E402
    c2st_auc, continuous_columns, knn_precision_recall, mean_wasserstein, sample_quality, subsample,
)
from siteaug.generative.training import best_step, train_diffusion  # noqa: E402

SETTINGS = {"raw": (False, False, False), "quantile": (True, False, False), "discrete": (False, True, False),
            "codec_no_circles": (True, True, False), "codec": (True, True, True)}
MODEL_KEYS = ("hidden", "blocks", "context", "gnn_hidden", "gnn_layers", "gnn_heads", "timesteps", "schedule", "clip_denoised", "mlp_ratio")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="folder with residues.parquet and edges.parquet")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[], help="overlays on config/config.yaml, in order")
    parser.add_argument("--settings", nargs="+", default=["raw", "codec"], choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, help="optimiser steps (default: the config's diffusion.steps)")
    parser.add_argument("--sampler", help="override generation.sampler")
    parser.add_argument("--sampler-steps", type=int, help="override generation.sampler_steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-rows", type=int, default=5000, help="rows of each set in the train_* metrics")
    parser.add_argument("--threads", type=int, default=max(1, torch.get_num_threads()))
    parser.add_argument("--json", type=Path, default=REPO / "results" / "bench" / "generation_fidelity.json")
    return parser.parse_args()


def load_config(overlays: list[Path]) -> dict:
    """config/config.yaml, the overlays, then the schema defaults of the sections used here."""
    config: dict = {}
    for path in [REPO / "config" / "config.yaml", *overlays]:
        for section, values in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(values, dict):
                config.setdefault(section, {}).update(values)
            else:
                config[section] = values
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]
    for section in ("diffusion", "generation", "quality"):
        for key, spec in schema[section]["properties"].items():
            config.setdefault(section, {}).setdefault(key, spec.get("default"))
    config.setdefault("seed", schema["seed"].get("default", 0))
    return config


def compare(real: np.ndarray, synthetic: np.ndarray, seed: int, k: int, folds: int, threads: int) -> dict:
    """C2ST (all columns and continuous ones), k-NN precision / recall, Wasserstein at the smaller set's size."""
    n = min(len(real), len(synthetic))
    rng = np.random.default_rng(seed)
    real, synthetic = subsample(real, n, rng), subsample(synthetic, n, rng)
    continuous = continuous_columns(real)
    precision, recall = knn_precision_recall(real, synthetic, k)
    return {
        "rows": n,
        "c2st_auc": c2st_auc(real, synthetic, seed, folds, threads),
        "c2st_auc_continuous": c2st_auc(real[:, continuous], synthetic[:, continuous], seed, folds, threads),
        "knn_precision": precision,
        "knn_recall": recall,
        "wasserstein_mean": mean_wasserstein(real, synthetic),
    }


def run_setting(name, residues, edges, config, args, device) -> dict:
    quantile, discrete, circular = SETTINGS[name]
    d, g, q, seed = config["diffusion"], config["generation"], config["quality"], config["seed"]
    began = time.perf_counter()
    standardisation = read_json(args.features / "standardisation.json") if circular else None
    codec = fit_codec(residues, seed, quantile=quantile, discrete=discrete, standardisation=standardisation)
    model_config = DiffusionConfig(feature_dim=codec.model_dim, **{k: d[k] for k in MODEL_KEYS})
    steps = args.steps or d["steps"]
    model, history = train_diffusion(residues, edges, model_config, steps, d["batch_proteins"], d["lr"], seed, device,
                                     eval_every=d["eval_every"], progress=False, ema_decay=d["ema_decay"], patience=d["patience"], codec=codec)
    trained = time.perf_counter()
    train = residues[residues["split"] == "train"]
    counts = train.groupby("protein_id")["label"].sum().astype(np.int64)  # int8 labels would sum in int8
    counts = counts[counts > 0]
    contexts = protein_contexts(model, codec.encode_table(residues), edges, codec.model_columns, counts.index.tolist(), device)
    sampler = args.sampler or g["sampler"]
    sampler_steps = args.sampler_steps if args.sampler_steps is not None else (None if sampler == "ddpm" else g["sampler_steps"])
    table = generate_candidates(model.to(device), contexts, codec.names, counts, seed=seed, device=device, precision=g["precision"],
                                sampler=sampler, sampler_steps=sampler_steps, progress=False, codec=codec)
    generated = time.perf_counter()
    cols = codec.names
    synthetic = table[cols].to_numpy(np.float32)
    positives = residues[residues["label"] == 1]
    train_pos = positives.loc[positives["split"] == "train", cols].to_numpy(np.float32)
    val_pos = positives.loc[positives["split"] == "validation", cols].to_numpy(np.float32)
    val = compare(val_pos, synthetic, seed, q["knn_k"], q["c2st_folds"], args.threads)
    train_metrics = sample_quality(train_pos, val_pos, synthetic, seed, q["knn_k"], args.max_rows, q["c2st_folds"], threads=args.threads)
    return {
        "setting": name, "quantile_transform": quantile, "discrete_columns": discrete, "codec": codec.describe(),
        "model_columns": codec.model_dim, "steps": steps, "best_step": best_step(history), "sampler": sampler,
        "sampler_steps": sampler_steps, "candidates": len(table),
        "train_seconds": trained - began, "generate_seconds": generated - trained,
        **{f"val_{k}": v for k, v in val.items()},
        **{f"train_{k}": v for k, v in train_metrics.items()},
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.configfile)
    device = resolve_device(args.device)
    residues = read_parquet(args.features / "residues.parquet")
    residues = residues[residues["split"].isin(["train", "validation"])].reset_index(drop=True)
    edges = read_parquet(args.features / "edges.parquet")
    edges = edges[edges["protein_id"].isin(set(residues["protein_id"]))]
    cols = feature_columns(residues)
    positives = residues[residues["label"] == 1]
    q, seed = config["quality"], config["seed"]
    real = compare(positives.loc[positives["split"] == "validation", cols].to_numpy(np.float32),
                   positives.loc[positives["split"] == "train", cols].to_numpy(np.float32), seed, q["knn_k"], q["c2st_folds"], args.threads)
    rows = [{"setting": "real", **{f"val_{k}": v for k, v in real.items()}}]
    print(f"features {args.features} ({len(cols)} columns), config {[str(p) for p in args.configfile]}, device {device}", flush=True)
    print(f"real train vs validation positives: {json.dumps(real)}", flush=True)
    for name in args.settings:
        rows.append(run_setting(name, residues, edges, config, args, device))
        print(json.dumps(rows[-1]), flush=True)
    shown = ["setting", "val_rows", "val_c2st_auc_continuous", "val_c2st_auc", "val_knn_precision", "val_knn_recall",
             "val_wasserstein_mean", "train_c2st_auc_continuous", "train_knn_precision", "train_dcr_synthetic_median",
             "train_dcr_held_back_median", "train_seconds", "generate_seconds"]
    print(pd.DataFrame(rows).reindex(columns=shown).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    write_json({"features": str(args.features), "configfiles": [str(p) for p in args.configfile], "device": str(device),
                "steps": args.steps, "rows": rows}, args.json)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
