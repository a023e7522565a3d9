import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import pandas as pd

from siteaug.balance import balance_training
from siteaug.features import feature_columns
from siteaug.io import read_parquet, write_json, write_parquet
from siteaug.workflow import rounded, rule_logging

with rule_logging(snakemake) as log:
    residues = read_parquet(snakemake.input.residues)
    synthetic = pd.concat([read_parquet(path) for path in snakemake.input.filtered], ignore_index=True)
    train = residues[residues["split"] == "train"]
    table, summary = balance_training(train, synthetic, snakemake.params.ratio, snakemake.params.seed, feature_columns(residues))
    log.info("balanced: %s", rounded(summary))
    write_parquet(table, snakemake.output.table)
    write_json(summary, snakemake.output.summary)
