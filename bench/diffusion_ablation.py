"""Ablation of the diffusion generator on DNA-573: sampler × steps × noise schedule.

    python bench/diffusion_ablation.py --device cuda [--json OUT.json] [--model cosine.pt]
    python bench/diffusion_ablation.py --quick          # CPU smoke run: few proteins, tiny model

Splits proteins as the workflow does (seeded, protein level: train / validation / test; test is never read), builds
the workflow's features, trains one model per noise schedule (or loads ``--model`` for its schedule), then for every
sampler × steps cell generates candidates for the training proteins and measures

- generation quality against real training positives (siteaug.evaluation.sample_quality: k-NN precision / recall, C2ST AUC,
  DCR against held-back validation positives, Wasserstein, correlation distance),
- the filter's acceptance rate (siteaug.generative.quality, the workflow's critic × realism score),
- the downstream validation AUPRC of the diffusion arm: balance (siteaug.generative.balance), the workflow's classifier
  (siteaug.arms.classifier), scored on the validation proteins. The ``none`` arm is trained once as the reference.

Prints a table, with seconds per cell, and writes every number to JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siteaug.generative.balance import balance_training, synthetic_quota  # noqa: E402
from siteaug.arms.classifier import MLPClassifier, MLPConfig  # noqa: E402
from siteaug.generative.diffusion import DiffusionConfig, SAMPLERS, load_model  # noqa: E402
from siteaug.features.residues import build_feature_tables, feature_columns, standardise  # noqa: E402
from siteaug.generative.generation import generate_candidates  # noqa: E402
from siteaug.features.graphs import protein_contexts  # noqa: E402
from siteaug.runtime.io import read_parquet, write_json  # noqa: E402
from siteaug.inputs.prepare import prepare_proteins  # noqa: E402
from siteaug.generative.quality import RealismModel, quality_scores, select_candidates  # noqa: E402
from siteaug.evaluation.sample_quality import acceptance_rate, sample_quality  # noqa: E402
from siteaug.generative.training import best_step, train_diffusion  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "graphsite_dna"
FULL = dict(hidden=512, blocks=4, context=256, gnn_hidden=128, gnn_layers=2, gnn_heads=4, timesteps=200,
            train_steps=3000, batch_proteins=16, eval_every=100, classifier_epochs=20, max_rows=10000)
QUICK = dict(hidden=32, blocks=2, context=16, gnn_hidden=16, gnn_layers=1, gnn_heads=2, timesteps=50,
             train_steps=60, batch_proteins=4, eval_every=20, classifier_epochs=2, max_rows=1500)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DATA / "DNA_Train_573.fa")
    parser.add_argument("--structures", type=Path, default=DATA / "pdb")
    parser.add_argument("--features", type=Path,
                        help="a folder holding the workflow's residues.parquet and edges.parquet (results/features), used "
                             "instead of --labels/--structures; its split is the one the workflow made")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 training + 10 validation proteins, tiny model")
    parser.add_argument("--model", type=Path, help="a trained model.pt to use for its schedule instead of training one")
    parser.add_argument("--schedules", nargs="+", default=["cosine", "linear"], choices=["cosine", "linear"])
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    parser.add_argument("--steps", nargs="+", type=int, default=[10, 20, 50, 200])
    parser.add_argument("--target-ratio", type=float, default=0.5,
                        help="positive ratio of the balanced table (the workflow default 0.9 needs 9x more samples per cell)")
    parser.add_argument("--sample-multiplier", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.5, help="filter quality threshold")
    parser.add_argument("--threads", type=int, default=max(1, torch.get_num_threads()))
    parser.add_argument("--json", type=Path, default=REPO / "results" / "bench" / "diffusion_ablation.json")
    return parser.parse_args()


def load_residues(args) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Workflow features of the training and validation proteins (the test split is never read: this chooses defaults)."""
    if args.features is not None:
        residues = read_parquet(args.features / "residues.parquet")
        edges = read_parquet(args.features / "edges.parquet")
        chosen = chosen_proteins(residues.drop_duplicates("protein_id")[["protein_id", "split"]], args.quick)
        return residues[residues["protein_id"].isin(chosen)].reset_index(drop=True), edges[edges["protein_id"].isin(chosen)]
    for path in (args.labels, args.structures):
        if not path.exists():
            sys.exit(f"{path} not found: pass --labels / --structures (DNA-573 from GraphSite) or --features")
    proteins = prepare_proteins(str(args.labels), str(args.structures), 0.15, 0.15, args.seed, missing_structure="sequence_graph")
    proteins = proteins[proteins["protein_id"].isin(chosen_proteins(proteins, args.quick))].reset_index(drop=True)
    residues, edges = build_feature_tables(proteins, threads=args.threads)
    residues, _ = standardise(residues, feature_columns(residues))
    return residues.copy(), edges  # copy(): one block per dtype, as a table read from parquet is


