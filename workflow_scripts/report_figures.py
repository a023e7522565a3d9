import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from pathlib import Path

import numpy as np

from siteaug.arms.registry import sweep_ratio
from siteaug.evaluation.figures import report_figures, save_png
from siteaug.runtime.io import read_parquet
from siteaug.runtime.tables import read_json, read_parquet_parts
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    predictions = {arm: read_parquet(path) for arm, path in zip(p.arms, i.predictions)}
    sweep = {arm: sweep_ratio(arm) for arm in p.arms if sweep_ratio(arm) is not None}
    if sweep and "diffusion" in predictions:
        sweep["diffusion"] = p.ratio
    # The filter's scores, when the generation stages ran (else no candidate-quality figure: nothing was generated).
    scores = read_parquet_parts(i.scores, columns=["quality_score"])["quality_score"].to_numpy(np.float32) if i.scores else None
    figures = report_figures(predictions, read_parquet(i.proteins), read_json(i.evaluation), sweep=sweep,
                             quality_scores=scores, quality_threshold=p.threshold)
    # The rule declares each figure's path; a figure drawn but not declared, or declared but not drawn, is a mismatch
    # between report.smk and siteaug.evaluation.figures.
    paths = {Path(path).name: path for path in snakemake.output}
    if set(paths) != set(figures):
        raise ValueError(f"report_figures: the rule declares {sorted(paths)}, the figures drawn are {sorted(figures)}")
    for name, fig in figures.items():
        save_png(fig, paths[name])
        log.info("wrote %s", paths[name])
