import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.generative.balance import generation_plan
from siteaug.runtime.io import read_parquet, write_parquet
from siteaug.runtime.tables import train_rows
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    p = snakemake.params
    residues = read_parquet(snakemake.input[0], columns=["protein_id", "split", "label"])
    plan = generation_plan(train_rows(residues), p.ratio, p.shards, p.seed)
    per_shard = plan.groupby("shard")["quota"].agg(["size", "sum"])
    log.info("%d training proteins, %d synthetic positives planned; per shard (proteins, quota):\n%s",
             len(plan), int(plan["quota"].sum()), per_shard.to_string())
    write_parquet(plan, snakemake.output[0])
