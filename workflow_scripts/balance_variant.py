import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.arms.classifier import MLPClassifier
from siteaug.arms.registry import RATIO_SWEEP, SMOTE_FILTERED, UNFILTERED, lookup_arm, sweep_ratio
from siteaug.generative.variants import smote_filtered_table, sweep_table, unfiltered_table
from siteaug.runtime.device import configured_gpu_slot, resolve_device
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.tables import feature_columns, read_parquet_parts, train_rows
from siteaug.runtime.workflow import rounded, rule_logging

# Only smote_filtered uses the card (the quality filter's critic and k-NN search), as filter_shard does.
with rule_logging(snakemake) as log, configured_gpu_slot(snakemake.params.gpu):
    p, i, variant = snakemake.params, snakemake.input, snakemake.wildcards.variant
    kind = lookup_arm(variant).variant  # which table to build; rules/common.smk variant_inputs gave its inputs
    residues = read_parquet(i.residues)
    train = train_rows(residues)
    cols = feature_columns(residues)
    if kind == UNFILTERED:
        quota = read_parquet(i.plan).set_index("protein_id")["quota"]  # rule plan_generation
        table, summary = unfiltered_table(train, read_parquet_parts(i.generated), quota, p.ratio, p.seed, cols)
    elif kind == SMOTE_FILTERED:
        f = p.settings["filter"]
        device = resolve_device(f["device"])
        critic = MLPClassifier.load(i.critic, device)
        table, summary = smote_filtered_table(
            train, critic, p.ratio, p.seed, cols, p.settings["sample_multiplier"], f["quality_threshold"],
            f["knn_k"], f["near_copy_fraction"], device,
        )
    elif kind == RATIO_SWEEP:
        table, summary = sweep_table(train, read_parquet_parts(i.filtered), sweep_ratio(variant), p.ratio, p.seed, cols)
    else:
        raise ValueError(f"arm {variant}: balance_variant builds no table of kind {kind!r}")
    log.info("%s: %s", variant, rounded(summary))
    write_parquet(table, snakemake.output.table)
    write_json(summary, snakemake.output.summary)
