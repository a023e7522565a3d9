"""What gives generated rows away: per-column and per-family two-sample tests, and exact relations of the real rows.

    python bench/c2st_diagnosis.py RESULTS_DIR [--space features|embedding] [--json OUT] [--export OUT.parquet]

Against the real training positives (what the generator learnt from), on the continuous columns as
``siteaug.evaluation.sample_quality.c2st_auc`` uses them:
- the whole-row C2ST, the C2ST of each column family alone and of the row without that family
  (families: the name without ``f_`` and its last ``_token``, ``nbr_`` kept, so ``f_nbr_aa_A`` → ``nbr_aa``);
- each column's univariate ROC AUC (max(AUC, 1 − AUC): 0.5 = same marginal ordering);
- exact relations of real rows that a generator may break: columns whose real values are an exact linear function of
  other columns (least-squares residual), ``*_sin``/``*_cos`` pairs on the unit circle, and groups summing to a constant.
``--export`` writes the three row sets (real training positives, validation positives, synthetic rows, at most 20,000
each, feature columns as float32 plus ``set`` and ``protein_id``) for offline analysis.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from siteaug.evaluation.sample_quality import c2st_auc, continuous_columns
from sample_quality_tables import read_run, run_parser  # bench/, the script's own folder


def family(name: str) -> str:
    bare = name[2:] if name.startswith("f_") else name
    return bare.rsplit("_", 1)[0] if "_" in bare else bare


def exact_relations(rows: np.ndarray, names: list[str]) -> dict:
    out = {}
    scale = np.maximum(rows.std(axis=0), 1e-12)
    by_name = {n: j for j, n in enumerate(names)}
    circles = []
    for n, j in by_name.items():
        if n.endswith("_sin") and n[:-4] + "_cos" in by_name:
            k = by_name[n[:-4] + "_cos"]
            circles.append({"pair": [n, names[k]], "max_abs_radius_error": float(np.abs(np.hypot(rows[:, j], rows[:, k]) - 1).max())})
    out["unit_circles"] = circles
    groups = defaultdict(list)
    for j, n in enumerate(names):
        groups[family(n)].append(j)
    sums = {}
    for fam, cols in groups.items():
        if len(cols) > 2:
            s = rows[:, cols].sum(axis=1)
            if s.std() < 1e-5 * max(1.0, abs(s.mean())):
                sums[fam] = float(s.mean())
    out["constant_sum_families"] = sums
    # Linear dependencies: a column is derived when least squares on the other columns leaves a tiny residual.
    derived = []
    centred = (rows - rows.mean(axis=0)) / scale
    for j in range(len(names)):
        if rows[:, j].std() < 1e-12:
            continue
        others = np.delete(centred, j, axis=1)
        coef, *_ = np.linalg.lstsq(others, centred[:, j], rcond=None)
        residual = float(np.sqrt(np.mean((others @ coef - centred[:, j]) ** 2)))
        if residual < 1e-4:
            derived.append({"column": names[j], "rms_residual_in_sd": residual})
    out["linear_functions_of_other_columns"] = derived
    return out


def main() -> None:
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=20000)
    parser.add_argument("--export", type=Path)
    parser.add_argument("--export-only", action="store_true", help="write --export and compute nothing else")
    parser.add_argument("--families", action="store_true", help="also the per-family C2STs (two fits per family: slow)")
    args = parser.parse_args()
    residues, names, generated = read_run(args.results, args.space, meta=("protein_id",))
    positives = residues[residues["label"] == 1]
    rng = np.random.default_rng(args.seed)
    train_pos = positives[positives["split"] == "train"]
    train_pos = train_pos.iloc[np.sort(rng.choice(len(train_pos), min(len(train_pos), args.max_rows), replace=False))]
    held = positives[positives["split"] == "validation"]
    synthetic = generated.iloc[np.sort(rng.choice(len(generated), min(len(generated), args.max_rows), replace=False))]
    if args.export_only:
        export(args.export, names, train_pos, held, synthetic)
        return
    real = train_pos[names].to_numpy(np.float32)
    syn = synthetic[names].to_numpy(np.float32)
    continuous = continuous_columns(real)
    cont_names = [n for n, c in zip(names, continuous) if c]
    r, s = real[:, continuous], syn[:, continuous]
    result = {"space": args.space, "rows_real": len(r), "rows_synthetic": len(s), "continuous_columns": len(cont_names)}
    result["c2st_continuous"] = c2st_auc(r, s, args.seed, 5, args.threads)
    y = np.repeat([0, 1], [len(r), len(s)])
    both = np.concatenate([r, s])
    auc = {}
    for k, n in enumerate(cont_names):
        a = roc_auc_score(y, both[:, k])
        auc[n] = float(max(a, 1 - a))
    result["univariate_auc_top"] = dict(sorted(auc.items(), key=lambda kv: -kv[1])[:30])
    families = defaultdict(list)
    for k, n in enumerate(cont_names):
        families[family(n)].append(k)
    per_family = {}
    for fam, cols in (families.items() if args.families else ()):
        rest = [k for k in range(len(cont_names)) if k not in set(cols)]
        per_family[fam] = {
            "columns": len(cols),
            "c2st_alone": c2st_auc(r[:, cols], s[:, cols], args.seed, 5, args.threads),
            "c2st_without": c2st_auc(r[:, rest], s[:, rest], args.seed, 5, args.threads) if rest else None,
        }
    if per_family:
        result["families"] = dict(sorted(per_family.items(), key=lambda kv: -kv[1]["c2st_alone"]))
    result["real_relations"] = exact_relations(real.astype(np.float64), names)
    syn_rel = exact_relations(syn.astype(np.float64), names)
    result["synthetic_unit_circles"] = syn_rel["unit_circles"]
    result["synthetic_constant_sum_families"] = syn_rel["constant_sum_families"]
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    if args.export:
        export(args.export, names, train_pos, held, synthetic)


def export(path: Path, names: list[str], train_pos: pd.DataFrame, held: pd.DataFrame, synthetic: pd.DataFrame) -> None:
    frames = []
    for label, frame in (("train", train_pos), ("validation", held), ("synthetic", synthetic)):
        frames.append(pd.concat([pd.DataFrame({"set": label, "protein_id": frame["protein_id"].to_numpy()}),
                                 frame[names].astype(np.float32).reset_index(drop=True)], axis=1))
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)


if __name__ == "__main__":
    main()
