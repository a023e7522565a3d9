# One dataset, from its inputs to the report: the whole workflow when config key datasets is unset, and the body of each
# dataset's module when it names a datasets sheet (rules/datasets.smk). The Snakefile has loaded and validated the config.

if config["report"]["feature_ablation"]:  # common.smk builds the settings; a bad one stops here in one line
    from siteaug.evaluation.ablation import ablation_settings

    config_checks.stop_on(ablation_settings, config["report"]["feature_ablation"], config["features"]["groups"])


include: "common.smk"


config_checks.stop_on(config_checks.check_config, config, SWEEP_ARMS)
# A config changed after prepare ran: the checks against the data again (prepare runs them the first time).
config_checks.stop_on(
    config_checks.check_config_against_existing_results,
    config,
    OUTPUT_DIR,
    [label_file(), config["input"]["external_test_labels"]],
)


include: "demo.smk"
include: "prepare.smk"
include: "features.smk"
include: "diffusion.smk"
include: "generate.smk"
include: "filter.smk"
include: "balance.smk"
include: "classifier.smk"
include: "report.smk"
include: "sample_quality.smk"
include: "ablation.smk"
include: "embedding.smk"


# What `snakemake` with no target builds (rule all, in the Snakefile).
DEFAULT_TARGETS = [
    out("report/report.html"),
    out("report/metrics.tsv"),
    *([out("sample_quality/metrics.tsv")] if GENERATION else []),
    *ABLATION_TARGETS,
]
