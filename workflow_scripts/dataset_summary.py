import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import pandas as pd

from siteaug.inputs.datasets import summarise_datasets, summary_html
from siteaug.runtime.io import atomic_path, write_text
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    metrics = {d: pd.read_csv(path, sep="\t") for d, path in zip(p.datasets, i.metrics)}
    differences = {d: pd.read_csv(path, sep="\t") for d, path in zip(p.datasets, i.differences)}
    summary = summarise_datasets(metrics, differences)
    with atomic_path(snakemake.output.tsv) as tmp:
        summary.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    write_text(summary_html(summary, p.sheet), snakemake.output.html)
    log.info("%d datasets, %d rows", len(p.datasets), len(summary))