def chosen_proteins(proteins: pd.DataFrame, quick: bool) -> set[str]:
    """Training and validation proteins; with ``quick`` the first 30 and 10 of them."""
    train = proteins.loc[proteins["split"] == "train", "protein_id"]
    validation = proteins.loc[proteins["split"] == "validation", "protein_id"]
    if quick:
        train, validation = train.head(30), validation.head(10)
    return set(train) | set(validation)


def get_model(schedule: str, residues, edges, args, sizes, device):
    """(model, training record): ``--model`` when it has this schedule, else trained here."""
    if args.model is not None:
        model, extra = load_model(args.model, device)
        if extra.get("feature_columns") != feature_columns(residues):
            sys.exit(f"{args.model}: its feature columns differ from the ones built here; retrain or drop --model")
        if model.config.schedule == schedule:
            return model, {"loaded": str(args.model), "config": asdict(model.config)}
    config = DiffusionConfig(feature_dim=len(feature_columns(residues)), schedule=schedule,
                             **{k: sizes[k] for k in ("hidden", "blocks", "context", "gnn_hidden", "gnn_layers", "gnn_heads", "timesteps")})
    start = time.perf_counter()
    model, history = train_diffusion(residues, edges, config, sizes["train_steps"], sizes["batch_proteins"], 1e-3, args.seed,
                                     device, eval_every=sizes["eval_every"], progress=False, ema_decay=0.999, patience=5)
    seconds = time.perf_counter() - start
    print(f"trained {schedule}: {seconds:.1f} s, kept step {best_step(history)} of {history[-1]['step']}", flush=True)
    return model, {"seconds": seconds, "best_step": best_step(history), "history": history, "config": asdict(config)}


def classifier_config(input_dim: int, epochs: int, seed: int, balanced: bool = False) -> MLPConfig:
    # The workflow's classifier section defaults (hidden [256, 128], dropout 0.1, batch 1024, lr 1e-3).
    return MLPConfig(input_dim=input_dim, epochs=epochs, balanced=balanced, seed=seed)


def validation_auprc(X, y, validation: pd.DataFrame, cols, epochs: int, seed: int, device) -> float:
    model = MLPClassifier(classifier_config(len(cols), epochs, seed), device).fit(X, y)
    return float(average_precision_score(validation["label"], model.predict_proba(validation[cols].to_numpy(np.float32))))


