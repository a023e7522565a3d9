import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.arms.classifier import MLPClassifier, mlp_config
from siteaug.runtime.io import read_parquet
from siteaug.runtime.tables import feature_columns, train_rows
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    residues = read_parquet(snakemake.input[0])
    train = train_rows(residues)
    cols = feature_columns(residues)
    # Class-balanced so that p = 0.5 means "as likely a binding residue as not", whatever the class imbalance.
    config = mlp_config(snakemake.params.critic, len(cols), snakemake.params.seed, balanced=True)
    critic = MLPClassifier(config, snakemake.params.device).fit(train[cols].to_numpy(), train["label"].to_numpy())
    critic.save(snakemake.output[0])
    log.info("critic trained on %d real training rows", len(train))
