"""Feature-group ablation on DNA-573: sequence-only vs sequence + structure, same classifier, same protein split.

    python bench/feature_ablation.py [--threads 2] [--epochs 10] [--seed 0]

For each group setting: features of all 573 proteins (structures from ../shared/datasets/graphsite_dna/pdb; the
four without a model get structure zeros and has_structure = 0), standardised on the training proteins, then the
`none` arm (real rows, no augmentation) of siteaug.arms.protocol trained with the classifier defaults. The split is
siteaug.inputs.prepare.split_proteins at protein level (70/15/15); metrics are AUROC and AUPRC (scikit-learn) on the
validation and the test proteins. CPU; a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siteaug.arms.protocol import arm_training_rows  # noqa: E402
from siteaug.arms.classifier import MLPClassifier, MLPConfig  # noqa: E402
from siteaug.features.residues import build_feature_tables, feature_columns, standardise  # noqa: E402
from siteaug.runtime.io import read_label_fasta  # noqa: E402
from siteaug.inputs.prepare import protein_table, split_proteins  # noqa: E402

DNA = ROOT.parent / "shared" / "datasets" / "graphsite_dna"
SETTINGS = {"sequence": ["sequence"], "sequence+structure": ["sequence", "structure"]}


def proteins(seed: int):
    records = read_label_fasta(DNA / "DNA_Train_573.fa")
    paths = [str(DNA / "pdb" / f"{r.protein_id}.pdb") if (DNA / "pdb" / f"{r.protein_id}.pdb").is_file() else ""
             for r in records]
    split = split_proteins([r.protein_id for r in records], 0.15, 0.15, seed)
    return protein_table(records, paths, split, "labels")


def evaluate(groups, table, args) -> dict:
    start = time.perf_counter()
    residues, _ = build_feature_tables(table, (8.0, 12.0), 10.0, threads=args.threads, groups=groups)
    feature_seconds = time.perf_counter() - start
    residues, _ = standardise(residues, feature_columns(residues))
    cols = feature_columns(residues)
    train = residues[residues["split"] == "train"]
    X, y = arm_training_rows("none", train, None, 0.5, args.seed, cols)
    model = MLPClassifier(MLPConfig(input_dim=len(cols), epochs=args.epochs, seed=args.seed), "cpu").fit(X, y)
    row = {"features": len(cols), "feature_s": feature_seconds}
    for split in ("validation", "test"):
        part = residues[residues["split"] == split]
        scores = model.predict_proba(part[cols].to_numpy(np.float32))
        row[f"{split}_auroc"] = roc_auc_score(part["label"], scores)
        row[f"{split}_auprc"] = average_precision_score(part["label"], scores)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (DNA / "DNA_Train_573.fa").is_file():
        sys.exit(f"DNA-573 not found at {DNA}")
    torch.set_num_threads(1)  # the MLP is small: one thread avoids OpenMP spin-waits on a busy shared machine
    table = proteins(args.seed)
    counts = table.groupby("split")[["n_residues", "n_positives"]].sum()
    print(f"split (seed {args.seed}): " + ", ".join(
        f"{s}: {int((table['split'] == s).sum())} proteins, {int(counts.loc[s, 'n_positives'])} positives"
        for s in ("train", "validation", "test")))
    print("| groups | features | validation AUROC | validation AUPRC | test AUROC | test AUPRC | feature time (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, groups in SETTINGS.items():
        r = evaluate(groups, table, args)
        print(f"| {name} | {r['features']} | {r['validation_auroc']:.3f} | {r['validation_auprc']:.3f} | "
              f"{r['test_auroc']:.3f} | {r['test_auprc']:.3f} | {r['feature_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
