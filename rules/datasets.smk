# Several datasets in one DAG (config key datasets names the sheet, siteaug.inputs.datasets): each dataset is a module of
# this workflow's own Snakefile, run with the config its row gives and its outputs under output.directory/<name>/;
# its rules are named <name>_<rule>. Rule dataset_summary compares the datasets.

from siteaug.inputs.datasets import SUMMARY_FOLDER, dataset_configs

DATASETS = config_checks.stop_on(dataset_configs, config, config["datasets"])


# What `snakemake` with no target builds (rule all, in the Snakefile).
DEFAULT_TARGETS = [
    *expand(out("{dataset}/report/report.html"), dataset=DATASETS),
    out(f"{SUMMARY_FOLDER}/summary.html"),
]


for _name, _config in DATASETS.items():
    # What `module <name>: snakefile: ..., config: ...` and `use rule * from <name> as <name>_*` compile to; the
    # directives take literal names only.
    workflow.module(name=f"dataset_{_name}", snakefile=os.path.join(workflow.basedir, "Snakefile"), config=_config)
    workflow.userule(
        rules=["*"], from_module=f"dataset_{_name}", exclude_rules=[], name_modifier=f"{_name}_*", lineno=0
    )(lambda: None)


rule dataset_summary:
    input:
        metrics=expand(out("{dataset}/report/metrics.tsv"), dataset=DATASETS),
        differences=expand(out("{dataset}/report/differences.tsv"), dataset=DATASETS),
    output:
        html=report(
            out(f"{SUMMARY_FOLDER}/summary.html"),
            caption="../report/dataset_summary.rst",
            category="Datasets",
            labels={"file": "summary.html"},
        ),
        tsv=report(
            out(f"{SUMMARY_FOLDER}/summary.tsv"),
            caption="../report/dataset_summary.rst",
            category="Datasets",
            labels={"file": "summary.tsv"},
        ),
    log:
        out(f"{SUMMARY_FOLDER}/logs/dataset_summary.log"),
    benchmark:
        out(f"{SUMMARY_FOLDER}/benchmarks/dataset_summary.tsv")
    conda:
        "../envs/siteaug.yaml"
    params:
        datasets=list(DATASETS),
        sheet=config["datasets"],
    script:
        "../workflow_scripts/dataset_summary.py"
