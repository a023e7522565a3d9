import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from pathlib import Path

from siteaug.inputs.demo import make_demo
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    p = snakemake.params
    make_demo(Path(snakemake.output.labels).parent, p.n_proteins, p.min_length, p.max_length, p.seed)
    log.info("wrote %d demo proteins", p.n_proteins)
