# siteaug: diffusion augmentation of protein binding-site residues, from inputs to a metrics report.

import os

from snakemake.utils import min_version, validate

min_version("9.0")


# The defaults come from this checkout's config/ whatever the working directory (--directory, or the Snakefile run from
# elsewhere); relative input paths in the config are still relative to the working directory.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")
# snakemake --report: this description heads the page, and the report(...) outputs of the rules are its items.
report: "report/workflow.rst"


from siteaug import config_checks  # this checkout's: Snakemake puts the Snakefile's folder first on sys.path

config_checks.stop_on(config_checks.check_config_files, workflow.configfiles)
validate(config, "config/schema.yaml")
if config["report"]["feature_ablation"]:  # common.smk builds the settings; a bad one stops here in one line
    from siteaug.ablation import ablation_settings

    config_checks.stop_on(ablation_settings, config["report"]["feature_ablation"], config["features"]["groups"])

include: "rules/common.smk"

config_checks.stop_on(config_checks.check_config, config, SWEEP_ARMS)
# A config changed after prepare ran: the checks against the data again (prepare runs them the first time).
config_checks.stop_on(config_checks.check_config_against_existing_results, config, OUTPUT_DIR,
         [label_file(), config["input"]["external_test_labels"]])

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
include: "rules/embedding.smk"


rule all:
    input:
        out("report/report.html"),
        out("report/metrics.tsv"),
        out("quality/metrics.tsv"),
        ABLATION_TARGETS,