def run_cell(model, sampler: str, steps: int, ctx: dict) -> dict:
    """Generate, measure, filter, balance and train the diffusion arm for one sampler setting."""
    args, cols, train, device = ctx["args"], ctx["cols"], ctx["train"], ctx["device"]
    timings = {}
    start = time.perf_counter()
    contexts = protein_contexts(model, ctx["residues"], ctx["edges"], cols, ctx["quota"].index.tolist(), device)
    candidates = generate_candidates(
        model, contexts, cols, ctx["quota"] * args.sample_multiplier, seed=args.seed, device=device,
        precision="tf32", sampler=sampler, sampler_steps=None if steps == model.config.timesteps else steps, progress=False,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    timings["generate"] = time.perf_counter() - start

    start = time.perf_counter()
    X = candidates[cols].to_numpy(np.float32)
    metrics = sample_quality(ctx["train_positives"], ctx["held_back"], X, args.seed, max_rows=ctx["sizes"]["max_rows"],
                             device=device, threads=args.threads)
    timings["quality"] = time.perf_counter() - start

    start = time.perf_counter()
    realism, near_copy = ctx["realism"].score(X, near_copy_fraction=0.1)
    scores = quality_scores(ctx["critic"].predict_proba(X), realism, near_copy)
    kept = select_candidates(candidates.assign(quality_score=scores), ctx["quota"], args.threshold)
    table, summary = balance_training(train, kept, args.target_ratio, args.seed, cols)
    timings["filter_balance"] = time.perf_counter() - start

    start = time.perf_counter()
    auprc = validation_auprc(table[cols].to_numpy(np.float32), table["label"].to_numpy(np.int64), ctx["validation"], cols,
                             ctx["sizes"]["classifier_epochs"], args.seed, device)
    timings["classifier"] = time.perf_counter() - start
    return {
        **metrics,
        "candidates": len(candidates),
        "filter_acceptance_rate": acceptance_rate(scores, args.threshold),
        "near_copy_fraction": float(near_copy.mean()),
        "synthetic_used": summary["synthetic_used"],
        "synthetic_needed": summary["synthetic_needed"],
        "validation_auprc": auprc,
        "seconds": {**timings, "total": sum(timings.values())},
    }


def cells(args, timesteps: int):
    for sampler in args.samplers:
        for steps in sorted(set(args.steps)):
            if steps > timesteps:
                continue
            if sampler == "ddpm" and steps != timesteps:
                continue  # ancestral DDPM visits all T steps
            yield sampler, steps


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    residues, edges = load_residues(args)
    cols = feature_columns(residues)
    train = residues[residues["split"] == "train"]
    validation = residues[residues["split"] == "validation"]
    print(f"features: {residues['protein_id'].nunique()} proteins ({train['protein_id'].nunique()} train), "
          f"{len(cols)} features, {time.perf_counter() - t0:.1f} s", flush=True)
    train_positives = train.loc[train["label"] == 1, cols].to_numpy(np.float32)

    start = time.perf_counter()
    critic = MLPClassifier(classifier_config(len(cols), sizes["classifier_epochs"], args.seed, balanced=True), device)
    critic.fit(train[cols].to_numpy(np.float32), train["label"].to_numpy(np.int64))
    baseline = validation_auprc(train[cols].to_numpy(np.float32), train["label"].to_numpy(np.int64), validation, cols,
                                sizes["classifier_epochs"], args.seed, device)
    print(f"critic + none arm: {time.perf_counter() - start:.1f} s; none arm validation AUPRC {baseline:.4f}", flush=True)
    ctx = dict(
        args=args, cols=cols, train=train, validation=validation, residues=residues, edges=edges, device=device, sizes=sizes,
        quota=synthetic_quota(train, args.target_ratio).set_index("protein_id")["quota"],
        train_positives=train_positives,
        held_back=validation.loc[validation["label"] == 1, cols].to_numpy(np.float32),
        critic=critic, realism=RealismModel.fit(train_positives, 5, device),
    )
    rows, training = [], {}
    for schedule in args.schedules:
        model, training[schedule] = get_model(schedule, residues, edges, args, sizes, device)
        for sampler, steps in cells(args, model.config.timesteps):
            result = run_cell(model, sampler, steps, ctx)
            rows.append({"schedule": schedule, "sampler": sampler, "steps": steps, **result})
            s = result["seconds"]
            print(f"{schedule:6s} {sampler:8s} {steps:4d}: AUPRC {result['validation_auprc']:.4f} C2ST {result['c2st_auc']:.3f} "
                  f"P/R {result['knn_precision']:.3f}/{result['knn_recall']:.3f} | {s['total']:.1f} s (generate {s['generate']:.1f}, "
                  f"quality {s['quality']:.1f}, filter+balance {s['filter_balance']:.1f}, classifier {s['classifier']:.1f})", flush=True)
            # rewritten after every cell, so that a run cut short still leaves what it measured
            write_results(args, sizes, device, baseline, training, rows, time.perf_counter() - t0)
    print_table(rows, baseline)
    print(f"wall time {time.perf_counter() - t0:.1f} s on {device}; wrote {args.json}")


def write_results(args, sizes, device, baseline, training, rows, wall) -> None:
    payload = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "sizes": sizes,
               "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "none_validation_auprc": baseline, "training": training, "cells": rows, "wall_seconds": wall}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(payload, args.json)


def print_table(rows: list[dict], baseline: float) -> None:
    columns = ["schedule", "sampler", "steps", "validation_auprc", "knn_precision", "knn_recall", "c2st_auc",
               "dcr_synthetic_median", "dcr_held_back_median", "dcr_synthetic_below_held_back_p5", "wasserstein_mean",
               "correlation_distance", "filter_acceptance_rate"]
    table = pd.DataFrame(rows)[columns].assign(seconds=[r["seconds"]["total"] for r in rows])
    print(f"\nnone arm (real rows only) validation AUPRC: {baseline:.4f}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
