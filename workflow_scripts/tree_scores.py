import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from threadpoolctl import threadpool_limits

from siteaug.arms.tree_scores import out_of_fold_tree_scores
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log, threadpool_limits(snakemake.threads):
    table, summary = out_of_fold_tree_scores(read_parquet(snakemake.input[0]), snakemake.params.gbdt, snakemake.params.seed,
                                             threads=snakemake.threads)
    log.info("tree scores of %d residues: %s", len(table), summary)
    write_parquet(table, snakemake.output.scores)
    write_json(summary, snakemake.output.summary)
