import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import pandas as pd

from siteaug.arms import sweep_ratio
from siteaug.classifier import MLPClassifier
from siteaug.device import gpu_slot, resolve_device
from siteaug.features import feature_columns
from siteaug.io import read_parquet, write_json, write_parquet
from siteaug.variants import smote_filtered_table, sweep_table, unfiltered_table
from siteaug.workflow import rounded, rule_logging

# Only smote_filtered uses the card (the quality filter's critic and k-NN search), as filter_shard does.
with rule_logging(snakemake) as log, gpu_slot(snakemake.params.gpu["devices"], snakemake.params.gpu["lock_dir"]):
    p, i, variant = snakemake.params, snakemake.input, snakemake.wildcards.variant
    residues = read_parquet(i.residues)
    train = residues[residues["split"] == "train"]
    cols = feature_columns(residues)
    if variant == "diffusion_unfiltered":
        candidates = pd.concat([read_parquet(path) for path in i.generated], ignore_index=True)
        table, summary = unfiltered_table(train, candidates, p.ratio, p.seed, cols)
    elif variant == "smote_filtered":
        device = resolve_device(p.filter["device"])
        critic = MLPClassifier.load(i.critic, device)
        table, summary = smote_filtered_table(
            train, critic, p.ratio, p.seed, cols, p.sample_multiplier, p.filter["quality_threshold"],
            p.filter["knn_k"], p.filter["near_copy_fraction"], device,
        )
    else:
        filtered = pd.concat([read_parquet(path) for path in i.filtered], ignore_index=True)
        table, summary = sweep_table(train, filtered, sweep_ratio(variant), p.ratio, p.seed, cols)
    log.info("%s: %s", variant, rounded(summary))
    write_parquet(table, snakemake.output.table)
    write_json(summary, snakemake.output.summary)
