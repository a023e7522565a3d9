# Feature-group ablation (report.feature_ablation): per setting, the feature table with only its groups, built by the
# features rule's own script, then the `none` arm on it; ablation_summary compares the settings.


use rule features as ablation_features with:
    output:
        residues="results/ablation/{setting}/residues.parquet",
        edges="results/ablation/{setting}/edges.parquet",
        standardisation="results/ablation/{setting}/standardisation.json",
    log:
        "results/logs/ablation/features_{setting}.log",
    benchmark:
        "results/benchmarks/ablation_features_{setting}.tsv"
    params:
        groups=lambda wildcards: list(ABLATION[wildcards.setting]),


rule ablation_classifier:
    input:
        residues="results/ablation/{setting}/residues.parquet",
    output:
        predictions="results/ablation/{setting}/predictions.parquet",
        summary="results/ablation/{setting}/summary.json",
    log:
        "results/logs/ablation/classifier_{setting}.log",
    benchmark:
        "results/benchmarks/ablation_classifier_{setting}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        groups=lambda wildcards: list(ABLATION[wildcards.setting]),
        classifier=config["classifier"],
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
    script:
        "../workflow_scripts/ablation_classifier.py"


rule ablation_summary:
    input:
        predictions=expand("results/ablation/{setting}/predictions.parquet", setting=ABLATION),
        training=expand("results/ablation/{setting}/summary.json", setting=ABLATION),
    output:
        json="results/ablation/metrics.json",
        tsv=report(
            "results/ablation/metrics.tsv",
            caption="../report/ablation_metrics.rst",
            category="Feature-group ablation",
            labels={"file": "metrics.tsv"},
        ),
        table=report(
            "results/ablation/table.tsv",
            caption="../report/ablation_table.rst",
            category="Feature-group ablation",
            labels={"file": "table.tsv"},
        ),
        plot=report(
            "results/ablation/metrics.png",
            caption="../report/ablation_plot.rst",
            category="Feature-group ablation",
            labels={"figure": "feature-group ablation"},
        ),
    log:
        "results/logs/ablation/summary.log",
    benchmark:
        "results/benchmarks/ablation_summary.tsv"
    conda:
        ENV
    threads: 1
    params:
        settings=list(ABLATION),
        bootstrap_resamples=config["report"]["bootstrap_resamples"],
        confidence=config["report"]["confidence"],
        seed=config["seed"],
    script:
        "../workflow_scripts/ablation_summary.py"
