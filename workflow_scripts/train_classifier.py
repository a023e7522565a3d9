import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.arms import arm_training_rows, train_and_predict
from siteaug.classifier import mlp_config
from siteaug.features import feature_columns
from siteaug.io import read_parquet, write_parquet
from siteaug.workflow import rule_logging

with rule_logging(snakemake) as log:
    p, arm = snakemake.params, snakemake.wildcards.arm
    residues = read_parquet(snakemake.input.residues)
    balanced = read_parquet(snakemake.input.balanced) if "balanced" in snakemake.input.keys() else None
    cols = feature_columns(residues)
    X, y = arm_training_rows(arm, residues[residues["split"] == "train"], balanced, p.ratio, p.seed, cols)
    log.info("arm %s: %d training rows, positive ratio %.3f", arm, len(y), y.mean())
    model, predictions = train_and_predict(
        X, y, residues, cols, mlp_config(p.classifier, len(cols), p.seed), p.classifier["threshold_metric"], p.classifier["device"]
    )
    log.info("threshold %.4f frozen from the validation split", predictions["threshold"].iloc[0])
    model.save(snakemake.output.model)
    write_parquet(predictions, snakemake.output.predictions)
