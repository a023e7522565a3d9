import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.generative.balance import balance_training
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.tables import feature_columns, read_parquet_parts, train_rows
from siteaug.runtime.workflow import rounded, rule_logging

with rule_logging(snakemake) as log:
    residues = read_parquet(snakemake.input.residues)
    synthetic = read_parquet_parts(snakemake.input.filtered)
    train = train_rows(residues)
    table, summary = balance_training(train, synthetic, snakemake.params.ratio, snakemake.params.seed, feature_columns(residues))
    log.info("balanced: %s", rounded(summary))
    write_parquet(table, snakemake.output.table)
    write_json(summary, snakemake.output.summary)
