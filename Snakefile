# siteaug: diffusion augmentation of protein binding-site residues, from inputs to a metrics report.

import os

from snakemake.utils import min_version, validate

min_version("9.0")


# The defaults come from this checkout's config/ whatever the working directory (--directory, or the Snakefile run from
# elsewhere); relative input paths in the config are still relative to the working directory.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


validate(config, "config/schema.yaml")

include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/prepare.smk"
include: "rules/features.smk"
include: "rules/diffusion.smk"
include: "rules/generate.smk"
include: "rules/filter.smk"
include: "rules/balance.smk"
include: "rules/classifier.smk"
include: "rules/report.smk"
include: "rules/quality.smk"
include: "rules/ablation.smk"


rule all:
    input:
        "results/report/report.html",
        "results/report/metrics.tsv",
        "results/quality/metrics.tsv",
        ABLATION_TARGETS,
