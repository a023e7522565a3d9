import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import sys

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from siteaug.arms.protocol import train_arm
from siteaug.evaluation.ablation import SPLITS
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.tables import feature_columns
from siteaug.runtime.workflow import rounded, rule_logging

with rule_logging(snakemake) as log, threadpool_limits(snakemake.threads):  # scikit-learn's OpenMP threads too
    p, setting = snakemake.params, snakemake.wildcards.setting
    residues = read_parquet(snakemake.input.residues)
    seeds = [p.seed + k for k in range(p.settings["seeds"])]
    # Its validation rows are kept too, for the validation metrics of the ablation.
    predictions, _, summary = train_arm(
        p.arm, residues, p.settings, p.ratio, seeds, device=p.settings["device"], splits=SPLITS,
        progress=lambda epochs: tqdm(epochs, file=sys.stderr, mininterval=10, desc=f"ablation_classifier {setting}"),
    )
    features = len(feature_columns(residues))
    log.info("setting %s: %d features; %s", setting, features, rounded(summary))
    write_json({"setting": setting, "groups": p.groups, "arm": p.arm, "features": features, "seeds": summary}, snakemake.output.summary)
    write_parquet(predictions, snakemake.output.predictions)
